"""Positions read per axis: stripes, sums of stripes, 2-D bumps (follow-up paper Figs. 1, 4; issue 16).

The follow-up paper (Liang, Liu, Ostrow, Fiete 2024) scores its images axis by axis: is there a
mark at x (a vertical stripe, or a bump), one at y, and where? `read_axes` answers from 1-D
darkness profiles. Darkness d = (1 - image) / 2 in [0, 1], as metrics.labels reads images (NaN ->
white, values clipped). What follows reads x (columns); y is the same on the transposed image.

Profiles (ours). Each row's median over the columns is subtracted first: a horizontal stripe (and
any grey level) darkens its rows evenly, so it goes. In a sum of stripes clip(g_x + g_y) the median
commutes with the clip, so row i keeps clip(g_x + g_y(i)) - clip(c + g_y(i)), c = the median of g_x
(0 .. 0.03): g_x - c exactly in the rows the horizontal stripe misses, less where it crosses (the
clip ate it). Then, over the rows:
  - stripe profile: the mean, each row weighted by (its lightness / the typical row's)^CROSSING,
    capped at 1, so the crossing rows drop out and do not flatten the peak. A stripe fills every
    row: the mean cuts pixel noise by ~sqrt(H).
  - bump profile: the max of the residual smoothed along the rows (Gaussian, ACROSS = 1 px). A bump
    g_x * g_y fills a few rows, which a mean dilutes to ~0.08 sigma of its depth; the max keeps
    g_x times a constant. Its floor is read on a copy also smoothed along x (ALONG = 0.7 px, as
    metrics.labels' SMOOTHING), its position on the unsmoothed one.
An axis is read from the profile that clears the floor (both: the one of higher depth / spread;
a tie, as for a clean stripe: the stripe profile). `extent` = stripe-profile depth / bump-profile
depth: ~1 for a stripe across the frame, ~0.08 sigma for a bump (<= 0.4 at sigma 3).

Contrast floor (ours; calibrated with bench/stripes.py, as metrics.labels'). On a profile, in model
units (white +1 .. black -1, range 2): background = its median, spread = 1.4826 x its median
absolute deviation, depth = 2 x (its max - background). The axis is present when depth >= min_depth
AND depth >= min_snr x spread. AXIS_MIN_DEPTH = 0.3: a mark of depth 0.2 on a flat canvas is absent
(present at 0.15). AXIS_MIN_SNR = 12. Measured on 500 images a family (seeds fixed, 2026-12-02):
  - present, 100 % of axes: stripes, sums of stripes and bumps of sigma 0.5..3, centres anywhere in
    the frame (snr at the 1st percentile: 25-27 for stripes and sums, 82 for bumps).
  - absent, 100 %: blank, constant levels, Gaussian noise std 0.02..1 around a level or 0.5 on white
    (snr p99 <= 6.6), smooth random fields of 2, 4, 8 px at std 0.1, 0.3 (p99 <= 5.9), and three
    untrained quick-preset models' step-0 samples (p99 6.1, 10.6, 5.6; 500 each). At min_snr 10 one
    of those reads present on 1-2 % of its axes, at 8 on 2-4 %: 12 leaves a margin. Over 3,000 a
    family the rate stays <= 0.05 % for fields up to std 0.5; that model's, 0.1 % of 1,000 axes.
  - pixel noise (std, model units; centres 3 sigma inside): stripes and sums of sigma 0.5..3 stay
    present up to std 0.2 (>= 97 %, 100 % below sigma 3), and of sigma <= 2 up to 0.3 (100 %);
    bumps of sigma 1..3 up to 0.1 (100 %; 94-100 % at 0.2, sigma 0.5: 98 % at 0.1). Beyond, a mark
    lost in noise reads absent. The absent axis of a single stripe under noise reads absent (0 of
    3,000 up to std 0.3, 1 at 0.5).
  - limit: a profile is 32 samples, so two stripes on one axis (10-14 px apart, sigma <= 2) widen
    its spread: 11 % of those axes read absent instead of "several".

Position: the weighted centroid of the peak, over the run of samples around its max that rise
above background + LEVEL x height (LEVEL = 0.1), each weighted by how far it rises above that line
(zero there, so the reading moves smoothly with the mark; not the argmax). A peak cut by the frame's
edge (its run holds the first or last sample) would be pulled inward by a centroid (a sigma-3
stripe at x = 0 reads ~2); there its samples above 2 % of the height are fitted with a Gaussian
(a parabola through their logs, weighted by their squares: Guo 2011), which extrapolates. The fit
is refused (the centroid stands) with fewer than three samples (sigma < 1 within a pixel of the
edge: up to 0.6 px off) or when its amplitude would be darker than black (1.25: noise
extrapolated). Clean errors (x of 2,000 images a kind, sigma 0.5..3): p99 0.03 px, max 0.04, at
centres >= 3 sigma inside; p99 0.02 from 1 px to 3 sigma; p99 0.08 in the outer pixel at sigma >= 1.
Under noise std 0.2 (centres 3 sigma inside): p99 <= 0.16 px (stripes, sums), <= 0.30 (bumps,
sigma >= 1).

Off-frame centres (ours): a stripe whose centre lies outside the frame is present exactly when its
tail clears the floor (its first column >= min_depth deep), and reads where the fit puts it, outside
[0, W] (exact for clean stripes of sigma >= 1.5). A caller that wants the paper's 1D / 2D split
(centre inside the frame) compares the position with the frame.

Several peaks (two stripes on one axis): runs of the floor's profile above half its height, counted
when their own height clears the floor (`peaks`; 2+ is the failure mode "several", as the bump
reader's blobs); their position is the centroid over all of them, like the bump reader's
whole-image centroid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from metrics.accuracy import Accuracy
from metrics.labels import _inverted  # (N, H, W) model scale -> darkness in [0, 1], NaN -> white
from metrics.periodic import wrapped_error

__all__ = ["AXIS_MIN_DEPTH", "AXIS_MIN_SNR", "AxisReading", "accuracy_per_axis", "read_axes"]

AXIS_MIN_DEPTH = 0.3  # model units (of 2): the contrast floor (ours, calibrated: bench/stripes.py)
AXIS_MIN_SNR = 12.0  # depth / spread a profile's peak must reach (ours, calibrated: bench/stripes.py)
ACROSS = 1.0  # px: Gaussian sigma of the bump profile's smoothing across the axis read (ours)
ALONG = 0.7  # px: and along it, for the floor only (ours; as metrics.labels.SMOOTHING)
CROSSING = 8  # exponent of the row weights of the stripe profile (ours; see _profiles)
LEVEL = 0.1  # fraction of the peak's height below which samples weigh nothing in the centroid
_FIT_LEVEL = 0.02  # fraction of the height a sample needs to enter the edge fit (its log is noise below)
_MAX_LOG_AMPLITUDE = math.log(1.25)  # darkness 1 (black) plus room for noise
_MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its std


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class AxisReading:
    """Positions read per axis for a stack of images; column 0 is x, column 1 is y.

    positions: (N, 2) float64, frame coordinates (pixel (i, j) centred at (j+.5, i+.5)); NaN where
               the axis is absent. May lie outside [0, W] for a stripe whose centre is off-frame.
    present:   (N, 2) bool, the axis's profile clears the contrast floor.
    peaks:     (N, 2) int64, separated peaks that clear the floor (0 absent, 2+ "several").
    depth:     (N, 2) float64, model units: the read profile's peak above its background.
    spread:    (N, 2) float64, model units: the read profile's robust std around its background.
    extent:    (N, 2) float64, stripe-profile depth / bump-profile depth: ~1 for a stripe across
               the frame, ~0.08 sigma for a bump; NaN where the image has no contrast on the axis.
    """

    positions: np.ndarray
    present: np.ndarray
    peaks: np.ndarray
    depth: np.ndarray
    spread: np.ndarray
    extent: np.ndarray


def read_axes(
    images: np.ndarray, *, min_depth: float = AXIS_MIN_DEPTH, min_snr: float = AXIS_MIN_SNR
) -> AxisReading:
    """Read the position of each image's mark per axis: stripes, sums of stripes, bumps, blanks.

    Args:
        images: (N, H, W) real array in the model's scale (+1 white, -1 darkest); a vertical
            stripe at x and / or a horizontal one at y (summed, clipped), or a 2-D bump, or nothing.
            Values outside [-1, 1], +-inf and NaN are tolerated as in `metrics.predict_centres`.
        min_depth: contrast floor, model units, > 0: how far a profile's peak must rise above its
            background for the axis to be present.
        min_snr: how many profile spreads that depth must also reach, >= 0 (module docstring).

    Returns:
        AxisReading, arrays read-only (see its docstring).

    Raises:
        ValueError: if `images` is not (N, H, W) real, or a floor is out of range.
    """
    _check_number("min_depth", min_depth, positive=True)
    _check_number("min_snr", min_snr, positive=False)
    dark = _inverted(images)  # (N, H, W) darkness in [0, 1]; validates the shape and dtype
    axes = [_read_axis(d, min_depth, min_snr) for d in (dark, dark.transpose(0, 2, 1))]
    fields = [np.stack(column, axis=1) for column in zip(*axes)]  # each (N, 2)
    for array in fields:
        array.setflags(write=False)
    return AxisReading(*fields)


def _check_number(name: str, value: float, *, positive: bool) -> None:
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (real and math.isfinite(value) and (value > 0 if positive else value >= 0)):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}; got {value!r}")


# --------------------------------------------------------------------------- one axis


def _read_axis(dark: np.ndarray, min_depth: float, min_snr: float) -> tuple[np.ndarray, ...]:
    """(N, A, B) darkness, read along B (the last axis) -> (N,) position, present, peaks, depth,
    spread, extent of that axis."""
    stripe, sharp, soft = _profiles(dark)  # (N, B) each
    (bg_s, spread_s, depth_s), (bg_b, spread_b, depth_b) = _contrast(stripe), _contrast(soft)
    pass_s, pass_b = _passes(depth_s, spread_s, min_depth, min_snr), _passes(depth_b, spread_b, min_depth, min_snr)
    with np.errstate(divide="ignore", invalid="ignore"):  # a clean profile has spread 0: snr inf
        better = depth_b / spread_b > depth_s / spread_s  # NaN (0 / 0) compares False
    use_bump = (pass_b & ~pass_s) | ((pass_b == pass_s) & better)  # ties (clean stripes): stripe
    background, spread, depth = (np.where(use_bump, b, s) for b, s in
                                 ((bg_b, bg_s), (spread_b, spread_s), (depth_b, depth_s)))
    present = pass_s | pass_b
    floor = np.maximum(min_depth, min_snr * spread) / 2.0  # darkness units, like the profiles
    seen = np.where(use_bump[:, None], soft, stripe)  # what the floor and the peak count read
    peaks = np.where(present, _count_peaks(seen, background, floor), 0).astype(np.int64)
    located = np.where(use_bump[:, None], sharp, stripe)  # the bump profile unsmoothed along B
    positions = np.full(len(dark), np.nan)
    positions[present] = _positions(located[present], peaks[present] > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        extent = np.where(depth_b > 0, np.clip(depth_s / depth_b, 0.0, 1.0), np.nan)
    return positions, present, peaks, depth, spread, extent


def _profiles(dark: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, A, B) darkness -> (N, B) stripe profile, bump profile, bump profile smoothed along B."""
    lines = np.median(dark, axis=2, keepdims=True)  # (N, A, 1): the other axis's stripe, a grey level
    residual = dark - lines  # (N, A, B)
    # The rows the other stripe darkens have had part of this stripe clipped away; weighing a row
    # by (its lightness / the typical row's)^CROSSING leaves them out, so the crossing hardly
    # flattens the profile. Capped at 1: rows lighter than typical must not outweigh the rest.
    light, typical = 1.0 - lines, 1.0 - np.median(lines, axis=1, keepdims=True)  # (N, A, 1), (N, 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(typical > 0, np.clip(light / typical, 0.0, 1.0), 1.0) ** CROSSING + 1e-12
    stripe = (weights * residual).sum(axis=1) / weights.sum(axis=1)
    across = _smooth(residual, 1, ACROSS)  # (N, A, B), smoothed along A only
    return stripe, across.max(axis=1), _smooth(across, 2, ALONG).max(axis=1)


def _passes(depth: np.ndarray, spread: np.ndarray, min_depth: float, min_snr: float) -> np.ndarray:
    """The contrast floor: does a profile's peak (depth, spread: model units) make the axis present?"""
    return (depth >= min_depth) & (depth >= min_snr * spread)


def _smooth(values: np.ndarray, axis: int, sigma: float) -> np.ndarray:
    """(N, A, B) -> the same, Gaussian-smoothed along `axis` (1 or 2) only, borders mirrored."""
    reach = int(math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    lines = np.ascontiguousarray(np.moveaxis(values, axis, 2))  # the smoothed axis last
    flat = lines.reshape(-1, lines.shape[2])  # one image line a row: a 1-D filter never mixes them
    if len(flat) == 0:
        return values.copy()
    # BORDER_REFLECT is numpy's "symmetric" (edge sample repeated); one call for the whole stack.
    out = cv2.sepFilter2D(flat, -1, taps / taps.sum(), np.ones(1), borderType=cv2.BORDER_REFLECT)
    return np.moveaxis(out.reshape(lines.shape), 2, axis)


def _contrast(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, B) profiles (darkness) -> (N,) background (darkness), spread and depth (model units)."""
    background = np.median(profile, axis=1)
    spread = 2.0 * _MAD_TO_STD * np.median(np.abs(profile - background[:, None]), axis=1)
    depth = 2.0 * (profile.max(axis=1, initial=0.0) - background)
    return background, spread, depth


def _count_peaks(profile: np.ndarray, background: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """(N, B) profiles -> (N,) runs above half the height whose own height clears `floor`."""
    n, width = profile.shape
    height = profile - background[:, None]  # (N, B)
    above = height > 0.5 * height.max(axis=1, keepdims=True)
    starts = above & ~np.pad(above, ((0, 0), (1, 0)))[:, :-1]
    run = np.cumsum(starts, axis=1) + (width + 1) * np.arange(n)[:, None]  # unique id a run
    tops = np.zeros(n * (width + 1) + 1)
    np.maximum.at(tops, run[above], height[above])  # each run's own height
    return (tops.reshape(-1)[:-1].reshape(n, width + 1) >= floor[:, None]).sum(axis=1)


# --------------------------------------------------------------------------- sub-pixel position


def _positions(profiles: np.ndarray, several: np.ndarray) -> np.ndarray:
    """(M, B) present profiles, (M,) bool -> (M,) the sub-pixel centre of each one's peak (of all
    its peaks where `several`): module docstring, "Position"."""
    height = profiles - np.median(profiles, axis=1, keepdims=True)
    top = height.argmax(axis=1)
    level = LEVEL * height.max(axis=1, keepdims=True)
    above = height > level
    main = _run_of(above, top)
    weights = np.where(np.where(several[:, None], above, main), height - level, 0.0)
    centres = weights @ (np.arange(profiles.shape[1]) + 0.5) / weights.sum(axis=1)
    # A peak cut by the frame's edge: a centroid would pull it inward; fit a Gaussian instead.
    for k in np.flatnonzero(~several & (main[:, 0] | main[:, -1])):
        fitted = _gaussian_vertex(height[k], int(top[k]))
        centres[k] = centres[k] if fitted is None else fitted
    return centres


def _run_of(mask: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(M, B) bool, (M,) an index where each row is True -> (M, B) bool: the run of True holding it."""
    starts = mask & ~np.pad(mask, ((0, 0), (1, 0)))[:, :-1]
    run = np.cumsum(starts, axis=1)  # run number of every sample (a False sample: its left run's)
    return mask & (run == np.take_along_axis(run, index[:, None], axis=1))


def _run_around(mask: np.ndarray, index: int) -> tuple[int, int]:
    """First and last index of the run of True in `mask` (1-D) that contains `index`."""
    off = np.flatnonzero(~mask)
    before, after = off[off < index], off[off > index]
    return (int(before[-1]) + 1 if len(before) else 0), (int(after[0]) - 1 if len(after) else len(mask) - 1)


def _gaussian_vertex(height: np.ndarray, top: int) -> float | None:
    """Centre of a Gaussian fitted to the peak around `top` (Guo 2011: log-parabola, weights y^2).

    Uses the run of samples above _FIT_LEVEL of the peak's height; None when fewer than three or
    the fit is not a peak (then the caller keeps the centroid)."""
    lo, hi = _run_around(height > _FIT_LEVEL * height[top], top)
    if hi - lo < 2:
        return None
    y = height[lo:hi + 1]
    t = np.arange(lo, hi + 1) + 0.5 - (top + 0.5)  # centred on the peak for conditioning
    design = np.stack([np.ones_like(t), t, t * t], axis=1) * y[:, None]  # rows weighted by y
    try:  # the 3 x 3 normal equations: ~10x cheaper than lstsq, well conditioned with t centred
        a, b, c = np.linalg.solve(design.T @ design, design.T @ (y * np.log(y)))
    except np.linalg.LinAlgError:
        return None
    # A peak (c < 0) no darker than black: the fitted amplitude exp(a - b^2 / 4c) is a darkness,
    # <= 1 but for noise. Beyond, the fit extrapolates noise, not a stripe beyond the edge.
    if not (c < 0 and a - b * b / (4.0 * c) <= _MAX_LOG_AMPLITUDE):
        return None
    return float(top + 0.5 - b / (2.0 * c))


# --------------------------------------------------------------------------- scoring


def accuracy_per_axis(
    positions: np.ndarray,
    target: np.ndarray,
    expected: np.ndarray | None = None,
    *,
    tol: float = 1.0,
    period: float | np.ndarray | None = None,
    either: np.ndarray | None = None,
) -> Accuracy:
    """Score positions read per axis against labels, absent axes included (follow-up paper Fig. 4).

    An axis of a sample is correct when its label is present and the reading lies within `tol`
    of it (|read - label| <= tol, wrapped on a circle of `period` when given), or when its label
    is absent and the axis reads absent (NaN). An axis marked `either` is correct both ways: read
    absent, or read within `tol` of its target (a label on the frame's edge, which a faithful image
    may show or not). `overall` counts samples with both axes correct.

    Args:
        positions: (N, 2) read (x, y), NaN where absent: `read_axes(...).positions`, or
            `predict_centres_periodic(...).centres` (never absent).
        target: (N, 2) labels (x, y), same coordinates; ignored where `expected` is False.
        expected: (N, 2) bool, is the label's axis present (the caller's rule, e.g. its centre
            inside the frame); None = every axis present.
        tol: largest error, pixels, still correct (inclusive); finite, >= 0.
        period: None (a plain distance), or the canvas size(s) for a torus: a number or (W, H).
        either: (N, 2) bool, axes for which an absent reading is correct too; None = none.

    Returns:
        metrics.Accuracy (fractions and counts; NaN fractions when N == 0).

    Raises:
        ValueError: on shapes that are not (N, 2) alike, a bad `tol` or `period`.
    """
    positions, target = (np.asarray(a, dtype=np.float64) for a in (positions, target))
    expected = np.ones(target.shape, dtype=bool) if expected is None else np.asarray(expected)
    either = np.zeros(target.shape, dtype=bool) if either is None else np.asarray(either)
    if positions.ndim != 2 or positions.shape[1:] != (2,) or target.shape != positions.shape \
            or any(m.shape != positions.shape or m.dtype != bool for m in (expected, either)):
        raise ValueError(f"positions, target, expected and either must be (N, 2) alike (expected, either "
                         f"bool); got {positions.shape}, {target.shape}, {expected.shape} {expected.dtype}, "
                         f"{either.shape} {either.dtype}")
    if isinstance(tol, bool) or not (isinstance(tol, (int, float, np.integer, np.floating))
                                     and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    error = np.abs(positions - target) if period is None else wrapped_error(positions, target, period)
    read = np.isfinite(positions)
    near = read & (error <= tol)  # NaN error compares False
    hit = np.where(expected, near, ~read) | (either & (near | ~read))  # (N, 2)
    n = len(hit)
    correct, correct_x, correct_y = (int(h.sum()) for h in (hit.all(axis=1), hit[:, 0], hit[:, 1]))
    share = (lambda count: count / n) if n else (lambda count: math.nan)
    return Accuracy(overall=share(correct), x=share(correct_x), y=share(correct_y), n=n,
                    correct=correct, correct_x=correct_x, correct_y=correct_y)
