"""The percolation table (issue 16; the follow-up's Figs. 6c, 14b): overlaps, clusters, the preset,
the batch, the report's figure and the console.

The overlaps are checked against the renderer the data uses (``model.data``) and against their
closed form; the clusters against what a lattice must give (one cluster, no joins, the 4- and
8-neighbour lattices by hand) and against a second, direct way of finding them.
"""
from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from labconsole.percolation import (axis_overlap, cluster_share, csv_rows, joined_pairs, kept_count,
                                    largest_clusters, lattice_axis, pair_count, percolation_table, rich_table)
from labconsole.presets import PercolationConfig, PresetError, load_preset
from runs_helpers import PRESETS, ROOT, labconsole

PRESET = PRESETS / "percolation.toml"
SMALL = PercolationConfig(sigmas=(0.5, 1.0), thresholds=(0.005, 0.05), lambdas=(0.05, 0.2, 0.5, 1.0), draws=4)


def site_overlap(factor: np.ndarray, s: int, t: int) -> float:
    """The overlap of sites s and t (s = k n + i is at x index i, y index k): the x and y factors."""
    n = len(factor)
    return factor[s % n, t % n] * factor[s // n, t // n]


def rendered_overlap(a_xy, b_xy, sigma: float, size: int = 32) -> float:
    """The overlap of two bumps from their rendered images (the data's renderer), as neighbour_overlap."""
    import torch

    from model.data import bump_images

    a, b = 1.0 - bump_images(torch.tensor([a_xy, b_xy], dtype=torch.float32), sigma, size).double()
    return float(torch.linalg.norm(a * b) / torch.sqrt(torch.linalg.norm(a * a) * torch.linalg.norm(b * b)))


# -- overlaps --------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [0.1, 0.3, 0.5, 1.0, 2.0, 2.5])
def test_the_lattice_is_the_data_grid_without_margin(d):
    from model.data import axis_centres

    assert np.array_equal(lattice_axis(d, 32), axis_centres(d, 32, 0.0))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("increment", [0.5, 1.0, 2.0, 3.0])
def test_the_rendered_factor_is_neighbour_overlap(sigma, increment):
    from model.data import neighbour_overlap

    factor = axis_overlap(sigma, np.array([16.0, 16.0 + increment]), 32, "images")
    assert factor[0, 1] == pytest.approx(neighbour_overlap(sigma, increment, 32, (16.0, 16.0)), abs=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.5, 3.0])
def test_the_overlap_of_any_two_sites_is_that_of_their_rendered_images(sigma):
    xs = lattice_axis(1.0, 32)
    factor = axis_overlap(sigma, xs, 32, "images")
    rng = np.random.default_rng(0)
    sites = [(0, 1), (0, 32), (0, 33), (31, 63), (1023, 990)] + [tuple(rng.integers(0, 1024, 2)) for _ in range(6)]
    for s, t in sites:  # border sites included: the exact table knows the canvas ends
        xy = lambda q: (xs[q % 32], xs[q // 32])  # noqa: E731
        assert site_overlap(factor, s, t) == pytest.approx(rendered_overlap(xy(s), xy(t), sigma), abs=2e-5), (s, t)


@pytest.mark.parametrize("sigma, tolerance", [(1.0, 0.03), (2.0, 1e-6), (3.0, 1e-6)])
def test_the_closed_form_is_the_rendered_overlap_far_from_the_border(sigma, tolerance):
    xs = lattice_axis(1.0, 32)
    images, gaussian = axis_overlap(sigma, xs, 32, "images"), axis_overlap(sigma, xs, 32, "gaussian")
    middle = slice(12, 21)  # bumps whole on the canvas (at sigma 3, 4 sigma from every edge)
    for dx, dy in [(1, 0), (1, 1), (2, 1), (3, 0), (4, 3)]:
        r2 = dx * dx + dy * dy
        assert gaussian[16, 16 + dx] * gaussian[16, 16 + dy] == pytest.approx(np.exp(-r2 / (4 * sigma**2)))
    ratio = images[middle, middle] / gaussian[middle, middle]
    assert np.abs(ratio - 1).max() <= tolerance


def test_the_pixels_matter_at_sigma_one_half():
    # The docstring's claim: a neighbour 1 px away overlaps 0.71 rendered, exp(-1) = 0.37 in the closed form.
    xs = np.array([16.0, 17.0])
    assert axis_overlap(0.5, xs, 32, "images")[0, 1] == pytest.approx(0.7073, abs=1e-4)
    assert axis_overlap(0.5, xs, 32, "gaussian")[0, 1] == pytest.approx(np.exp(-1.0))


# -- clusters --------------------------------------------------------------------------------------


def test_a_4x4_lattice_by_hand():
    # Gaussian overlaps at sigma 1: 0.78 at r = 1, 0.61 at r = sqrt 2, 0.37 at r = 2.
    factor = axis_overlap(1.0, lattice_axis(1.0, 4), 4, "gaussian")
    u, v = joined_pairs(factor, 0.7)  # only the 4 nearest neighbours: 2 x 4 x 3 edges
    assert sorted(zip(u.tolist(), v.tolist())) == sorted(
        [(s, s + 1) for s in range(16) if s % 4 != 3] + [(s, s + 4) for s in range(12)])
    assert len(joined_pairs(factor, 0.5)[0]) == 24 + 2 * 3 * 3 == pair_count(factor, 0.5)  # and the diagonals
    # Sites 0, 2, 8, 10 (corners of a 3x3 block) apart, then 1 joins 0 and 2, 5 joins them to 9 and 9 to 8, 10.
    order = np.array([0, 2, 8, 10, 1, 5, 9, 15, 3, 4, 6, 7, 11, 12, 13, 14])
    assert largest_clusters(u, v, order, np.array([1, 4, 5, 6, 7, 8, 16])).tolist() == [1, 1, 3, 4, 7, 7, 16]


@pytest.mark.parametrize("overlap", ["images", "gaussian"])
@pytest.mark.parametrize("sigma, d", [(0.5, 1.0), (1.0, 2.0), (2.0, 1.0)])
def test_every_site_kept_below_the_neighbour_overlap_is_one_cluster(overlap, sigma, d):
    xs = lattice_axis(d, 32)
    neighbour = np.diag(axis_overlap(sigma, xs, 32, overlap), 1).min()  # the weakest join of the lattice
    assert cluster_share(sigma, d, 1.0, 0.99 * neighbour, overlap=overlap) == 1.0
    cfg = dataclasses.replace(SMALL, sigmas=(sigma,), thresholds=(0.99 * neighbour,), d=d, overlap=overlap, draws=2)
    assert percolation_table(cfg).shares[0, 0, -1].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("denominator", ["kept", "all"])
def test_a_threshold_above_every_overlap_leaves_every_site_alone(denominator):
    factor = axis_overlap(0.5, lattice_axis(1.0, 32), 32, "images")
    assert factor[~np.eye(32, dtype=bool)].max() < 0.9
    assert pair_count(factor, 0.9) == 0 and len(joined_pairs(factor, 0.9)[0]) == 0
    cfg = dataclasses.replace(SMALL, sigmas=(0.5,), thresholds=(0.9,), denominator=denominator)
    table = percolation_table(cfg)
    kept = np.array([kept_count(lam, 1024) for lam in cfg.lambdas])
    expected = 1 / kept if denominator == "kept" else np.full(len(kept), 1 / 1024)
    assert np.allclose(table.shares[0, 0], expected[:, None])
    assert cluster_share(0.5, 1.0, 0.2, 0.9, denominator=denominator) == pytest.approx(expected[1])


def test_the_table_is_what_a_direct_search_finds():
    """The spanning-forest shortcut (one forest per draw) against scipy's components of each subset."""
    table = percolation_table(SMALL)
    for si, sigma in enumerate(SMALL.sigmas):
        for ti, t in enumerate(SMALL.thresholds):
            for li, lam in enumerate(SMALL.lambdas):
                for draw in (0, 3):
                    direct = cluster_share(sigma, SMALL.d, lam, t, SMALL.seed, draw)
                    assert table.shares[si, ti, li, draw] == direct, (sigma, t, lam, draw)


def test_the_cluster_grows_with_lambda_and_percolates_near_the_square_lattice_threshold():
    # sigma 1, Gaussian overlaps, threshold 0.7: the 4-neighbour square lattice, whose site
    # percolation threshold is 0.593 (infinite lattice); a 32 x 32 one is near it.
    cfg = PercolationConfig(sigmas=(1.0,), thresholds=(0.7,), lambdas=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                            draws=20, overlap="gaussian")
    table = percolation_table(cfg)
    largest = table.largest[0, 0]  # (L, D): nested subsets, so it never shrinks as lambda grows
    assert (np.diff(largest, axis=0) >= 0).all()
    mean = table.shares[0, 0].mean(axis=1)
    assert mean[:3].max() < 0.25 and mean[-3:].min() > 0.85  # well below / above the threshold
    assert mean[2] < mean[4] < mean[6]  # rising through it
    wider = dataclasses.replace(cfg, sigmas=(1.0, 3.0), thresholds=(0.05,), overlap="images", draws=8)
    shares = percolation_table(wider).shares.mean(axis=-1)[:, 0]  # (S, L)
    assert (shares[1] >= shares[0] - 0.02).all()  # wider bumps join farther: they percolate first


def test_draws_are_seeded():
    a, b = percolation_table(SMALL), percolation_table(SMALL)
    assert np.array_equal(a.largest, b.largest)
    c = percolation_table(dataclasses.replace(SMALL, seed=1))
    assert not np.array_equal(a.largest, c.largest)


def test_too_dense_a_lattice_is_refused_before_the_work():
    cfg = dataclasses.replace(SMALL, sigmas=(3.0,), d=0.25)
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"^percolation\.d: 0\.25 joins [\d,]+ pairs of sites at sigma 3"):
        percolation_table(cfg)
    assert time.monotonic() - start < 10


def test_rich_table_and_csv():
    table = percolation_table(SMALL)
    text = _render(rich_table(table))
    assert "largest-cluster share of the kept sites" in text and "1,024 sites" in text
    assert "thr 0.005" in text and "sigma 0.5" in text and "1.000 ± 0.000" in text
    header, rows = csv_rows(table)
    assert len(rows) == 2 * 2 * 4 and header[:4] == ["threshold", "sigma", "lambda", "kept"]
    assert rows[-1][:4] == [0.05, 1.0, 1.0, 1024] and rows[-1][header.index("share_mean")] == 1.0


def _render(table) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    return console.file.getvalue()


# -- the preset ------------------------------------------------------------------------------------


def test_the_preset_loads_and_writes_every_key_out_with_its_tag():
    preset = load_preset(PRESET)
    assert preset.kind == "percolation" and preset.runs == [] and preset.title.startswith("Follow-up Figs. 6c")
    cfg = preset.percolation
    assert cfg.thresholds == (0.005, 0.05) and cfg.d == 1.0 and cfg.size == 32 and cfg.denominator == "kept"
    text = PRESET.read_text()
    for field in dataclasses.fields(PercolationConfig):
        line = re.search(rf"^{field.name} = .*$", text, flags=re.M)
        assert line and re.search(r"# \((paper|ours)\)", line.group(0)), field.name


def test_overrides_and_unknown_keys(tmp_path):
    assert load_preset(PRESET, ["percolation.d=2", "percolation.overlap=gaussian"]).percolation.d == 2.0
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "percolation"\n[percolation]\nsigmaz = [1]\n')
    with pytest.raises(PresetError, match=r"unknown key 'percolation.sigmaz'; expected one of: sigmas, thresholds"):
        load_preset(bad)
    bad.write_text('kind = "percolation"\n[train]\nsteps = 1\n')
    with pytest.raises(PresetError, match=r"unknown key 'train'; expected one of: .*mini, percolation$"):
        load_preset(bad)
    bad.write_text("[percolation]\nd = 1\n")  # a training preset
    with pytest.raises(PresetError, match=r"unknown key 'percolation'; .* \(or set kind = \"percolation\"\)"):
        load_preset(bad)
    with pytest.raises(PresetError, match=r"unknown key 'train.steps' \(--set\); expected percolation.<key>"):
        load_preset(PRESET, ["train.steps=1"])


BAD_VALUES = [
    ("percolation.d=0", "percolation.d (--set): expected a number in (0, percolation.size = 32), got 0.0"),
    ("percolation.sigmas=[]", "percolation.sigmas (--set): expected a non-empty list of positive numbers, got []"),
    ("percolation.thresholds=[0.005,1.5]", "percolation.thresholds (--set): expected a non-empty list of numbers in (0, 1)"),
    ("percolation.lambdas=[0.5,0.2]", "percolation.lambdas (--set): expected a non-empty increasing list of numbers in (0, 1]"),
    ("percolation.draws=0", "percolation.draws (--set): expected a positive integer, got 0"),
    ("percolation.overlap=pixels", "percolation.overlap (--set): expected one of: images, gaussian, got 'pixels'"),
    ("percolation.denominator=sites", "percolation.denominator (--set): expected one of: kept, all, got 'sites'"),
    ("percolation.draws=2.5", "percolation.draws (--set): expected an integer, got 2.5"),
    ("percolation.d=0.1", "percolation.d: 0.1 joins"),  # valid alone, too many pairs at sigma 3
]


@pytest.mark.parametrize("override, expected", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_are_one_line_and_exit_2(override, expected, tmp_path):
    result = labconsole("--batch", str(PRESET), "--set", override, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert result.stderr.startswith(f"labconsole: error: {PRESET}: ") and result.stdout == ""


# -- the batch, the report, the console --------------------------------------------------------------


def test_the_batch_prints_the_table_in_seconds(tmp_path):
    start = time.monotonic()
    result = labconsole("--batch", str(PRESET), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path, timeout=120)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "largest-cluster share of the kept sites" in out and "mean ± std over 20 draws" in out
    assert re.search(r"│\s+0\.01 │\s+10 │", out) and re.search(r"│\s+1 │ 1,024 │( 1\.000 ± 0\.000 │){8}", out)
    assert f"labconsole report {PRESET} --out DIR" in out
    assert not (tmp_path / "runs").exists()  # nothing trains, nothing is written
    assert seconds < 60, f"{seconds:.1f} s"  # ~2 s of CPU (d = 1, 20 draws); the bound leaves room for a busy box


def test_the_report_writes_the_csv_and_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig"
    result = labconsole("report", str(PRESET), "--set", "percolation.draws=3", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "largest-cluster share" in result.stdout and f"written to {out}/" in result.stdout
    names = {"percolation.csv", "percolation.png", "percolation.pdf", "README.txt"}
    assert {p.name for p in out.iterdir()} == names
    assert (out / "percolation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "percolation.pdf").read_bytes()[:5] == b"%PDF-"
    assert len((out / "percolation.csv").read_text().splitlines()) == 1 + 2 * 4 * 17
    assert "mean ± std over 3 draws" in (out / "README.txt").read_text()


def test_the_report_without_matplotlib_writes_the_csv_and_says_why_no_figure(tmp_path):
    code = ("import sys\nsys.modules['matplotlib'] = None\nfrom labconsole.cli import main\n"
            f"sys.exit(main(['report', r'{PRESET}', '--set', 'percolation.draws=2', '--out', 'x']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "x").iterdir()} == {"percolation.csv", "README.txt"}
    assert "note: figures: none" in result.stdout and "labconsole[report]" in result.stdout


def test_the_report_refuses_other_kinds_and_stray_overrides(tmp_path):
    from labconsole.report import ReportError, main

    with pytest.raises(ReportError, match=r'kind "overlap"; report takes a percolation preset'):
        main([str(PRESETS / "overlap.toml")], str(tmp_path / "o"), io.StringIO())
    with pytest.raises(ReportError, match=r"--set applies to a preset file"):
        main([str(tmp_path)], None, io.StringIO(), overrides=["percolation.d=2"])


async def test_the_console_says_how_to_get_the_table(tmp_path):
    from labconsole.app import make_app
    from labconsole.app.screens.run_form import RunForm
    from labconsole.app.widgets.runs import PresetList
    from test_app_helpers import wait_for

    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / PRESET.name).write_text(PRESET.read_text())
    app = make_app(runs_dir=tmp_path / "runs", presets_dir=presets)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 1, what="the preset listed")
        preset_list = app.query_one(PresetList)
        preset_list.focus()
        preset_list.highlighted = 0
        await pilot.press("r")
        problem = app.query_one("#problem")
        await wait_for(pilot, lambda: "trains nothing" in str(problem.render()), what="the message")
        assert not isinstance(app.screen, RunForm)
        assert f"labconsole --batch {presets / PRESET.name} prints its table" in str(problem.render())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_readme_lists_the_preset():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^\| `presets/percolation\.toml` \| Follow-up Figs\. 6c, 14b \|.*\| 0 \|$", readme, flags=re.M)
