"""Bump images and grid datasets (DESIGN §5; paper §2, App. A.5, App. B.2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.data import DataConfig, bump_images, grid_centres, make_dataset, neighbour_overlap, to_model_scale

SIZE = 32
PIXEL_CENTRES = np.arange(SIZE) + 0.5  # pixel (i, j) has its centre at (j + .5, i + .5)


def centroid_of_inverted(images: np.ndarray) -> np.ndarray:
    """(N, H, W) dark bumps in [0, 1] -> (N, 2) intensity-weighted centroids (x, y) of 1 - image."""
    w = 1.0 - images
    total = w.sum(axis=(1, 2))
    cx = (w * PIXEL_CENTRES[None, None, :]).sum(axis=(1, 2)) / total
    cy = (w * PIXEL_CENTRES[None, :, None]).sum(axis=(1, 2)) / total
    return np.stack([cx, cy], axis=1)


# --------------------------------------------------------------------------- images


def test_bump_matches_the_formula_pixel_by_pixel():
    mu = torch.tensor([[3.2, 17.9], [16.0, 16.0], [30.7, 0.4]])
    sigma = 1.7
    got = bump_images(mu, sigma, SIZE).double().numpy()
    yy, xx = np.meshgrid(PIXEL_CENTRES, PIXEL_CENTRES, indexing="ij")  # (H, W): row -> y, column -> x
    for k, (mx, my) in enumerate(mu.double().numpy()):
        want = 1.0 - np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sigma**2))
        np.testing.assert_allclose(got[k], want, atol=1e-6)


def test_darkest_pixel_is_the_one_nearest_the_centre():
    rng = np.random.default_rng(0)
    # Fractional parts kept off .0 so the nearest pixel centre is unique.
    mu = rng.integers(0, SIZE, size=(200, 2)) + rng.uniform(0.1, 0.9, size=(200, 2))
    images = bump_images(torch.from_numpy(mu), sigma=1.5, size=SIZE).numpy()
    flat = images.reshape(len(mu), -1).argmin(axis=1)
    rows, cols = np.unravel_index(flat, (SIZE, SIZE))
    np.testing.assert_array_equal(cols, np.floor(mu[:, 0]).astype(int))  # x is the column axis
    np.testing.assert_array_equal(rows, np.floor(mu[:, 1]).astype(int))  # y is the row axis


def test_x_is_the_column_axis():
    img = bump_images(torch.tensor([[5.5, 20.5]]), sigma=1.0, size=SIZE)[0]
    assert img[20, 5] == pytest.approx(0.0, abs=1e-6)  # row 20 = y, column 5 = x
    assert img[5, 20] > 0.99


def test_centred_bump_is_mirror_symmetric():
    img = bump_images(torch.tensor([[16.0, 16.0]]), sigma=2.0, size=SIZE)[0]
    torch.testing.assert_close(img, img.flip(0), atol=1e-6, rtol=0)  # up-down
    torch.testing.assert_close(img, img.flip(1), atol=1e-6, rtol=0)  # left-right
    torch.testing.assert_close(img, img.T, atol=1e-6, rtol=0)  # the diagonal


def test_swapping_x_and_y_transposes_the_image():
    mu = torch.tensor([[7.3, 21.8], [12.1, 2.6]])
    a = bump_images(mu, sigma=1.3, size=SIZE)
    b = bump_images(mu.flip(1), sigma=1.3, size=SIZE)
    torch.testing.assert_close(a, b.transpose(1, 2), atol=1e-6, rtol=0)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_centroid_of_inverted_bump_is_its_sub_pixel_centre(sigma):
    rng = np.random.default_rng(1)
    # Away from the border (>= 4 sigma), so the canvas does not cut the bump.
    lo, hi = 4 * sigma, SIZE - 4 * sigma
    mu = rng.uniform(lo, hi, size=(300, 2))
    images = bump_images(torch.from_numpy(mu), sigma, SIZE).double().numpy()
    err = np.abs(centroid_of_inverted(images) - mu)
    assert err.max() < 0.05, f"worst centroid error {err.max():.4f} px"


def test_values_lie_in_unit_range_and_model_scale_in_minus_one_one():
    rng = np.random.default_rng(2)
    mu = torch.from_numpy(rng.uniform(-2, 34, size=(500, 2)))  # incl. centres off the canvas
    images = bump_images(mu, sigma=1.0, size=SIZE)
    assert images.shape == (500, SIZE, SIZE) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.min() < 0.05  # a bump is really there (dark)

    scaled = to_model_scale(images)
    assert scaled.shape == (500, 1, SIZE, SIZE)
    assert scaled.min() >= -1.0 and scaled.max() <= 1.0
    torch.testing.assert_close(scaled[:, 0], images * 2 - 1)
    edges = to_model_scale(torch.tensor([[[0.0, 1.0]]]))
    assert edges.flatten().tolist() == [-1.0, 1.0]


# --------------------------------------------------------------------------- grids


def test_dx_0_1_builds_102400_images_as_one_tensor():
    ds = make_dataset(DataConfig(dx=0.1, dy=0.1, sigma=1.0))
    assert len(ds) == 102_400
    assert ds.images.shape == (102_400, 1, SIZE, SIZE)
    assert ds.mu.shape == (102_400, 2)
    assert ds.hole_mu.shape == (0, 2)
    # Each image is the bump of its own label (spot-check across the chunks the builder uses).
    idx = torch.tensor([0, 1, 8191, 8192, 51_234, 102_399])
    want = to_model_scale(bump_images(ds.mu[idx], 1.0, SIZE))
    torch.testing.assert_close(ds.images[idx], want)
    del ds


@pytest.mark.parametrize(
    "dx, dy, n_x, n_y",
    [
        (0.5, 0.5, 64, 64),
        (1.0, 1.0, 32, 32),
        (0.1, 1.0, 320, 32),  # imbalanced (paper Fig. 5)
        (1.0, 0.1, 32, 320),
        (0.3, 0.3, 107, 107),  # not a divisor of 32: 0, 0.3, ..., 31.8
        (2.0, 0.5, 16, 64),
    ],
)
def test_grid_sizes(dx, dy, n_x, n_y):
    train, hole = grid_centres(DataConfig(dx=dx, dy=dy))
    assert train.shape == (n_x * n_y, 2) and hole.shape == (0, 2)
    xs, ys = np.unique(train[:, 0]), np.unique(train[:, 1])
    assert len(xs) == n_x and len(ys) == n_y
    np.testing.assert_allclose(xs, np.arange(n_x) * dx, atol=1e-5)  # {0, dx, 2dx, ...} < 32
    np.testing.assert_allclose(ys, np.arange(n_y) * dy, atol=1e-5)
    assert xs.max() < SIZE and ys.max() < SIZE


@pytest.mark.parametrize("dx, n", [(0.5, 4096), (1.0, 1024)])
def test_make_dataset_sizes(dx, n):
    ds = make_dataset(DataConfig(dx=dx, dy=dx, sigma=1.5))
    assert len(ds) == n and ds.images.shape == (n, 1, SIZE, SIZE)
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    # The dataset's labels are where its images' bumps are.
    rows = ds.images[:, 0].flatten(1).argmin(1)
    inner = ((ds.mu >= 1) & (ds.mu <= SIZE - 1)).all(1) & (ds.mu % 1 != 0).all(1)
    if inner.any():
        torch.testing.assert_close(rows[inner] // SIZE, ds.mu[inner, 1].floor().long())


def test_imbalanced_dataset_size():
    ds = make_dataset(DataConfig(dx=0.1, dy=1.0, sigma=1.0))
    assert len(ds) == 320 * 32


def test_margin_keeps_centres_away_from_the_border():
    train, _ = grid_centres(DataConfig(dx=1.0, dy=1.0, margin=2.0))
    assert len(train) == 29 * 29  # 2, 3, ..., 30
    assert train.min() >= 2.0 and train.max() <= SIZE - 2.0


def test_hole_is_left_out_of_training_and_kept_for_evaluation():
    hole = (10.0, 12.0, 15.0, 14.0)  # x0, y0, x1, y1: 6 x 3 centres, edges included
    cfg = DataConfig(dx=1.0, dy=1.0, sigma=1.0, holes=(hole,))
    ds = make_dataset(cfg)
    train, in_hole = ds.mu.numpy(), ds.hole_mu.numpy()
    assert len(in_hole) == 6 * 3 and len(train) == 1024 - 18

    def inside(mu):
        return (mu[:, 0] >= hole[0]) & (mu[:, 0] <= hole[2]) & (mu[:, 1] >= hole[1]) & (mu[:, 1] <= hole[3])

    assert not inside(train).any(), "a hole centre leaked into training"
    assert inside(in_hole).all()
    full, _ = grid_centres(DataConfig(dx=1.0, dy=1.0))
    union = {tuple(p) for p in np.concatenate([train, in_hole]).tolist()}
    assert union == {tuple(p) for p in full.tolist()} and len(union) == len(train) + len(in_hole)
    assert ds.images.shape[0] == len(train)  # images only for training centres


def test_several_holes_at_a_fine_increment():
    holes = ((4.0, 4.0, 6.0, 6.0), (20.0, 20.0, 24.0, 22.0))
    train, in_hole = grid_centres(DataConfig(dx=0.5, dy=0.5, holes=holes))
    assert len(in_hole) == 5 * 5 + 9 * 5
    assert len(train) + len(in_hole) == 64 * 64
    for x0, y0, x1, y1 in holes:
        leaked = (train[:, 0] >= x0) & (train[:, 0] <= x1) & (train[:, 1] >= y0) & (train[:, 1] <= y1)
        assert not leaked.any()


def test_bad_grids_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        grid_centres(DataConfig(dx=0.0))
    with pytest.raises(ValueError, match="empty"):
        make_dataset(DataConfig(dx=1.0, dy=1.0, holes=((0.0, 0.0, 32.0, 32.0),)))


# --------------------------------------------------------------------------- overlap


def test_neighbour_overlap_is_one_at_zero_and_falls_with_increment():
    assert neighbour_overlap(1.0, 0.0) == pytest.approx(1.0, abs=1e-9)
    increments = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
    values = [neighbour_overlap(1.0, d) for d in increments]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert 0.0 <= values[-1] < 0.05  # bumps 4 sigma apart barely overlap


def test_neighbour_overlap_grows_with_sigma():
    values = [neighbour_overlap(s, 1.0) for s in (0.5, 1.0, 2.0, 3.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert all(0.0 < v < 1.0 for v in values)
