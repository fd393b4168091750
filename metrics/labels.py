"""Label prediction: where did the model draw its bump? (paper App. A.3, Alg. 1).

Each image is inverted (so the bump is bright), quantised to uint8, thresholded with Otsu's
method and its external contours counted. One contour -> the centroid of that blob; none or
several -> the centroid of the whole image. The blob count is returned too: it is what the
phase rule's "fraction of single bumps" is computed from.

Choices the paper's copy leaves open (ours):
- The blob's centroid is the centroid of the pixels Otsu kept, weighted by how far each rises
  above the threshold, not the contour polygon's moment. The polygon runs through pixel
  centres, so its centroid moves in steps as pixels enter or leave the mask; the weights fall
  to zero at the threshold, so the estimate moves smoothly with the bump (sub-pixel accurate).
  Pixels inside the one external contour but below the threshold weigh nothing.
- The uint8 scale is absolute (-1 -> 255 after inversion, +1 -> 0), not stretched per image,
  so an almost-blank image stays almost blank instead of having its noise amplified into bumps.
- An image without contrast (blank, constant, saturated) has 0 blobs; its centroid is the
  whole-image centroid, i.e. the canvas centre. NaN pixels count as background (white);
  +-inf and values outside [-1, 1] are clipped. None of these raise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["LabelPrediction", "predict_centres"]


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class LabelPrediction:
    """Predicted bump centres and blob counts for a stack of images.

    centres: (N, 2) float64, (x, y) in canvas coordinates (pixel (i, j) centred at (j+.5, i+.5)).
    blobs:   (N,) int64, external contours found after Otsu thresholding.
    """

    centres: np.ndarray
    blobs: np.ndarray


def predict_centres(images: np.ndarray) -> LabelPrediction:
    """Predict the bump centre of each image (paper App. A.3, Alg. 1).

    Args:
        images: (N, H, W) real array in the model's scale, a dark bump on a white canvas
            (+1 white, -1 darkest). Values outside [-1, 1], +-inf and NaN are tolerated.

    Returns:
        LabelPrediction, arrays read-only: `centres` (N, 2) (x, y) in canvas coordinates, the
        blob's weighted centroid where exactly one blob was found, else the whole inverted
        image's intensity-weighted centroid (the canvas centre for a blank image); `blobs`
        (N,) the number of external contours (0 for an image without contrast).

    Raises:
        ValueError: if `images` is not 3-D or not real-valued.
    """
    bright = _inverted(images)  # (N, H, W) in [0, 1], bump bright
    levels = np.rint(bright * 255.0).astype(np.uint8)  # absolute scale, see module doc
    blobs = np.zeros(len(levels), dtype=np.int64)
    weights = bright.copy()  # whole-image centroid unless exactly one blob is found
    # cv2 has no batched Otsu/contours; ~15 us an image, so a Python loop is cheap enough.
    for k, level in enumerate(levels):
        blobs[k], threshold, foreground = _otsu_blobs(level)
        if blobs[k] == 1:
            weights[k] = np.where(foreground, bright[k] - threshold / 255.0, 0.0)
    centres = _weighted_centroids(weights)
    centres.setflags(write=False)
    blobs.setflags(write=False)
    return LabelPrediction(centres=centres, blobs=blobs)


def _inverted(images: np.ndarray) -> np.ndarray:
    """(N, H, W) model-scale images -> bump-bright intensities in [0, 1]; NaN -> background."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W); got shape {images.shape}")
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"images must be real numbers; got dtype {images.dtype}")
    white = np.nan_to_num(images.astype(np.float64), nan=1.0, posinf=1.0, neginf=-1.0)
    return np.clip((1.0 - white) / 2.0, 0.0, 1.0)


def _otsu_blobs(level: np.ndarray) -> tuple[int, float, np.ndarray | None]:
    """One uint8 (H, W) image -> (external contour count, Otsu level, foreground mask)."""
    if level.min() == level.max():
        return 0, 0.0, None  # no contrast: Otsu would split nothing, or the whole canvas
    threshold, binary = cv2.threshold(level, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return len(contours), float(threshold), binary > 0


def _weighted_centroids(weights: np.ndarray) -> np.ndarray:
    """(N, H, W) non-negative weights -> (N, 2) (x, y) centroids; canvas centre if all zero."""
    n, height, width = weights.shape
    total = weights.sum(axis=(1, 2))  # (N,)
    x_mass = weights.sum(axis=1) @ (np.arange(width) + 0.5)  # (N,) column sums . centres
    y_mass = weights.sum(axis=2) @ (np.arange(height) + 0.5)  # (N,) row sums . centres
    centres = np.empty((n, 2))
    centres[:] = (width / 2.0, height / 2.0)
    ink = total > 0
    centres[ink, 0] = x_mass[ink] / total[ink]
    centres[ink, 1] = y_mass[ink] / total[ink]
    return centres
