"""predict_centres: Otsu + contours + centroid (paper App. A.3, Alg. 1) on rendered bumps, and the
contrast floor that makes its blob count the paper's failure modes (Sec. 3) on generated inputs."""


import numpy as np
import pytest

from metrics import MIN_DEPTH, MIN_SNR, failure_modes, predict_centres

NO_FLOOR = dict(min_depth=0.0, min_snr=0.0)  # the paper's algorithm: every contour is a blob


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


# --------------------------------------------------------------------------- the contrast floor
# Generated inputs with a known answer (numbers: docs/failure-modes.md, bench/failure_modes.py).


def anywhere(rng, n, sigma_low, sigma_high):
    """Centres uniform over the whole canvas, borders and corners included."""
    return rng.uniform(0, 32, (n, 2)), rng.uniform(sigma_low, sigma_high, n)


def smooth_fields(rng, n, scale):
    """(n, 32, 32) zero-mean unit-std random fields, correlation length ~scale px (FFT blur)."""
    k = np.fft.fftfreq(32)
    gain = np.exp(-2 * (np.pi * scale) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    field = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, 32, 32))) * gain).real
    field -= field.mean(axis=(1, 2), keepdims=True)
    return field / field.std(axis=(1, 2), keepdims=True)


def modes(images, **floor):
    return failure_modes(predict_centres(np.clip(images, -1, 1), **floor).blobs)


@pytest.mark.parametrize("sigmas", [(0.5, 0.5), (1.0, 3.0)])
def test_every_ground_truth_bump_is_one_bump(sigmas):
    rng = np.random.default_rng(10)
    found = modes(to_model_scale(render(*anywhere(rng, 400, *sigmas))))
    assert found.n_one == 400, found


def level(rng, spread=1.0):
    """(300, 1, 1) constant levels U(-spread, spread), one an image."""
    return rng.uniform(-spread, spread, (300, 1, 1))


@pytest.mark.parametrize(
    "name, make",
    [
        ("noise std 0.02 around a level", lambda rng: level(rng) + rng.normal(0, 0.02, (300, 32, 32))),
        ("noise std 0.3 around a level", lambda rng: level(rng) + rng.normal(0, 0.3, (300, 32, 32))),
        ("noise std 1 around a level", lambda rng: level(rng) + rng.normal(0, 1.0, (300, 32, 32))),
        ("noise std 0.5 on white", lambda rng: 1 + rng.normal(0, 0.5, (300, 32, 32))),
        ("smooth 2 px fields, std 0.3", lambda rng: level(rng, 0.5) + 0.3 * smooth_fields(rng, 300, 2)),
        ("smooth 8 px fields, std 0.3", lambda rng: level(rng, 0.5) + 0.3 * smooth_fields(rng, 300, 8)),
    ],
)
def test_images_without_a_bump_are_no_bump_not_one_or_several(name, make):
    images = make(np.random.default_rng(11))
    found = modes(images)
    assert found.n_none == 300, (name, found)
    # The paper's algorithm, without the floor, reads the same images as one bump or several.
    assert modes(images, **NO_FLOOR).n_none == 0


def test_a_faint_bump_below_the_floor_is_no_bump_and_one_above_it_is_one():
    rng = np.random.default_rng(12)
    bump = to_model_scale(render(*anywhere(rng, 200, 1.0, 3.0)))  # depth 2 in model units
    faint = 1 - 0.125 * (1 - bump)  # depth 0.25 < MIN_DEPTH = 0.3, on a flat canvas
    assert modes(faint).n_none == 200
    # The depth is read after a 0.7 px blur, which keeps >= 57% of a sigma >= 1 bump's depth.
    assert modes(faint, min_depth=0.1, min_snr=MIN_SNR).n_one == 200


def test_two_well_separated_bumps_are_several():
    rng = np.random.default_rng(13)
    a, b = rng.uniform(4, 28, (2, 2000, 2))
    apart = np.linalg.norm(a - b, axis=1) >= 12
    a, b = a[apart][:200], b[apart][:200]
    sig = rng.uniform(1.0, 3.0, (2, 200))
    two = np.minimum(to_model_scale(render(a, sig[0])), to_model_scale(render(b, sig[1])))
    found = predict_centres(two)
    assert np.all(found.blobs == 2) and np.all(found.contours == 2)


def test_pixel_noise_no_longer_splits_a_single_bump():
    # Noise std 0.3 (model units): the paper's algorithm splits every one of these bumps into
    # several blobs; with the floor, the noise specks are below it and the bump stays one.
    rng = np.random.default_rng(14)
    centres, sigmas = anywhere(rng, 300, 1.0, 3.0)
    noisy = np.clip(to_model_scale(render(centres, sigmas)) + rng.normal(0, 0.3, (300, 32, 32)), -1, 1)
    assert modes(noisy, **NO_FLOOR).n_several == 300
    floored = predict_centres(noisy)
    assert np.all(floored.blobs == 1)
    assert np.all(floored.contours > 1)  # Otsu still keeps specks; they no longer count


def test_the_one_blob_left_gives_its_own_centroid_not_the_specks():
    rng = np.random.default_rng(15)
    centres, sigmas = random_bumps(rng, 300)  # away from the border: the centroid is unbiased
    noisy = to_model_scale(render(centres, sigmas)) + rng.normal(0, 0.2, (300, 32, 32))
    error = np.abs(predict_centres(noisy).centres - centres).max(axis=1)
    paper = np.abs(predict_centres(noisy, **NO_FLOOR).centres - centres).max(axis=1)
    # Noise pixels that touch a narrow bump join its contour and pull its centroid a little
    # (measured: 1 of 300 beyond 1 px, at sigma 0.86).
    assert np.median(error) < 0.2 and np.mean(error <= 1.0) >= 0.99
    assert np.median(paper) > 1.0  # several blobs: the whole image's centroid, pulled by the noise


def test_the_floor_leaves_clean_bumps_exactly_as_the_paper_reads_them():
    rng = np.random.default_rng(16)
    images = to_model_scale(render(*anywhere(rng, 300, 0.5, 3.0)))
    floored, paper = predict_centres(images), predict_centres(images, **NO_FLOOR)
    np.testing.assert_array_equal(floored.centres, paper.centres)
    np.testing.assert_array_equal(floored.blobs, paper.blobs)
    np.testing.assert_array_equal(paper.blobs, paper.contours)  # no floor: every contour is a blob


def test_depth_and_spread_are_in_model_units():
    flat, bump = np.ones((1, 32, 32)), to_model_scale(render([[16.5, 16.5]], 3.0))
    noise = np.clip(np.random.default_rng(17).normal(0, 0.2, (1, 32, 32)), -1, 1)
    pred = predict_centres(np.concatenate([flat, bump, noise]))
    np.testing.assert_allclose(pred.depth[:2], [0.0, 1.897], atol=0.005)  # sigma 3 blurred: 2 x 9 / 9.49
    assert pred.spread[0] == 0 and pred.spread[1] < 0.001  # the bump covers well under half the canvas
    assert 0.07 < pred.spread[2] < 0.095  # noise std 0.2 x 0.41 (the 0.7 px kernel's sqrt(sum w^2)) = 0.082
    assert MIN_DEPTH == 0.3 and MIN_SNR == 10.0  # the calibrated defaults docs/failure-modes.md records


@pytest.mark.parametrize("kwargs, name", [({"min_depth": -0.1}, "min_depth"), ({"min_snr": np.nan}, "min_snr"),
                                          ({"min_depth": "0.3"}, "min_depth"), ({"min_snr": np.inf}, "min_snr")])
def test_a_meaningless_floor_is_rejected(kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        predict_centres(np.ones((1, 32, 32)), **kwargs)


def test_the_paper_count_is_the_number_of_external_contours():
    import cv2

    rng = np.random.default_rng(18)
    images = np.clip(rng.uniform(-1, 1, (2000, 1, 1)) + rng.normal(0, 0.5, (2000, 32, 32)), -1, 1)
    levels = np.rint(np.clip((1 - images) / 2, 0, 1) * 255).astype(np.uint8)  # as predict_centres
    expected = []
    for level in levels:
        _, binary = cv2.threshold(level, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        expected.append(len(cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]))
    assert predict_centres(images).contours.tolist() == expected


def test_a_dot_inside_a_ring_belongs_to_the_ring():
    # RETR_EXTERNAL sees one contour: the ring's; the dot in its hole is part of that blob.
    ys, xs = np.mgrid[0:32, 0:32] + 0.5
    r = np.hypot(xs - 16, ys - 16)
    image = np.where((r > 6) & (r < 9), -1.0, 1.0)
    image[15:17, 15:17] = -1.0
    pred = predict_centres(image[None])
    assert pred.contours[0] == 1 and pred.blobs[0] == 1
    np.testing.assert_allclose(pred.centres[0], [16.0, 16.0], atol=1e-9)
