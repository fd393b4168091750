"""read_axes (positions per axis: stripes, sums of stripes, bumps), predict_centres_periodic (bumps on
a torus), wrapped_error and accuracy_per_axis, against ground truth rendered here by a small numpy
formula of their own (follow-up paper Fig. 1: pixel (i, j) centred at (j + .5, i + .5); darkness
g_x(col) + g_y(row) clipped to 1 for a sum of stripes, g_x * g_y for a bump; model scale
1 - 2 x darkness). Numbers behind the thresholds: bench/stripes.py, metrics/stripes.py's docstring.
"""

import numpy as np
import pytest

from metrics import (AXIS_MIN_DEPTH, Accuracy, accuracy_per_axis, predict_centres, predict_centres_periodic,
                     read_axes, wrapped_error)

N = 400


def profile(centres, sigmas, size=32):
    """(N,) centres, (N,) sigmas -> (N, size) Gaussians of peak 1 sampled at the pixel centres."""
    pix = np.arange(size) + 0.5
    centres, sigmas = np.broadcast_arrays(np.asarray(centres, float), np.asarray(sigmas, float))
    return np.exp(-((pix[None, :] - centres[:, None]) ** 2) / (2 * sigmas[:, None] ** 2))


def sum_of_stripes(x, y, sx, sy, *, show_x=True, show_y=True, height=32, width=32):
    """A vertical stripe at x plus a horizontal one at y, darkness clipped to 1: (N, H, W) model scale."""
    show_x, show_y = (np.reshape(np.asarray(show, float), (-1, 1, 1)) for show in (show_x, show_y))
    dark = show_x * profile(x, sx, width)[:, None, :] + show_y * profile(y, sy, height)[:, :, None]
    return 1 - 2 * np.clip(dark, 0, 1)


def bump(x, y, sx, sy):
    """A 2-D Gaussian bump, darkness g_x * g_y: (N, 32, 32) model scale."""
    return 1 - 2 * profile(x, sx)[:, None, :] * profile(y, sy)[:, :, None]


def torus_bump(centres, sigmas, height=32, width=32):
    """Bumps on a canvas whose edges wrap: the distance to the centre taken the short way round."""
    centres = np.asarray(centres, float)
    dx = np.abs(np.arange(width)[None, None, :] + 0.5 - centres[:, 0, None, None]) % width
    dy = np.abs(np.arange(height)[None, :, None] + 0.5 - centres[:, 1, None, None]) % height
    dx, dy = np.minimum(dx, width - dx), np.minimum(dy, height - dy)
    return 1 - 2 * np.exp(-(dx**2 + dy**2) / (2 * np.asarray(sigmas, float)[:, None, None] ** 2))


def draw(rng, n, low=1.0, high=31.0, sigma=(0.5, 3.0)):
    """x, y uniform in [low, high) (sub-pixel), sigma_x, sigma_y uniform in `sigma`."""
    return rng.uniform(low, high, n), rng.uniform(low, high, n), rng.uniform(*sigma, n), rng.uniform(*sigma, n)


def smooth_fields(rng, n, scale):
    """(n, 32, 32) zero-mean unit-std random fields, correlation length ~scale px (FFT blur)."""
    k = np.fft.fftfreq(32)
    gain = np.exp(-2 * (np.pi * scale) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    field = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, 32, 32))) * gain).real
    field -= field.mean(axis=(1, 2), keepdims=True)
    return field / field.std(axis=(1, 2), keepdims=True)


# --------------------------------------------------------------------------- clean positions


@pytest.mark.parametrize("kind, shows", [("vertical stripe", (True, False)), ("horizontal stripe", (False, True)),
                                         ("sum of stripes", (True, True)), ("bump", (True, True))])
def test_clean_marks_inside_the_frame_read_present_within_a_fifth_of_a_pixel(kind, shows):
    rng = np.random.default_rng(0)
    x, y, sx, sy = draw(rng, N)  # centres >= 1 px inside the frame, sigma 0.5..3, sub-pixel
    images = bump(x, y, sx, sy) if kind == "bump" else sum_of_stripes(x, y, sx, sy, show_x=shows[0], show_y=shows[1])
    read = read_axes(images)
    assert np.all(read.present == np.array(shows)), kind
    assert np.all(read.peaks == np.array(shows, dtype=int))
    assert np.all(np.isnan(read.positions[:, ~np.array(shows)]))
    error = np.abs(read.positions - np.stack([x, y], axis=1))[:, np.array(shows)]
    # Measured: p99 ~0.03 px, max ~0.04 (the centroid inside, the edge fit exact near the border).
    assert error.max() <= 0.2, f"{kind}: worst {error.max():.3f} px"
    assert np.percentile(error, 99) <= 0.05
    assert np.median(error) <= 0.01


def test_x_is_the_column_axis_and_pixel_centres_are_at_half_integers():
    # A non-square canvas, so that swapped axes or a missing +0.5 cannot pass.
    images = sum_of_stripes([9.5, 30.0], [5.5, 8.25], 1.5, 1.5, height=24, width=40)
    np.testing.assert_allclose(read_axes(images).positions, [[9.5, 5.5], [30.0, 8.25]], atol=0.02)


@pytest.mark.parametrize("sigma_y", [0.5, 1.5, 3.0])
def test_the_crossing_does_not_move_the_other_axis_wherever_it_lies(sigma_y):
    # The horizontal stripe darkens every column alike except at the crossing, where the clip eats
    # the vertical stripe's top: read x with the horizontal stripe swept across the whole frame.
    rng = np.random.default_rng(1)
    y = np.linspace(-2.0, 34.0, N)  # off-frame, the borders, and every row between
    x, sx = rng.uniform(1, 31, N), rng.uniform(0.5, 3, N)
    crossed = read_axes(sum_of_stripes(x, y, sx, sigma_y))
    alone = read_axes(sum_of_stripes(x, y, sx, sigma_y, show_y=False))
    assert np.all(crossed.present[:, 0])
    assert np.abs(crossed.positions[:, 0] - x).max() <= 0.1
    assert np.abs(crossed.positions[:, 0] - alone.positions[:, 0]).max() <= 0.1
    assert 0.9 <= crossed.extent[:, 0].min()  # a stripe across the frame, not a bump


def test_marks_at_the_border_are_fitted_not_pulled_inward():
    # Centres in the frame's outer pixel: a centroid would read a sigma-3 stripe at x = 0 as ~2.
    rng = np.random.default_rng(2)
    x = np.where(rng.random(N) < 0.5, rng.uniform(0, 1, N), rng.uniform(31, 32, N))
    y, sx, sy = rng.uniform(0, 32, N), rng.uniform(1, 3, N), rng.uniform(0.5, 3, N)
    for images in (sum_of_stripes(x, y, sx, sy), bump(x, y, sx, sy)):
        read = read_axes(images)
        assert np.all(read.present[:, 0])
        assert np.abs(read.positions[:, 0] - x).max() <= 0.1
    # Below sigma 1 the outer pixel holds too few samples for a fit (documented): within a pixel.
    narrow = read_axes(sum_of_stripes(x, y, rng.uniform(0.5, 1, N), sy, show_y=False))
    assert np.abs(narrow.positions[:, 0] - x).max() <= 0.7


def test_a_stripe_centred_off_frame_is_present_exactly_when_its_tail_clears_the_floor():
    rng = np.random.default_rng(3)
    sx = rng.uniform(0.5, 3, N)
    x = -rng.uniform(0, 3, N) * sx  # the centre 0..3 sigma left of the frame
    read = read_axes(sum_of_stripes(x, x, sx, 1.0, show_y=False))
    first_column = 2 * profile(x, sx)[:, 0]  # the tail's depth in the first column, model units
    clear = np.abs(first_column - AXIS_MIN_DEPTH) > 0.02  # away from the floor itself
    np.testing.assert_array_equal(read.present[clear, 0], first_column[clear] >= AXIS_MIN_DEPTH)
    assert 0.2 < read.present[:, 0].mean() < 0.9  # both outcomes occur
    # Present ones read where they are, outside the frame, when the tail holds 3 samples to fit.
    wide = read.present[:, 0] & (sx >= 1.5)
    assert np.all(read.positions[wide, 0] < 0.05)
    assert np.abs(read.positions[wide, 0] - x[wide]).max() <= 0.1


# --------------------------------------------------------------------------- absent, several


def level(rng, spread=1.0):
    """(300, 1, 1) constant levels U(-spread, spread), one an image."""
    return rng.uniform(-spread, spread, (300, 1, 1))


def noise(rng, std):
    return rng.normal(0, std, (300, 32, 32))


@pytest.mark.parametrize(
    "name, make",
    [
        ("blank", lambda rng: np.ones((300, 32, 32))),
        ("constant grey levels", lambda rng: np.broadcast_to(level(rng), (300, 32, 32))),
        ("noise std 0.02 around a level", lambda rng: level(rng) + noise(rng, 0.02)),
        ("noise std 0.3 around a level", lambda rng: level(rng) + noise(rng, 0.3)),
        ("noise std 1 around a level", lambda rng: level(rng) + noise(rng, 1.0)),
        ("noise std 0.5 on white", lambda rng: 1 + noise(rng, 0.5)),
        ("smooth 2 px fields, std 0.3", lambda rng: level(rng, 0.5) + 0.3 * smooth_fields(rng, 300, 2)),
        ("smooth 4 px fields, std 0.3", lambda rng: level(rng, 0.5) + 0.3 * smooth_fields(rng, 300, 4)),
        ("smooth 8 px fields, std 0.3", lambda rng: level(rng, 0.5) + 0.3 * smooth_fields(rng, 300, 8)),
    ],
)
def test_images_without_a_mark_read_absent_on_both_axes(name, make):
    # Measured (bench/stripes.py and 3,000 a family): at most 0.05 % of the axes of such images
    # (smooth fields of std 0.5) and 0.1 % of an untrained model's read present at the default floor.
    read = read_axes(np.clip(make(np.random.default_rng(4)), -1, 1))
    assert read.present.mean() <= 0.005, name
    assert np.all(np.isnan(read.positions[~read.present])) and np.all(read.peaks[~read.present] == 0)


def test_a_faint_stripe_is_absent_below_the_depth_floor_and_present_above_it():
    rng = np.random.default_rng(5)
    x, y, sx, sy = draw(rng, 200)
    faint = 1 - 0.1 * (1 - sum_of_stripes(x, y, sx, sy))  # depth 0.2 < AXIS_MIN_DEPTH = 0.3, no noise
    assert not read_axes(faint).present.any()
    low = read_axes(faint, min_depth=0.1)
    assert low.present.all() and np.abs(low.positions - np.stack([x, y], axis=1)).max() <= 0.2


def test_two_separated_stripes_on_one_axis_count_several():
    rng = np.random.default_rng(6)
    x = rng.uniform(3, 29, N)
    second = np.where(x < 16, x + rng.uniform(12, 16, N), x - rng.uniform(12, 16, N))
    y, sy = rng.uniform(0, 32, N), rng.uniform(0.5, 3, N)
    two = np.minimum(sum_of_stripes(x, y, rng.uniform(0.5, 1.5, N), sy),
                     sum_of_stripes(second, y, rng.uniform(0.5, 1.5, N), sy, show_y=False))
    read = read_axes(two)
    assert np.all(read.peaks[:, 0] == 2) and np.all(read.peaks[:, 1] == 1)
    # "several" reads the centroid of both, like the bump reader's whole-image centroid.
    low, high = np.minimum(x, second), np.maximum(x, second)
    assert np.all((read.positions[:, 0] > low + 1) & (read.positions[:, 0] < high - 1))


# --------------------------------------------------------------------------- noise, units


@pytest.mark.parametrize("kind, std, sigma, present, p99", [
    ("stripe", 0.2, (0.5, 3.0), 1.0, 0.15),  # measured: 100 %, p99 0.09 px
    ("sum", 0.2, (0.5, 3.0), 1.0, 0.15),  # 100 %, p99 0.10
    ("sum", 0.3, (0.5, 3.0), 0.98, 0.2),  # 99 %, p99 0.14
    ("bump", 0.1, (1.0, 3.0), 1.0, 0.2),  # 100 %, p99 0.15
    ("bump", 0.2, (1.0, 3.0), 0.95, 0.3),  # 98 %, p99 0.23
])
def test_pixel_noise(kind, std, sigma, present, p99):
    rng = np.random.default_rng(7)
    sx, sy = rng.uniform(*sigma, (2, N))
    x, y = rng.uniform(3 * sx, 32 - 3 * sx), rng.uniform(3 * sy, 32 - 3 * sy)
    clean = bump(x, y, sx, sy) if kind == "bump" else sum_of_stripes(x, y, sx, sy, show_y=kind == "sum")
    read = read_axes(np.clip(clean + rng.normal(0, std, clean.shape), -1, 1))
    assert read.present[:, 0].mean() >= present
    assert np.nanpercentile(np.abs(read.positions[:, 0] - x), 99) <= p99
    if kind == "stripe":
        assert not read.present[:, 1].any()  # the noise does not make a horizontal stripe


def test_extent_tells_a_stripe_from_a_bump():
    rng = np.random.default_rng(8)
    x, y, sx, sy = draw(rng, 200, 4, 28)
    stripe_extent = read_axes(sum_of_stripes(x, y, sx, sy)).extent
    bump_extent = read_axes(bump(x, y, sx, sy)).extent
    assert stripe_extent.min() >= 0.9 and bump_extent.max() <= 0.4


def test_depth_and_spread_are_in_model_units():
    blank = np.ones((1, 32, 32))
    stripe = sum_of_stripes([16.5], [0.0], 1.0, 1.0, show_y=False)  # black centre column, white elsewhere
    read = read_axes(np.concatenate([blank, stripe]))
    np.testing.assert_allclose(read.depth[:, 0], [0.0, 2.0], atol=0.01)
    np.testing.assert_allclose(read.spread[:, 0], [0.0, 0.0], atol=0.01)
    assert np.isnan(read.extent[0]).all() and read.extent[1, 0] == pytest.approx(1.0)


def test_nan_inf_and_out_of_range_pixels_do_not_disturb_a_reading():
    clean = sum_of_stripes([12.3], [19.7], 2.0, 1.5)[0]
    holes = clean.copy()
    holes[0, :4] = np.nan  # NaN counts as white, as in metrics.predict_centres
    holes[31, 31] = np.inf
    saturated = np.clip(3.0 * clean, -5, 5)  # stripes clipped to plateaus, still symmetric
    read = read_axes(np.stack([holes, saturated]))
    assert read.present.all()
    np.testing.assert_allclose(read.positions, [[12.3, 19.7]] * 2, atol=0.1)


def test_results_are_read_only_typed_and_empty_stacks_are_fine():
    read = read_axes(sum_of_stripes([16.0], [8.0], 2.0, 2.0))
    assert read.positions.shape == (1, 2) and read.positions.dtype == np.float64
    assert read.present.dtype == bool and np.issubdtype(read.peaks.dtype, np.integer)
    with pytest.raises(ValueError):
        read.positions[0, 0] = 0.0
    empty = read_axes(np.zeros((0, 32, 32)))
    assert empty.positions.shape == (0, 2) and empty.present.shape == (0, 2)


@pytest.mark.parametrize("images, kwargs, match", [
    (np.zeros((32, 32)), {}, "images must be"),
    (np.zeros((1, 32, 32), dtype=complex), {}, "images must be"),
    (np.ones((1, 32, 32)), {"min_depth": 0.0}, "min_depth must be a finite number > 0"),
    (np.ones((1, 32, 32)), {"min_snr": -1.0}, "min_snr must be a finite number >= 0"),
    (np.ones((1, 32, 32)), {"min_snr": np.nan}, "min_snr must be a finite number >= 0"),
])
def test_bad_input_is_one_clear_value_error(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        read_axes(images, **kwargs)


# --------------------------------------------------------------------------- the torus


def test_bumps_across_the_wrapping_edges_read_as_one_bump_within_a_fifth_of_a_pixel():
    rng = np.random.default_rng(9)
    centres = np.concatenate([rng.uniform(0, 32, (N, 2)), rng.uniform(-2, 2, (N, 2)) % 32])  # + corners
    sigmas = rng.uniform(0.8, 3, 2 * N)
    images = torus_bump(centres, sigmas)
    read = predict_centres_periodic(images)
    assert np.all(read.blobs == 1)
    gap = np.abs(read.centres - centres)
    error = np.minimum(gap, 32 - gap).max(axis=1)
    assert error.max() <= 0.2 and np.percentile(error, 99) <= 0.1  # measured max 0.11, p99 0.07
    assert np.all((read.centres >= 0) & (read.centres < 32))
    # The plain reader splits the corner bumps in two or four: what this reader is for.
    assert np.mean(predict_centres(images[N:]).blobs >= 2) > 0.5


def test_torus_reader_under_noise_and_with_two_bumps():
    rng = np.random.default_rng(10)
    centres, sigmas = rng.uniform(0, 32, (N, 2)), rng.uniform(1, 3, N)
    noisy = np.clip(torus_bump(centres, sigmas) + rng.normal(0, 0.1, (N, 32, 32)), -1, 1)
    read = predict_centres_periodic(noisy)
    assert np.mean(read.blobs == 1) >= 0.99
    assert np.percentile(wrapped_error(read.centres, centres, 32).max(axis=1), 99) <= 0.3
    far = (centres + 16) % 32  # the antipode: as far apart as a torus allows
    two = np.minimum(torus_bump(centres, sigmas), torus_bump(far, sigmas))
    # Still "several"; the second bump may sit across the edges after the roll, its parts counted
    # apart (documented in metrics/periodic.py): the count is 2 or more, not always 2.
    assert np.all(predict_centres_periodic(two).blobs >= 2)


def test_torus_reader_on_a_non_square_canvas_and_bad_input():
    centres = np.array([[39.6, 2.0], [0.3, 23.5]])
    read = predict_centres_periodic(torus_bump(centres, np.array([1.5, 2.0]), height=24, width=40))
    assert np.all(read.blobs == 1)
    np.testing.assert_allclose(wrapped_error(read.centres, centres, [40, 24]), 0.0, atol=0.1)
    with pytest.raises(ValueError, match="images must be"):
        predict_centres_periodic(np.zeros((32, 32)))


# --------------------------------------------------------------------------- scoring


def test_wrapped_error_is_the_short_way_round():
    np.testing.assert_allclose(wrapped_error([0.5, 31.5, 10.0, 3.0], [31.5, 0.5, 26.0, 3.0], 32), [1, 1, 16, 0])
    np.testing.assert_allclose(wrapped_error([[0.5, 0.5]], [[39.5, 23.5]], [40, 24]), [[1.0, 1.0]])
    assert np.isnan(wrapped_error(np.nan, 1.0, 32))
    with pytest.raises(ValueError, match="period must be finite and > 0"):
        wrapped_error(1.0, 2.0, 0)


def test_accuracy_per_axis_scores_present_and_absent_axes():
    nan = np.nan
    positions = np.array([[10.0, nan], [10.0, 5.0], [nan, nan], [11.0, 5.5], [0.4, 31.8]])
    target = np.array([[10.5, 3.0], [10.0, 3.0], [4.0, 4.0], [10.0, 5.0], [31.6, 0.2]])
    expected = np.array([[True, False], [True, False], [False, False], [True, True], [True, True]])
    # rows: x hit, y absent as expected | y read but absent | both absent | x at exactly tol | wrapped
    plain = accuracy_per_axis(positions, target, expected, tol=1.0)
    assert (plain.correct_x, plain.correct_y, plain.correct, plain.n) == (4, 3, 3, 5)
    wrapped = accuracy_per_axis(positions, target, expected, tol=1.0, period=32)
    assert (wrapped.correct_x, wrapped.correct_y, wrapped.correct) == (5, 4, 4)
    assert isinstance(wrapped, Accuracy) and wrapped.overall == pytest.approx(0.8)
    # A present label read absent is wrong; expected=None means every label present.
    assert accuracy_per_axis(np.array([[nan, 1.0]]), np.array([[1.0, 1.0]])).correct_x == 0
    empty = accuracy_per_axis(np.zeros((0, 2)), np.zeros((0, 2)))
    assert empty.n == 0 and np.isnan(empty.overall)


def test_accuracy_per_axis_either_takes_absent_or_near_and_nothing_else():
    nan = np.nan
    positions = np.array([[nan, 5.0], [6.4, 5.0], [9.0, 5.0], [nan, nan]])
    target = np.array([[6.0, 5.0], [6.0, 5.0], [6.0, 5.0], [6.0, 5.0]])
    either = np.array([[True, False], [True, False], [True, False], [False, False]])
    # rows: edge read absent | edge read near | edge read 3 px off (wrong) | plain y read absent (wrong)
    score = accuracy_per_axis(positions, target, either=either, tol=1.0)
    assert (score.correct_x, score.correct_y, score.correct) == (2, 3, 2)
    with pytest.raises(ValueError, match="either bool"):
        accuracy_per_axis(positions, target, either=either.astype(int))


def test_accuracy_per_axis_on_read_images_of_the_1d_stripes_dataset():
    # The paper's 1D-stripes set: a 44 px latent canvas, the 32 px frame cropped at 6..38; a stripe
    # whose centre falls in the margin is absent from the label, though its tail may show. Ours
    # reads a tail that clears the floor, so score the stripes inside and those >= 2.5 sigma out.
    rng = np.random.default_rng(11)
    latent = rng.uniform(0, 44, (N, 2))
    sigma = 1.0
    frame = latent - 6.0
    inside = (frame >= 0) & (frame <= 32)
    far_out = (frame < -2.5 * sigma) | (frame > 32 + 2.5 * sigma)
    keep = np.all(inside | far_out, axis=1)
    frame, inside = frame[keep], inside[keep]
    images = sum_of_stripes(frame[:, 0], frame[:, 1], sigma, sigma)  # the crop of the latent canvas
    score = accuracy_per_axis(read_axes(images).positions, frame, inside, tol=0.5)
    assert score.overall == 1.0 and score.n == keep.sum()


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.zeros((2, 2)), np.zeros((3, 2))), {}, "must be \\(N, 2\\) alike"),
    ((np.zeros((2, 3)), np.zeros((2, 3))), {}, "must be \\(N, 2\\) alike"),
    ((np.zeros((2, 2)), np.zeros((2, 2)), np.ones((2, 2))), {}, "must be \\(N, 2\\) alike"),  # not bool
    ((np.zeros((2, 2)), np.zeros((2, 2))), {"tol": -1.0}, "tol must be a finite number >= 0"),
    ((np.zeros((2, 2)), np.zeros((2, 2))), {"period": -32}, "period must be finite and > 0"),
])
def test_accuracy_per_axis_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        accuracy_per_axis(*args, **kwargs)
