"""pca_spectrum: PCA spectrum, participation ratio and ring overlaps (follow-up Figs. 2-3, issue 16).

Known answers on synthetic tori (angles on a 32 x 32 grid, as positions on a periodic canvas),
embedded by a random orthogonal map into D = 512 with noise of std 0.005 a dimension.
"""

import json
import math

import numpy as np
import pytest
from sklearn.decomposition import PCA

from metrics import MIN_RING_SAMPLES, RingOverlaps, Spectrum, isotropic_pr, pca_spectrum

GRID = 32


def grid_angles(n=GRID):
    """(n*n,) angles a (the x of a periodic canvas) and b (the y), every pair once."""
    a, b = np.meshgrid(np.arange(n) * 2 * np.pi / n, np.arange(n) * 2 * np.pi / n)
    return a.ravel(), b.ravel()


def clifford(a, b):
    """The 4D Clifford torus (cos a, sin a, cos b, sin b): x and y in orthogonal planes."""
    return np.column_stack([np.cos(a), np.sin(a), np.cos(b), np.sin(b)])


def ring_torus(a, b, big=3.0, small=1.0):
    """The 3D ring torus of radii 3 and 1: x and y coupled."""
    return np.column_stack([(big + small * np.cos(b)) * np.cos(a), (big + small * np.cos(b)) * np.sin(a),
                            small * np.sin(b)])


def embed(z, dim=512, noise=0.005, seed=0):
    """(N, d) -> (N, dim): a random orthogonal map (isometric) plus isotropic noise."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, z.shape[1])))  # (dim, d) orthonormal columns
    return z @ q.T + noise * rng.normal(size=(len(z), dim))


def random_rotation(dim, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q


A, B = grid_angles()
LABELS = np.column_stack([A, B])  # (1024, 2) (x, y) as angles; only equality matters


@pytest.fixture(scope="module")
def clifford_result():
    return pca_spectrum(embed(clifford(A, B)), LABELS)


@pytest.fixture(scope="module")
def ring_result():
    return pca_spectrum(embed(ring_torus(A, B)), LABELS)


# --------------------------------------------------------------------------- known spectra


def test_the_clifford_torus_has_four_equal_pcs_and_participation_ratio_four(clifford_result):
    # Each of cos a, sin a, cos b, sin b has variance 1/2 and they are uncorrelated: l = 1/2 x 4.
    s = clifford_result
    assert s.top4_share > 0.99  # noise: 512 x 0.005² = 0.0128 of a total 2.0128 (measured 0.994)
    np.testing.assert_allclose(s.explained_variance_ratio[:4], 0.25, atol=0.005)
    assert max(s.explained_variance_ratio[4:]) < 1e-3
    assert s.participation_ratio == pytest.approx(4.0, abs=0.1)  # measured 4.05
    assert s.n_components == 4 and s.threshold == 0.9
    assert (s.n_samples, s.n_features) == (GRID * GRID, 512)
    assert len(s.explained_variance_ratio) == 15


def test_the_ring_torus_has_two_big_pcs_and_a_small_one(ring_result):
    # Variances (R² + r²/2)/2 = 4.75 twice (x, y) and r²/2 = 0.5 (z): ratios 0.475, 0.475, 0.05,
    # PR = 10² / (2 x 4.75² + 0.5²) = 2.204; 90 % is reached with 2 PCs.
    s = ring_result
    np.testing.assert_allclose(s.explained_variance_ratio[:3], [0.475, 0.475, 0.05], atol=0.005)
    assert s.participation_ratio == pytest.approx(2.204, abs=0.05)  # measured 2.209
    assert s.top4_share > 0.99 and s.n_components == 2


def test_a_line_has_participation_ratio_one():
    t = np.random.default_rng(1).uniform(-2, 2, (500, 1))  # variance 4/3
    s = pca_spectrum(embed(t))
    assert s.explained_variance_ratio[0] > 0.98
    assert s.participation_ratio == pytest.approx(1.0, abs=0.05)
    assert s.n_components == 1


def test_a_noiseless_line_has_exactly_one_component():
    s = pca_spectrum(embed(np.linspace(-1, 1, 50)[:, None], noise=0.0), k=5)
    assert s.explained_variance_ratio == (pytest.approx(1.0),)  # round-off below rank is dropped
    assert s.participation_ratio == pytest.approx(1.0) and s.top4_share == pytest.approx(1.0)


@pytest.mark.parametrize("d, n, dim, tol", [(10, 500, 64, 0.15), (50, 300, 64, 1.0), (2048, 200, 2048, 0.6)])
def test_isotropic_noise_has_the_bias_aware_participation_ratio(d, n, dim, tol):
    # PR of N samples of isotropic noise in d dims is not d: (n d + 2) / (n + d + 1), n = N - 1
    # (9.79 for d = 10, N = 500; 181 for d = 2048, N = 200). Spread over seeds: std 0.03, 0.25,
    # 0.11 (20 seeds): tol is > 4 std for one seed, and the mean of 8 seeds is held tighter.
    expected = isotropic_pr(d, n)
    prs = []
    for seed in range(8):
        z = np.random.default_rng(seed).normal(size=(n, d))
        prs.append(pca_spectrum(z if d == dim else embed(z, dim, noise=0.0, seed=seed)).participation_ratio)
    assert all(abs(pr - expected) < tol for pr in prs), (expected, prs)
    assert np.mean(prs) == pytest.approx(expected, abs=tol / 2)
    assert expected < d - 0.2  # the naive "PR = d" would be the wrong threshold


def test_isotropic_pr_tends_to_the_dimension_with_many_samples():
    assert isotropic_pr(10, 10**7) == pytest.approx(10, rel=1e-5)
    assert isotropic_pr(1, 2) == pytest.approx(1.0)
    assert isotropic_pr(10**6, 101) == pytest.approx(100, rel=1e-3)  # ~N - 1 for d >> N
    with pytest.raises(ValueError, match="isotropic_pr"):
        isotropic_pr(0, 10)


# --------------------------------------------------------------------------- rings: orthogonality / parallelism


def test_clifford_rings_are_orthogonal_across_axes_and_parallel_within(clifford_result):
    rings = clifford_result.rings
    assert (rings.n_rings_x, rings.n_rings_y) == (GRID, GRID)
    assert rings.overlap_xy < 0.01  # measured 6e-6
    assert rings.overlap_xx > 0.99 and rings.overlap_yy > 0.99  # measured 0.998


def test_ring_torus_rings_are_coupled(ring_result):
    # x-rings: horizontal circles, all parallel. y-rings: meridians, each in the vertical plane of
    # its angle a; two share the z axis: overlap (1 + cos²(a1 - a2)) / 2, over distinct grid
    # angles (1 + 15/31) / 2 = 0.742. An x-ring and a y-ring share one axis: overlap 1/2.
    rings = ring_result.rings
    assert rings.overlap_xx > 0.99
    assert rings.overlap_yy == pytest.approx((1 + 15 / 31) / 2, abs=0.01)  # measured 0.741
    assert rings.overlap_xy == pytest.approx(0.5, abs=0.01)  # measured 0.4996


def test_rings_from_a_random_subset_of_distinct_labels_still_separate_the_tori():
    keep = np.random.default_rng(2).choice(len(A), 400, replace=False)  # ~12 samples a ring
    factorized = pca_spectrum(embed(clifford(A, B))[keep], LABELS[keep]).rings
    coupled = pca_spectrum(embed(ring_torus(A, B))[keep], LABELS[keep]).rings
    assert factorized.n_rings_x == GRID and factorized.n_rings_y == GRID
    assert factorized.overlap_xy < 0.05 and coupled.overlap_xy > 0.4
    assert factorized.overlap_yy > 0.95 and coupled.overlap_yy < 0.8


def test_rings_with_too_few_samples_are_skipped_and_undefined_overlaps_are_nan():
    # Every y value has 3 samples (< MIN_RING_SAMPLES): no x-ring; every x value has 24: y-rings.
    keep = np.flatnonzero(np.isin(np.round(A / (2 * np.pi / GRID)), [0, 1, 2]))
    assert MIN_RING_SAMPLES > 3
    rings = pca_spectrum(embed(clifford(A, B))[keep], LABELS[keep]).rings
    assert rings.n_rings_x == 0 and rings.n_rings_y == 3
    assert math.isnan(rings.overlap_xx) and math.isnan(rings.overlap_xy)
    assert rings.overlap_yy > 0.99


def test_without_labels_there_are_no_rings():
    assert pca_spectrum(embed(clifford(A[:100], B[:100]))).rings is None


# --------------------------------------------------------------------------- invariances and paths


@pytest.mark.parametrize("n, dim", [(60, 40), (30, 100)])  # D <= N (scatter) and D > N (Gram)
def test_rotation_scaling_and_translation_change_nothing(n, dim):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, dim)) * np.geomspace(5, 0.1, dim)  # an uneven spectrum
    labels = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 3, n)])  # rings of ~n/3
    moved = 7.3 * x @ random_rotation(dim, 4) + rng.normal(size=dim) * 100
    before, after = pca_spectrum(x, labels).to_dict(), pca_spectrum(moved, labels).to_dict()
    np.testing.assert_allclose(after.pop("explained_variance_ratio"), before.pop("explained_variance_ratio"),
                               rtol=1e-8, atol=1e-12)
    after_rings, before_rings = after.pop("rings"), before.pop("rings")
    for key in before_rings:
        assert after_rings[key] == pytest.approx(before_rings[key], rel=1e-8, abs=1e-10), key
    for key in before:
        assert after[key] == pytest.approx(before[key], rel=1e-8), key


def test_the_scatter_and_gram_paths_agree():
    # The same points in 40 dims (D <= N: D x D scatter) and isometrically in 400 (D > N: Gram).
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 40)) * np.geomspace(3, 0.2, 40)
    wide = x @ np.linalg.qr(rng.normal(size=(400, 40)))[0].T  # (80, 400)
    labels = np.column_stack([rng.integers(0, 4, 80), rng.integers(0, 4, 80)])
    small, big = pca_spectrum(x, labels), pca_spectrum(wide, labels)
    np.testing.assert_allclose(big.explained_variance_ratio, small.explained_variance_ratio, rtol=1e-8)
    assert big.participation_ratio == pytest.approx(small.participation_ratio, rel=1e-9)
    assert big.rings.overlap_xy == pytest.approx(small.rings.overlap_xy, rel=1e-7)


def test_feature_maps_are_flattened_and_float32_agrees_with_float64():
    x = embed(clifford(A[:200], B[:200]), dim=64)
    flat = pca_spectrum(x)
    maps = pca_spectrum(x.reshape(200, 4, 4, 4).astype(np.float32))
    np.testing.assert_allclose(maps.explained_variance_ratio, flat.explained_variance_ratio, rtol=1e-4, atol=1e-7)
    assert maps.n_features == 64


# --------------------------------------------------------------------------- against independent computations


def test_explained_variance_ratios_match_sklearn_pca():
    x = np.random.default_rng(6).normal(size=(80, 30)) * np.linspace(4, 0.5, 30) + 3.0
    ours = pca_spectrum(x, k=15).explained_variance_ratio
    np.testing.assert_allclose(ours, PCA(n_components=15).fit(x).explained_variance_ratio_, rtol=1e-9)


def test_wide_features_match_a_numpy_svd():
    x = np.random.default_rng(7).normal(size=(40, 3000)) * np.linspace(3, 0.1, 3000)
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    ours = pca_spectrum(x, k=39)
    np.testing.assert_allclose(ours.explained_variance_ratio, (s / s.sum())[:39], rtol=1e-8)
    assert ours.participation_ratio == pytest.approx(s.sum() ** 2 / np.sum(s**2), rel=1e-9)


# --------------------------------------------------------------------------- small N, threshold


def test_fewer_samples_than_k_give_fewer_components():
    s = pca_spectrum(np.random.default_rng(8).normal(size=(5, 100)))
    assert len(s.explained_variance_ratio) == 4  # centring leaves N - 1
    assert s.top4_share == pytest.approx(1.0) and 1.0 <= s.participation_ratio <= 4.0
    two = pca_spectrum(np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]]))
    assert two.explained_variance_ratio == (pytest.approx(1.0),) and two.participation_ratio == pytest.approx(1.0)
    narrow = pca_spectrum(np.random.default_rng(9).normal(size=(100, 3)))
    assert len(narrow.explained_variance_ratio) == 3 and narrow.top4_share == pytest.approx(1.0)


def test_the_threshold_sets_n_components(clifford_result):
    x = embed(clifford(A, B))
    assert pca_spectrum(x, threshold=0.45).n_components == 2  # 2 PCs hold 0.497 (noise: not 0.5)
    assert pca_spectrum(x, threshold=0.7).n_components == 3
    assert pca_spectrum(x, threshold=1.0).n_components == min(GRID * GRID - 1, 512)
    assert pca_spectrum(x, k=3).explained_variance_ratio == clifford_result.explained_variance_ratio[:3]


# --------------------------------------------------------------------------- serialisation


def test_to_dict_is_small_strict_json_and_round_trips(ring_result):
    text = json.dumps(ring_result.to_dict(), allow_nan=False)
    assert len(text) < 1000  # ~k + 12 numbers
    back = Spectrum.from_dict(json.loads(text))
    assert back == ring_result and isinstance(back.rings, RingOverlaps)


def test_nan_overlaps_travel_as_null():
    s = pca_spectrum(embed(clifford(A[:32], B[:32]), dim=32), LABELS[:32])  # one y: one x-ring
    assert (s.rings.n_rings_x, s.rings.n_rings_y) == (1, 0)
    assert math.isnan(s.rings.overlap_xx) and math.isnan(s.rings.overlap_xy)
    data = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert data["rings"]["overlap_xx"] is None
    assert math.isnan(Spectrum.from_dict(data).rings.overlap_xx)
    assert Spectrum.from_dict(data).to_dict() == data


def test_from_dict_names_missing_and_unknown_keys(ring_result):
    data = ring_result.to_dict()
    data["extra"] = 1
    del data["top4_share"]
    with pytest.raises(ValueError, match=r"missing keys \['top4_share'\], unknown keys \['extra'\]"):
        Spectrum.from_dict(data)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "features, labels, kwargs, match",
    [
        (np.zeros(20), None, {}, "features must be"),
        (np.zeros((1, 8)), None, {}, "N >= 2"),
        (np.zeros((0, 8)), None, {}, "N >= 2"),
        (np.full((20, 8), np.nan), None, {}, "finite"),
        (np.where(np.eye(20, 8) > 0, np.inf, 0.0), None, {}, "finite"),
        (np.ones((20, 8)), None, {}, "no variance"),
        (np.eye(20, 8), None, {"k": 0}, "k must be"),
        (np.eye(20, 8), None, {"k": 1.5}, "k must be"),
        (np.eye(20, 8), None, {"threshold": 0.0}, "threshold"),
        (np.eye(20, 8), None, {"threshold": 1.5}, "threshold"),
        (np.eye(20, 8), np.zeros((19, 2)), {}, "labels must be"),
        (np.eye(20, 8), np.zeros((20, 3)), {}, "labels must be"),
        (np.eye(20, 8), np.full((20, 2), np.nan), {}, "labels must be"),
    ],
)
def test_bad_inputs_are_rejected(features, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pca_spectrum(features, labels, **kwargs)
