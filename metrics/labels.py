"""Label prediction: where did the model draw its bump, and did it draw one? (paper App. A.3, Alg. 1).

Each image is inverted (so the bump is bright), quantised to uint8, thresholded with Otsu's
method and its external contours found. A contour is a blob only if it has contrast (below).
One blob -> the centroid of that blob; none or several -> the centroid of the whole image. The
blob count is what the paper's failure modes are read from (Sec. 3: (i) no bump = 0 blobs,
(iii) several bumps = 2+; see `metrics.accuracy.failure_modes`).

Contrast floor (ours; calibrated in docs/failure-modes.md, `bench/failure_modes.py`). Otsu always
splits an image in two, so without a floor a smooth or noisy image with no bump reads as one blob
or as dozens. The contrast of a blob is read on a lightly smoothed copy of the image (Gaussian,
sigma SMOOTHING = 0.7 px, borders mirrored), in the model's units (white +1 .. black -1, full
range 2):
    background = the median of the smoothed image (a bump covers well under half the canvas)
    spread     = 1.4826 x the median absolute deviation from it (the canvas's noise, as a std)
    depth      = background - the darkest smoothed value inside the blob
A contour is a blob when depth >= min_depth AND depth >= min_snr x spread: a bump is a region
clearly darker than the canvas, and darker by far more than the canvas varies. The first rule
rejects faint marks on a flat canvas (whose spread is ~0); the second rejects noise and
low-frequency texture of any amplitude (their darkest region lies ~3 spreads below the median).
Defaults MIN_DEPTH = 0.3, MIN_SNR = 10: every clean bump of sigma 0.5..3 anywhere on the canvas
counts as one (the shallowest, sigma 0.5 between four pixels, has depth 0.45), a sigma 1..3 bump
stays one bump under pixel noise of std 0.3 (model units; 0.1 at sigma 0.5) and is never split by
it, and Gaussian noise, smooth random fields and an untrained model's samples count as no bump.
The smoothing is used for the contrast only; the mask and the centroid come from the image
itself, as in the paper.
`min_depth=0, min_snr=0` switches the floor off: every contour is a blob (the paper's algorithm).

Other choices the paper's copy leaves open (ours):
- The blob's centroid is the centroid of the pixels Otsu kept inside that blob's contour,
  weighted by how far each rises above the threshold, not the contour polygon's moment. The
  polygon runs through pixel centres, so its centroid moves in steps as pixels enter or leave the
  mask; the weights fall to zero at the threshold, so the estimate moves smoothly with the bump
  (sub-pixel accurate). Contours below the floor (noise specks) weigh nothing.
- The uint8 scale is absolute (-1 -> 255 after inversion, +1 -> 0), not stretched per image.
- An image without contrast (blank, constant, saturated) has 0 blobs; its centroid is the
  whole-image centroid, i.e. the canvas centre. NaN pixels count as background (white);
  +-inf and values outside [-1, 1] are clipped. None of these raise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["MIN_DEPTH", "MIN_SNR", "SMOOTHING", "LabelPrediction", "predict_centres"]

SMOOTHING = 0.7  # px: Gaussian sigma of the copy contrast is read on (ours; ~matched to sigma 0.5-1 bumps)
MIN_DEPTH = 0.3  # model units (of 2): the contrast floor (ours, calibrated: docs/failure-modes.md)
MIN_SNR = 10.0  # depth / spread a blob must reach (ours, calibrated: docs/failure-modes.md)
_MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its std
_KERNEL = 7  # px: the blur's support, what OpenCV picks for sigma 0.7 (2 x round(4 sigma) + 1, odd)


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class LabelPrediction:
    """Predicted bump centres, blob counts and contrast for a stack of images.

    centres:  (N, 2) float64, (x, y) in canvas coordinates (pixel (i, j) centred at (j+.5, i+.5)).
    blobs:    (N,) int64, external contours that pass the contrast floor (the failure modes).
    contours: (N,) int64, external contours after Otsu, before the floor (the paper's count).
    depth:    (N,) float64, model units: background minus the darkest smoothed value of the image.
    spread:   (N,) float64, model units: the smoothed image's robust std around its background.
    """

    centres: np.ndarray
    blobs: np.ndarray
    contours: np.ndarray
    depth: np.ndarray
    spread: np.ndarray


def predict_centres(
    images: np.ndarray, *, min_depth: float = MIN_DEPTH, min_snr: float = MIN_SNR
) -> LabelPrediction:
    """Predict the bump centre of each image and count its bumps (paper App. A.3, Alg. 1).

    Args:
        images: (N, H, W) real array in the model's scale, a dark bump on a white canvas
            (+1 white, -1 darkest). Values outside [-1, 1], +-inf and NaN are tolerated.
        min_depth: contrast floor, model units: how far below the background a blob's darkest
            (smoothed) point must lie. 0 with min_snr 0 = no floor (the paper's algorithm).
        min_snr: how many canvas spreads that depth must also reach (see the module docstring).

    Returns:
        LabelPrediction, arrays read-only: `centres` (N, 2) (x, y) in canvas coordinates, the
        blob's weighted centroid where exactly one blob was found, else the whole inverted
        image's intensity-weighted centroid (the canvas centre for a blank image); `blobs` (N,)
        the blobs that pass the floor; `contours`, `depth`, `spread` as in LabelPrediction.

    Raises:
        ValueError: if `images` is not 3-D or not real-valued, or a floor is negative or not finite.
    """
    _check_floor("min_depth", min_depth)
    _check_floor("min_snr", min_snr)
    bright = _inverted(images)  # (N, H, W) in [0, 1], bump bright
    levels = np.rint(bright * 255.0).astype(np.uint8)  # absolute scale, see module doc
    smooth = _smoothed(bright)  # (N, H, W) float32, for the contrast only
    background, spread, depth = _contrast(smooth)
    floor = _Floor(min_depth, min_snr)
    flat = levels.reshape(len(levels), levels.shape[1] * levels.shape[2])
    # No contrast at all (Otsu would split nothing, or the whole canvas), or none that a blob
    # could clear the floor with: no need to look at the contours' depths.
    has_contrast = flat.min(axis=1, initial=255) < flat.max(axis=1, initial=0)
    may_pass = floor.passes(depth, spread)
    contours, blobs = (np.zeros(len(levels), dtype=np.int64) for _ in range(2))
    weights = bright.copy()  # whole-image centroid unless exactly one blob is found
    # cv2 has no batched Otsu/contours; ~20 us an image, so a Python loop is cheap enough.
    for k in np.flatnonzero(has_contrast):
        threshold, binary = cv2.threshold(levels[k], 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        contours[k], regions = _external_regions(binary)
        if contours[k] and may_pass[k]:
            blobs[k], mask = _one_blob(regions, contours[k], smooth[k], background[k], spread[k], floor)
            if mask is not None:
                weights[k] = np.where(mask, bright[k] - threshold / 255.0, 0.0)
    result = LabelPrediction(_weighted_centroids(weights), blobs, contours, depth, spread)
    for array in (result.centres, blobs, contours, depth, spread):
        array.setflags(write=False)
    return result


@dataclass(frozen=True)
class _Floor:
    """The contrast floor: which depths (model units) make a blob, given the canvas's spread."""

    min_depth: float
    min_snr: float

    def passes(self, depth: np.ndarray, spread: np.ndarray | float) -> np.ndarray:
        """Depth(s) and spread(s), model units -> bool(s): is it a blob?"""
        if self.min_depth == 0 and self.min_snr == 0:
            return np.ones(np.shape(depth), dtype=bool)  # no floor: every contour (the paper's count)
        return (depth >= self.min_depth) & (depth >= self.min_snr * spread)


def _check_floor(name: str, value: float) -> None:
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (real and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")


def _inverted(images: np.ndarray) -> np.ndarray:
    """(N, H, W) model-scale images -> bump-bright intensities in [0, 1]; NaN -> background."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W); got shape {images.shape}")
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"images must be real numbers; got dtype {images.dtype}")
    white = np.nan_to_num(images.astype(np.float64), nan=1.0, posinf=1.0, neginf=-1.0)
    return np.clip((1.0 - white) / 2.0, 0.0, 1.0)


def _smoothed(bright: np.ndarray) -> np.ndarray:
    """(N, H, W) -> the same, Gaussian-smoothed (sigma SMOOTHING px), borders mirrored.

    Mirrored borders: a bump cut by the border is read as its mirror image completes it, so its
    depth is not diluted by a padding of background.
    """
    n, height, width = bright.shape
    pad = _KERNEL // 2
    # One blur call for the whole stack: each image mirrored into a frame as wide as the kernel's
    # reach (np "symmetric" = cv2 BORDER_REFLECT), stacked, blurred, cropped. Same numbers as a
    # blur per image, at a fraction of the calls.
    framed = np.pad(bright.astype(np.float32), ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    tall = framed.reshape(n * (height + 2 * pad), width + 2 * pad)
    blurred = cv2.GaussianBlur(tall, (_KERNEL, _KERNEL), SMOOTHING) if n else tall
    return blurred.reshape(framed.shape)[:, pad:-pad, pad:-pad].copy()


def _contrast(smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, H, W) smoothed bright images -> (N,) background (bright units), spread, depth (model units)."""
    flat = smooth.reshape(len(smooth), smooth.shape[1] * smooth.shape[2])  # float32: medians 2x faster
    background = np.median(flat, axis=1)
    spread = 2.0 * _MAD_TO_STD * np.median(np.abs(flat - background[:, None]), axis=1)
    depth = 2.0 * (flat.max(axis=1, initial=0.0) - background)
    return tuple(v.astype(np.float64) for v in (background, spread, depth))


def _one_blob(
    regions: np.ndarray, n_regions: int, smooth: np.ndarray, background: float, spread: float, floor: _Floor
) -> tuple[int, np.ndarray | None]:
    """Labelled contours of one image -> (how many are blobs, the mask of the blob if exactly one)."""
    if n_regions == 1:  # the common case, a clean bump: the region is the whole mask
        inside = (regions > 0).astype(np.uint8)
        peak = cv2.minMaxLoc(smooth, mask=inside)[1]  # darkest smoothed value (bright units)
        return (1, inside > 0) if floor.passes(2.0 * (peak - background), spread) else (0, None)
    depths = 2.0 * (_region_peaks(regions, smooth, n_regions) - background)
    kept = np.flatnonzero(floor.passes(depths, spread)) + 1
    return len(kept), (regions == kept[0]) if len(kept) == 1 else None


def _external_regions(binary: np.ndarray) -> tuple[int, np.ndarray]:
    """0/255 mask -> (K, (H, W) int32 labels 0..K): the pixels of the mask inside each external contour.

    K equals the count of cv2.findContours(RETR_EXTERNAL) (8-connected foreground, 4-connected
    holes; tested): the mask with its holes filled, split into 8-connected components. A
    component inside another's hole belongs to the outer one, as RETR_EXTERNAL ignores it. One
    flood fill and one labelling (~15 us) instead of one fill per contour (~5 us each, and a
    noise image has dozens); a mask of one component (a clean bump) needs no fill at all.
    """
    count, regions = cv2.connectedComponents(binary, connectivity=8, ltype=cv2.CV_32S)
    if count <= 2:  # background + at most one component: nothing can nest
        return count - 1, regions
    height, width = binary.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.uint8)  # a frame, so the fill reaches all around
    padded[1:-1, 1:-1] = binary
    cv2.floodFill(padded, None, (0, 0), 128, flags=4)  # the outside: background reachable from the frame
    filled = (padded[1:-1, 1:-1] != 128).astype(np.uint8)  # the mask plus its holes
    count, regions = cv2.connectedComponents(filled, connectivity=8, ltype=cv2.CV_32S)
    regions[binary == 0] = 0  # holes belong to no blob
    return count - 1, regions


def _region_peaks(regions: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """(H, W) labels 0..k (0 = none), (H, W) values -> (k,) the largest value of each label 1..k."""
    inside = regions > 0
    label, value = regions[inside], values[inside]
    order = np.lexsort((value, label))  # by label, then value: each label's last entry is its max
    label, value = label[order], value[order]
    last = np.append(label[1:] != label[:-1], True)
    peaks = np.zeros(k)
    peaks[label[last] - 1] = value[last]  # every label has pixels: a contour runs through its own
    return peaks


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
