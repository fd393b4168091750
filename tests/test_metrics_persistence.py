"""metrics.persistence (H1 persistence diagrams, GUDHI) and metrics.spectrum.pc_scores, on point clouds
whose homology is known: the 4D Clifford torus (two loops), a circle (one), a square and a disc
(none). Random clouds, seeds fixed; the claims are counted over seeds against thresholds."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from labconsole.samples import Samples, read_samples, write_samples
from metrics import pc_scores
from metrics.persistence import FLOOR, h1_bars, long_bars

pytest.importorskip("gudhi")  # the topology extra (CI installs it with .[test])

SEEDS = range(10)


def angles(seed: int, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    return np.random.default_rng(seed).uniform(0, 2 * np.pi, (2, n))


def clifford(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.c_[np.cos(a), np.sin(a), np.cos(b), np.sin(b)]


def test_a_clifford_torus_of_100_points_shows_two_loops_for_every_seed():
    reads = [h1_bars(clifford(*angles(s))) for s in SEEDS]
    assert [h.n_long for h in reads] == [2] * len(SEEDS)
    for h in reads:  # two bars far above the third (measured 0.34-0.42 against 0.19-0.26)
        p = h.persistence
        assert p[1] >= 0.3 and p[2] <= 0.3 and p[1] - p[2] >= 0.08, p[:3]


def test_a_noisy_circle_shows_one_loop_and_a_square_or_a_disc_none():
    for s in SEEDS:
        a, b = angles(s)
        noise = np.random.default_rng(100 + s).normal(0, 0.05, (len(a), 2))
        circle = h1_bars(np.c_[np.cos(a), np.sin(a)] + noise)
        assert circle.n_long == 1 and circle.persistence[0] >= 0.5
        square = h1_bars(np.c_[a, b])
        disc = h1_bars(np.random.default_rng(s).normal(size=(100, 2)))
        assert square.n_long == 0 and disc.n_long == 0
        assert square.persistence[0] < FLOOR and disc.persistence[0] < FLOOR


def test_the_diagram_is_invariant_to_rotating_scaling_and_shifting_the_cloud():
    x = clifford(*angles(3))
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    moved = 7.5 * np.c_[x, np.zeros((len(x), 2))] @ q + 3.0  # embedded in 6D, rotated, scaled, shifted
    a, b = h1_bars(x), h1_bars(moved)
    assert np.allclose(a.persistence, b.persistence, atol=1e-6) and a.n_long == b.n_long == 2
    assert b.diameter == pytest.approx(7.5 * a.diameter)


def test_every_bar_dies_and_births_precede_deaths():
    h = h1_bars(clifford(*angles(1)))
    assert len(h.bars) and np.isfinite(h.bars).all() and (h.bars[:, 1] > h.bars[:, 0]).all()
    assert (h.bars[:, 1] <= h.diameter * (1 + 1e-6)).all()
    assert (np.diff(h.persistence) <= 1e-12).all()  # longest-lived first


def test_a_large_cloud_is_subsampled_with_its_seed_and_nan_rows_are_dropped():
    x = clifford(*angles(2, n=400))
    x[::7] = np.nan
    h = h1_bars(x, max_points=120, seed=5)
    assert h.n_points == 120 and h.n_long == 2
    assert np.array_equal(h1_bars(x, max_points=120, seed=5).bars, h.bars)


@pytest.mark.parametrize("points, message", [
    (np.zeros(5), "must be (N, D)"),
    (np.full((10, 3), np.nan), "at least 4 finite points"),
    (np.ones((10, 3)), "every point is the same"),
])
def test_bad_clouds_are_refused_with_one_clear_line(points, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        h1_bars(points)


def test_long_bars_cuts_at_the_widest_gap_above_the_floor():
    assert long_bars(np.array([0.41, 0.38, 0.26, 0.22, 0.05])) == 2
    assert long_bars(np.array([0.6, 0.02])) == 1
    assert long_bars(np.array([0.14, 0.1])) == 0  # nothing reaches the floor
    assert long_bars(np.array([])) == 0
    assert long_bars(np.array([0.3, 0.29, 0.28])) == 3  # evenly long: all of them


def test_without_gudhi_the_error_says_how_to_install_it():
    code = ("import sys; sys.modules['gudhi'] = None\n"
            "import numpy as np\nfrom metrics.persistence import h1_bars\n"
            "try:\n    h1_bars(np.random.default_rng(0).normal(size=(20, 3)))\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'labconsole[topology]'" in out.stdout, out.stderr


def test_the_worker_and_the_console_never_import_gudhi():
    code = ("import sys\nimport labconsole.worker, labconsole.evaluate, labconsole.app, labconsole.batch, metrics\n"
            "print('gudhi' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# --------------------------------------------------------------------------- pc_scores


def test_pc_scores_are_sklearns_pca_up_to_sign_and_keep_distances_within_the_rank():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    x = clifford(*angles(0)) @ rng.normal(size=(4, 300)) + 0.01 * rng.normal(size=(100, 300))
    scores = pc_scores(x, k=6)
    ref = PCA(6).fit_transform(x)
    assert scores.shape == (100, 6)
    assert np.allclose(np.abs(scores), np.abs(ref), atol=1e-6 * np.abs(ref).max())
    exact = clifford(*angles(0)) @ rng.normal(size=(4, 300))  # rank 4 <= k: distances kept
    s = pc_scores(exact, k=10)
    assert s.shape == (100, 4)
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    assert np.allclose(d(s), d(exact), atol=1e-8 * d(exact).max())


def test_the_samples_file_keeps_pcs_and_regions_and_reads_older_files_without_them(tmp_path):
    n = 6
    base = dict(images=np.zeros((n, 4, 4), np.float32), labels=np.zeros((n, 2), np.float32),
                pred=np.zeros((n, 2), np.float32), blobs=np.ones(n, int))
    pcs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    pcs[4:] = np.nan  # rows the PCA was not fit on
    region = np.array([-1, -1, 0, 0, 1, 1], dtype=np.int16)  # the held-out regions' index, -1 for none
    back = read_samples(write_samples(tmp_path / "a", 10, Samples(**base, pcs=pcs, region=region)), 10)
    assert np.array_equal(back.pcs, pcs, equal_nan=True) and np.array_equal(back.region, region)
    old = read_samples(write_samples(tmp_path / "b", 10, Samples(**base)), 10)
    assert old.pcs is None and old.region is None


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a zip at all"])
def test_an_unreadable_samples_file_is_one_value_error_naming_it(tmp_path, content):
    path = tmp_path / "step-0000600.npz"
    path.write_bytes(content)  # what a disk-full or a killed copy leaves: every reader catches ValueError
    with pytest.raises(ValueError, match="step-0000600.npz: not a readable samples file"):
        read_samples(path, 600)
