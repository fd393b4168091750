"""Accuracy of predicted bump centres, and the blob-count fractions (paper App. A.3, Eq. 1).

A sample is correct when both |x_pred - x| <= tol and |y_pred - y| <= tol (tol = 1 pixel by
default, ours). Comparisons are exact and inclusive: an error of exactly `tol` counts as correct.
A NaN prediction is never correct. Zero samples give NaN fractions with n = 0 rather than an
error, because an empty subset (e.g. the in-hole samples of a run without a hole) is a normal
state; the phase rule treats NaN explicitly (see metrics.phase).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Accuracy", "BlobFractions", "accuracy", "blob_fractions"]


@dataclass(frozen=True)
class Accuracy:
    """Fractions of correct samples: both axes (`overall`), x alone, y alone; `n` samples."""

    overall: float
    x: float
    y: float
    n: int


class BlobFractions(NamedTuple):
    """Fractions of images with no blob, exactly one, and several; they sum to 1."""

    zero: float
    one: float
    many: float


def accuracy(pred: np.ndarray, target: np.ndarray, tol: float = 1.0) -> Accuracy:
    """Score predicted centres against target labels (paper App. A.3, Eq. 1).

    Args:
        pred: (N, 2) predicted (x, y), e.g. `predict_centres(images).centres`.
        target: (N, 2) requested (x, y) labels, same canvas coordinates.
        tol: largest error, in pixels, still counted as correct (inclusive); finite, >= 0.

    Returns:
        Accuracy with fractions in [0, 1] and n = N; all fractions NaN when N == 0.

    Raises:
        ValueError: if the shapes are not both (N, 2) or `tol` is negative or not finite.
    """
    pred, target = _as_points(pred, "pred"), _as_points(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {pred.shape} vs {target.shape}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    n = len(pred)
    if n == 0:
        return Accuracy(overall=math.nan, x=math.nan, y=math.nan, n=0)
    # NaN compares False, so a NaN prediction is simply wrong.
    hit = np.abs(pred - target) <= tol  # (N, 2) per-axis hits
    return Accuracy(
        overall=float(hit.all(axis=1).mean()),
        x=float(hit[:, 0].mean()),
        y=float(hit[:, 1].mean()),
        n=n,
    )


def blob_fractions(blobs: np.ndarray) -> BlobFractions:
    """Fractions of images with 0, exactly 1 and 2+ blobs (the phase rule's `single` is `.one`).

    Args:
        blobs: (N,) non-negative integer counts, e.g. `predict_centres(images).blobs`.

    Returns:
        BlobFractions(zero, one, many), a tuple that unpacks as (f0, f1, fmany); NaNs if N == 0.

    Raises:
        ValueError: if `blobs` is not 1-D, not integer, or has negative counts.
    """
    blobs = np.asarray(blobs)
    if blobs.ndim != 1 or not (np.issubdtype(blobs.dtype, np.integer) or blobs.size == 0):
        raise ValueError(f"blobs must be a 1-D integer array; got {blobs.dtype} {blobs.shape}")
    if blobs.size == 0:
        return BlobFractions(math.nan, math.nan, math.nan)
    if blobs.min() < 0:
        raise ValueError(f"blob counts must be >= 0; got minimum {blobs.min()}")
    return BlobFractions(
        zero=float(np.mean(blobs == 0)),
        one=float(np.mean(blobs == 1)),
        many=float(np.mean(blobs >= 2)),
    )


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    """Validate an (N, 2) array of (x, y) points and return it as float64."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} must be (N, 2) (x, y) points; got shape {points.shape}")
    return points
