"""Accuracy of predicted bump centres, and the paper's failure modes (paper App. A.3, Eq. 1; Sec. 3).

A sample is correct when both |x_pred - x| <= tol and |y_pred - y| <= tol (tol = 1 pixel by
default, ours). Comparisons are exact and inclusive: an error of exactly `tol` counts as correct.
A NaN prediction is never correct. Results carry the integer counts beside the fractions, so the
phase rule can compare exactly (metrics.phase). Zero samples give NaN fractions with n = 0 rather
than an error, because an empty subset (e.g. the in-hole samples of a run without a hole) is a
normal state; the phase rule treats it explicitly.

Failure modes (paper Sec. 3 names three ways a generation fails: (i) no bump, (ii) one bump in the
wrong place, (iii) several bumps) are read from the blob counts of `predict_centres`: 0 blobs =
(i), 2+ = (iii); (ii) is a single blob that `accuracy` scores wrong. What counts as a blob (the
contrast floor) is defined in metrics.labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Accuracy", "BlobFractions", "FailureModes", "accuracy", "blob_fractions", "failure_modes"]


@dataclass(frozen=True)
class Accuracy:
    """Fractions of correct samples: both axes (`overall`), x alone, y alone; `n` samples.

    correct, correct_x, correct_y: the counts the fractions are made of (overall = correct / n).
    """

    overall: float
    x: float
    y: float
    n: int
    correct: int
    correct_x: int
    correct_y: int


@dataclass(frozen=True)
class FailureModes:
    """How many of n images show no bump (i), one bump, several bumps (iii) (paper Sec. 3).

    Counts are the fields; `none`, `one`, `several` are the fractions (count / n, NaN if n == 0).
    """

    n_none: int
    n_one: int
    n_several: int

    @property
    def n(self) -> int:
        """The number of images."""
        return self.n_none + self.n_one + self.n_several

    @property
    def none(self) -> float:
        """Fraction of images with no blob: failure mode (i)."""
        return self._fraction(self.n_none)

    @property
    def one(self) -> float:
        """Fraction of images with exactly one blob (the phase rule's `single`)."""
        return self._fraction(self.n_one)

    @property
    def several(self) -> float:
        """Fraction of images with two or more blobs: failure mode (iii)."""
        return self._fraction(self.n_several)

    def _fraction(self, count: int) -> float:
        return count / self.n if self.n else math.nan


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
        return Accuracy(overall=math.nan, x=math.nan, y=math.nan, n=0, correct=0, correct_x=0, correct_y=0)
    # NaN compares False, so a NaN prediction is simply wrong.
    hit = np.abs(pred - target) <= tol  # (N, 2) per-axis hits
    correct, correct_x, correct_y = (int(h.sum()) for h in (hit.all(axis=1), hit[:, 0], hit[:, 1]))
    return Accuracy(
        overall=correct / n,
        x=correct_x / n,
        y=correct_y / n,
        n=n,
        correct=correct,
        correct_x=correct_x,
        correct_y=correct_y,
    )


def failure_modes(blobs: np.ndarray) -> FailureModes:
    """Count images with no blob (failure mode i), exactly one, and several (iii) (paper Sec. 3).

    Args:
        blobs: (N,) non-negative integer counts, e.g. `predict_centres(images).blobs` (which
            applies the contrast floor, so a blank or noise-only image has 0 blobs).

    Returns:
        FailureModes(n_none, n_one, n_several); its fractions are NaN if N == 0.

    Raises:
        ValueError: if `blobs` is not 1-D, not integer, or has negative counts.
    """
    blobs = np.asarray(blobs)
    if blobs.ndim != 1 or not (np.issubdtype(blobs.dtype, np.integer) or blobs.size == 0):
        raise ValueError(f"blobs must be a 1-D integer array; got {blobs.dtype} {blobs.shape}")
    if blobs.size and blobs.min() < 0:
        raise ValueError(f"blob counts must be >= 0; got minimum {blobs.min()}")
    return FailureModes(
        n_none=int(np.sum(blobs == 0)), n_one=int(np.sum(blobs == 1)), n_several=int(np.sum(blobs >= 2))
    )


def blob_fractions(blobs: np.ndarray) -> BlobFractions:
    """Fractions of images with 0, exactly 1 and 2+ blobs; `failure_modes` also gives the counts.

    Args:
        blobs: (N,) non-negative integer counts, e.g. `predict_centres(images).blobs`.

    Returns:
        BlobFractions(zero, one, many), a tuple that unpacks as (f0, f1, fmany); NaNs if N == 0.

    Raises:
        ValueError: if `blobs` is not 1-D, not integer, or has negative counts.
    """
    modes = failure_modes(blobs)
    return BlobFractions(zero=modes.none, one=modes.one, many=modes.several)


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    """Validate an (N, 2) array of (x, y) points and return it as float64."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} must be (N, 2) (x, y) points; got shape {points.shape}")
    return points
