"""Bumps on a torus: the label reader for canvases whose edges wrap (follow-up paper Figs. 2, 3).

In the follow-up paper's periodic dataset a bump near the right edge shows its other half at the
left edge. `metrics.predict_centres` reads such an image as two blobs (failure mode "several")
and puts the centre between the halves. `predict_centres_periodic` reads it as that reader would
on a torus (ours): each image is rolled (as np.roll, a shift per image) so that its darkest point, found on
a copy smoothed with wrapped borders (Gaussian, CENTRING = 1.5 px: wide enough that a noise speck
does not outweigh a bump), lands at the canvas centre; the rolled stack is read by
`metrics.predict_centres` unchanged (its Otsu mask, contrast floor, blob count and centroid); the
centres are rolled back modulo the canvas size, into [0, W) x [0, H). A bump split by the edge is
whole again after the roll, so it counts as one blob. Two bumps still count as "several", though
not always as two: the second may lie across the rolled image's edges, its parts counted apart.
An image with no blob gives, as there, its whole-image centroid: that of the rolled image, rolled
back (for a blank image of even size: (0, 0), where the canvas centre rolls back to).

`wrapped_error` is the distance on the circle of a given period, for scoring such centres
(`metrics.accuracy_per_axis(..., period=...)`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from metrics.labels import MIN_DEPTH, MIN_SNR, LabelPrediction, _inverted, predict_centres

__all__ = ["CENTRING", "predict_centres_periodic", "wrapped_error"]

CENTRING = 1.5  # px: Gaussian sigma of the copy whose darkest point is rolled to the centre (ours)


def predict_centres_periodic(
    images: np.ndarray, *, min_depth: float = MIN_DEPTH, min_snr: float = MIN_SNR
) -> LabelPrediction:
    """Predict bump centres on a canvas whose edges wrap (a torus), counting blobs as a torus would.

    Args:
        images: (N, H, W) real array in the model's scale (+1 white, -1 darkest), as for
            `metrics.predict_centres`; a bump may cross the edges and show in two or four parts.
        min_depth, min_snr: the contrast floor, passed to `metrics.predict_centres`.

    Returns:
        LabelPrediction as `metrics.predict_centres` gives it for the images rolled so their
        darkest point is central, with `centres` rolled back: (N, 2) (x, y) in [0, W) x [0, H),
        canvas coordinates (pixel (i, j) centred at (j+.5, i+.5)). Arrays read-only.

    Raises:
        ValueError: as `metrics.predict_centres` (shape, dtype, floor).
    """
    images = np.asarray(images)
    bright = _inverted(images)  # validates the shape and dtype; (N, H, W) in [0, 1], bump bright
    n, height, width = bright.shape
    rows, cols = _darkest(bright)  # (N,) each
    shift_y, shift_x = height // 2 - rows, width // 2 - cols
    # rolled[k, i, j] = images[k, i - shift_y, j - shift_x] (indices modulo the size)
    take_rows = (np.arange(height)[None, :] - shift_y[:, None]) % height  # (N, H)
    take_cols = (np.arange(width)[None, :] - shift_x[:, None]) % width  # (N, W)
    rolled = images[np.arange(n)[:, None, None], take_rows[:, :, None], take_cols[:, None, :]]
    read = predict_centres(rolled, min_depth=min_depth, min_snr=min_snr)
    centres = np.mod(read.centres - np.stack([shift_x, shift_y], axis=1), [width, height])
    centres.setflags(write=False)
    return LabelPrediction(centres, read.blobs, read.contours, read.depth, read.spread)


def _darkest(bright: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) bump-bright images -> (N,) row and column of each one's brightest smoothed pixel,
    smoothed with wrapped borders (the canvas is a torus)."""
    n, height, width = bright.shape
    pad = int(math.ceil(3 * CENTRING))
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    framed = np.pad(bright.astype(np.float32), ((0, 0), (pad, pad), (pad, pad)), mode="wrap")  # any size
    tall = framed.reshape(n * (height + 2 * pad), width + 2 * pad)  # one blur call for the stack
    blurred = cv2.GaussianBlur(tall, (2 * pad + 1, 2 * pad + 1), CENTRING, borderType=cv2.BORDER_REFLECT)
    smooth = blurred.reshape(framed.shape)[:, pad:-pad, pad:-pad].reshape(n, height * width)
    flat = smooth.argmax(axis=1)
    return flat // width, flat % width


def wrapped_error(a: np.ndarray, b: np.ndarray, period: float | np.ndarray) -> np.ndarray:
    """Distance between positions on a circle of circumference `period`: |a - b| wrapped to [0, period/2].

    Args:
        a, b: real arrays (broadcastable), e.g. (N, 2) read and target (x, y) positions.
        period: the canvas size, a number or an array broadcastable with them (e.g. (W, H)); > 0.

    Returns:
        float64 array of the broadcast shape; NaN where a or b is NaN.

    Raises:
        ValueError: if `period` is not finite and > 0.
    """
    period = np.asarray(period, dtype=np.float64)
    if not (np.all(np.isfinite(period)) and np.all(period > 0)):
        raise ValueError(f"period must be finite and > 0; got {period.tolist()!r}")
    gap = np.mod(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), period)
    return np.minimum(gap, period - gap)
