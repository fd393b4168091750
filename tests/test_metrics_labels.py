"""predict_centres: Otsu + contours + centroid (paper App. A.3, Alg. 1) on rendered bumps."""

import time

import numpy as np
import pytest

from metrics import predict_centres


def render(centres, sigmas, height=32, width=32):
    """(N, 2) (x, y) centres, (N,) sigmas -> (N, H, W) dark bumps on white, in [0, 1]."""
    centres = np.asarray(centres, dtype=float)
    sigmas = np.broadcast_to(np.asarray(sigmas, dtype=float), (len(centres),))
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)  # pixel centres
    mx, my = centres[:, 0, None, None], centres[:, 1, None, None]
    s = sigmas[:, None, None]
    return 1 - np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * s**2))


def to_model_scale(images01):
    return 2 * images01 - 1


def random_bumps(rng, n, size=32):
    """Sub-pixel centres at least 3 sigma + 1 from the border, sigma in [0.8, 3]."""
    sigmas = rng.uniform(0.8, 3.0, n)
    margin = 3 * sigmas + 1
    centres = np.stack([rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)], axis=1)
    return centres, sigmas


def test_clean_bumps_found_within_quarter_pixel():
    rng = np.random.default_rng(0)
    centres, sigmas = random_bumps(rng, 500)
    pred = predict_centres(to_model_scale(render(centres, sigmas)))
    error = np.abs(pred.centres - centres).max(axis=1)
    assert np.all(pred.blobs == 1)
    assert error.max() <= 0.25, f"worst error {error.max():.3f} px at sigma {sigmas[error.argmax()]:.2f}"
    # Sub-pixel precision of the threshold-weighted centroid (measured median ~0.01 px; the
    # contour polygon's moment gives ~0.10, intensity without the threshold subtracted ~0.05).
    assert np.median(error) < 0.03


def test_noisy_bumps_found_within_half_pixel():
    rng = np.random.default_rng(1)
    centres, sigmas = random_bumps(rng, 500)
    noisy = render(centres, sigmas) + rng.normal(0.0, 0.05, (500, 32, 32))
    pred = predict_centres(to_model_scale(noisy))
    error = np.abs(pred.centres - centres).max(axis=1)
    single = pred.blobs == 1
    # A noise speck above Otsu's threshold is a second blob, and the paper's algorithm then
    # falls back to the whole-image centroid: rare at this noise level (~0.2%, wide bumps).
    assert single.mean() >= 0.98
    assert error[single].max() <= 0.5
    assert np.mean(error <= 0.5) >= 0.98


def test_x_is_the_column_axis_and_pixel_centres_are_at_half_integers():
    # Non-square canvas so that swapped axes or a missing +0.5 cannot pass.
    images = to_model_scale(render([[9.5, 5.5], [30.0, 8.25]], 1.5, height=24, width=40))
    pred = predict_centres(images)
    np.testing.assert_allclose(pred.centres, [[9.5, 5.5], [30.0, 8.25]], atol=0.05)


def test_two_separated_bumps_count_two_and_give_the_whole_image_centroid():
    a, b = np.array([[8.0, 10.0]]), np.array([[24.0, 20.0]])
    sa, sb = 1.5, 2.0
    dark = (1 - render(a, sa)) + (1 - render(b, sb))  # inverted image: the sum of two bumps
    pred = predict_centres(to_model_scale(1 - dark))
    # Whole-image centroid of two full Gaussians: their centres weighted by mass ~ sigma^2.
    expected = (sa**2 * a + sb**2 * b) / (sa**2 + sb**2)
    assert pred.blobs[0] == 2
    np.testing.assert_allclose(pred.centres, expected, atol=0.05)


@pytest.mark.parametrize(
    "fill, name",
    [
        (1.0, "blank (white)"),
        (0.0, "constant grey"),
        (-1.0, "saturated black"),
        (np.nan, "all NaN"),
        (-7.0, "beyond range"),
    ],
)
def test_images_without_contrast_have_no_blob_and_the_canvas_centre(fill, name):
    pred = predict_centres(np.full((1, 32, 32), fill))
    assert pred.blobs[0] == 0, name
    np.testing.assert_array_equal(pred.centres, [[16.0, 16.0]])


def test_nan_inf_and_out_of_range_pixels_do_not_disturb_a_bump():
    clean = to_model_scale(render([[12.3, 19.7]], 2.0))[0]
    holes = clean.copy()
    holes[0, :4] = np.nan  # background NaN counts as white
    holes[31, 31] = np.inf  # whiter than white: white
    corner = clean.copy()
    corner[30, 0] = -np.inf  # one darkest pixel in a corner: a second blob
    saturated = np.clip(3.0 * clean, -5, 5)  # bump clipped to a plateau, still symmetric
    pred = predict_centres(np.stack([holes, corner, saturated]))
    assert pred.blobs.tolist() == [1, 2, 1]
    np.testing.assert_allclose(pred.centres[[0, 2]], [[12.3, 19.7]] * 2, atol=0.25)


def test_results_are_read_only_and_typed():
    pred = predict_centres(to_model_scale(render([[16.0, 16.0]], 2.0)))
    assert pred.centres.dtype == np.float64 and pred.centres.shape == (1, 2)
    assert np.issubdtype(pred.blobs.dtype, np.integer) and pred.blobs.shape == (1,)
    with pytest.raises(ValueError):
        pred.centres[0, 0] = 0.0


def test_empty_stack_gives_empty_results():
    pred = predict_centres(np.zeros((0, 32, 32)))
    assert pred.centres.shape == (0, 2) and pred.blobs.shape == (0,)


@pytest.mark.parametrize(
    "bad", [np.zeros((32, 32)), np.zeros((2, 1, 32, 32)), np.zeros((1, 32, 32), dtype=complex)]
)
def test_wrong_shapes_and_types_are_rejected(bad):
    with pytest.raises(ValueError, match="images must be"):
        predict_centres(bad)


def test_500_images_take_well_under_the_eval_budget():
    rng = np.random.default_rng(2)
    images = to_model_scale(render(*random_bumps(rng, 500)))
    predict_centres(images)  # first call pays one-off imports / allocations
    best = min(_seconds(predict_centres, images) for _ in range(3))
    # Target < 50 ms (measured ~7 ms); the bound leaves room for a busy shared CI machine.
    assert best < 0.2, f"{best * 1e3:.0f} ms for 500 images"


def _seconds(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
