"""The report's figures (labconsole.figures) on a real tiny sweep, and on synthetic ones.

The real sweep: the hole preset, shrunk (tests/runs_helpers.py), with dx = dy swept over 2
settings x 2 seeds — increments-like and hole-like at once. Its second setting sets
eval.phase_r2_min = 1.0, which no UMAP R² reaches: phase C is censored there by construction
(as in tests/test_report.py). ``--batch`` writes its report, figures included, when it ends.
The synthetic sweeps (bench/report_cost.py's builder, no training) give the other presets'
shapes in a second: an increments sweep without a hole, and an imbalance one (dx != dy).
"""
from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")  # the report extra: `pip install -e '.[report]'` (CI installs .[test])

from bench.report_cost import build  # noqa: E402
from labconsole import figures, report  # noqa: E402
from labconsole import sweep as sweeps  # noqa: E402
from labconsole.aggregate import Member, aggregate  # noqa: E402
from labconsole.figures.run import grid_rows  # noqa: E402
from labconsole.figures.sweep import curves_figure  # noqa: E402
from labconsole.runview import replay  # noqa: E402
from runs_helpers import PRESETS, ROOT, labconsole, set_args, tiny  # noqa: E402
from test_app_helpers import make_eval  # noqa: E402

SETS = tiny("eval.phase_single_min=0.0", "eval.phase_accuracy_frac=0.0", "eval.n_samples=32",
            "sweep.data.dx,data.dy,eval.phase_r2_min=[[1.0,1.0,0.0],[2.0,2.0,1.0]]", "sweep.seeds=[0,1]",
            steps=6, eval_every=6, checkpoint_every=6, seeds=False)
# pca: the PCA spectrum over steps; persistence: H1 of layer 4's top PCs (issue 16; the worker keeps
# the PC scores in every samples file, the report reads them with GUDHI, installed by .[test])
PER_RUN = {"curves", "samples", "umap", "pca", "persistence",
           "regions"}  # regions: the held-out samples, a row per region (the hole here)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails on anything but a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def assert_pdf_with_embedded_fonts(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF"), f"{path} is not a whole PDF"
    assert b"/FontFile2" in data, f"{path}: no embedded TrueType font"
    assert b"/Type3" not in data, f"{path}: Type 3 fonts (pdf.fonttype 42 not applied)"


def assert_figures(folder: Path, names: set[str]) -> None:
    """Exactly ``names`` as PNG + PDF in ``folder``, each valid and of a paper's width."""
    assert {p.name for p in folder.glob("*.p[nd][gf]")} == {f"{n}.{e}" for n in names for e in ("png", "pdf")}
    for name in names:
        width, height = png_size(folder / f"{name}.png")
        # one column (3.4 in) or two (7 in), at 150 dpi (per run) or 200 dpi (the preset's figures)
        assert 3.4 * 150 - 2 <= width <= 7 * 200 + 2 and 150 <= height <= 2000, (name, width, height)
        assert_pdf_with_embedded_fonts(folder / f"{name}.pdf")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    runs = tmp_path_factory.mktemp("figures")
    done = labconsole("--batch", str(PRESETS / "hole.toml"), *set_args(SETS), "--runs-dir", str(runs), "--jobs", "4",
                      "--no-cost", cwd=runs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = (runs / "sweeps").iterdir()
    return sweeps.load(path), report.collect([path])


def test_the_batch_report_of_a_hole_sweep_over_increments_has_every_figure_valid(real):
    sweep, data = real
    out = sweep.report_dir
    assert_figures(out, {"steps-to-c", "id-vs-ood", "curves"})  # no imbalance: dx = dy
    best = {a.best.run_id for a in data.aggregates}
    assert {p.name for p in (out / "runs").iterdir()} == best and len(best) == 2  # one per setting
    for run_id in best:
        assert_figures(out / "runs" / run_id, PER_RUN)
        rows = (out / "runs" / run_id / "persistence.csv").read_text().splitlines()
        assert rows[0] == "step,n_points,p1,p2,p3,n_long" and len(rows) == 3  # evals at steps 0 and 6
        assert all(int(r.split(",")[1]) >= 16 for r in rows[1:])  # a point per distinct ID label
    readme = (out / "README.txt").read_text()
    assert "best seed only (2 run(s); 2 other(s) not drawn)" in readme and "--all-runs" in readme


def test_censored_runs_are_drawn_at_their_last_eval_never_dropped(real):
    _, data = real
    censored = [a for a in data.aggregates if a.first_c.censored]
    assert [a.setting.label for a in censored] == ["dx=2.0 dy=2.0 phase_r2_min=1.0"]
    with figures.style():
        fig, drawn = figures.steps_figure(data)
    panels = [[a.first_c, a.c_held, a.acc_held] for a in data.aggregates]
    expected = sum(len(st.censored) for sts in panels for st in sts)
    reached = sum(st.n_reached for sts in panels for st in sts)
    assert drawn.censored == expected >= 4 and drawn.reached == reached  # C: 2 panels x 2 seeds censored
    marks = [c.get_offsets() for ax in fig.axes[:2] for c in ax.collections if c.get_gid() == "censored"]
    assert len(marks) == 2 and np.concatenate(marks).tolist() == [[x, 6.0] for x in (2 - 0.015, 2 + 0.015)] * 2
    # each at x = its increment (seeds side by side) and y = its last eval: "not reached by step 6"


def test_the_samples_grid_shows_the_same_labels_at_the_first_and_last_eval(real):
    _, data = real
    member, run_dir = figures.chosen_runs(data)[0]
    rows, phases, notes = grid_rows(member.view, run_dir)
    assert [s.step for s in rows] == [0, 6] and phases == [e.phase for e in member.view.evals] and not notes
    targets = figures.grid_columns(rows[-1])
    in_hole = rows[-1].labels[rows[-1].ood]
    assert len(targets) == 8 and all((in_hole == t).all(axis=1).any() for t in targets[-2:])  # 2 hole columns last
    image, marks, pitch = figures.mosaic(rows, targets)
    for r, s in enumerate(rows):
        i = int(np.argmin(((s.labels - targets[3]) ** 2).sum(axis=1)))
        assert np.array_equal(image[r * pitch:r * pitch + 32, 3 * pitch:3 * pitch + 32], s.images[i])
    assert np.isnan(image[32:pitch]).all()  # the gap between rows


def test_report_all_runs_draws_every_run(real, tmp_path):
    sweep, data = real
    done = labconsole("report", str(sweep.dir), "--out", str(tmp_path), "--all-runs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "runs").iterdir()} == {m.run_id for m in data.members}
    assert "best seed only" not in done.stdout


def test_without_matplotlib_the_report_writes_its_csvs_and_says_how_to_get_figures(real, tmp_path):
    sweep, _ = real
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from labconsole.cli import main; sys.exit(main(['report', sys.argv[1], '--out', sys.argv[2]]))")
    done = subprocess.run([sys.executable, "-c", code, str(sweep.dir), str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.txt", "curves.csv", "evals.csv", "summary.csv"]
    assert re.search(r"figures: none \(.*matplotlib.*\); for PNG / PDF figures: pip install 'labconsole\[report\]'",
                     done.stdout)


# -- synthetic sweeps: the figures each preset shape gets -----------------------------------------


SMALL = ["sweep.seeds=[0,1]", "train.steps=12800", "eval.n_samples=100"]  # 3 evals, no training


@pytest.mark.parametrize("preset, overrides, expected", [
    ("increments.toml", ["sweep.data.dx,data.dy=[[0.5,0.5],[1.0,1.0]]", *SMALL], {"steps-to-c", "curves"}),
    ("imbalance-weak.toml", SMALL, {"imbalance", "curves"}),
])
def test_each_preset_gets_its_own_figure(tmp_path, preset, overrides, expected):
    path = build(tmp_path / "runs", overrides, PRESETS / preset)
    data = report.collect([path])
    files, notes = figures.write_figures(data, tmp_path / "out")
    assert_figures(tmp_path / "out", expected)
    assert len(list((tmp_path / "out" / "runs").iterdir())) == len(data.grid)
    assert len(files) == 2 * len(expected) + 6 * len(data.grid)


def test_the_curves_figure_adds_a_pca_pr_panel_only_for_runs_with_a_spectrum():
    def data(**pca):
        evals = [dataclasses.replace(make_eval(step, 0.5, "B"), **pca) for step in (0, 100, 200)]
        grid = [sweeps.Setting("s", {})]
        return SimpleNamespace(aggregates=aggregate(grid, [Member("s", 0, "r0", replay(evals))]), preset="p")

    with figures.style():
        with_pca = curves_figure(data(pca_top4=0.6, pca_pr=3.5, pca_n90=6))
        older = curves_figure(data())
    assert [ax.get_ylabel() for ax in with_pca.axes] == ["accuracy", "mean R² (UMAP-3D)", "PCA participation ratio"]
    assert len(with_pca.axes[2].lines) >= 1 and len(older.axes) == 2


def test_the_regions_figure_shows_each_regions_samples_in_reading_order_with_its_numbers(tmp_path):
    from labconsole.figures.regions import COLUMNS, RunRegions, has_regions, region_rows
    from labconsole.samples import Samples

    rng = np.random.default_rng(0)
    n = 30
    labels = rng.uniform(0, 32, (n, 2)).astype(np.float32)
    region = np.array([-1] * 6 + [0] * 20 + [2] * 4, dtype=np.int16)  # region 1 ("empty") has no sample
    pred = labels.copy()
    pred[-1, 0] = np.nan  # an axis read absent: no x mark
    s = Samples(rng.uniform(-1, 1, (n, 32, 32)).astype(np.float32), labels, pred, np.ones(n, int),
                ood=region >= 0, step=900, region=region)
    regions = {"arm": dict(accuracy=0.4, n=20, ceiling=0.9), "empty": dict(accuracy=None, n=0),
               "arm ∩ arm": dict(accuracy=1.0, n=4, ceiling=1.0)}
    rows = region_rows(s, list(regions))
    assert [name for name, _ in rows] == ["arm", "arm ∩ arm"]
    arm = rows[0][1]
    assert len(arm) == COLUMNS and set(arm) <= set(range(6, 26)) and arm[0] != arm[-1]
    order = s.labels[arm]
    assert all((a[1], a[0]) <= (b[1], b[0]) for a, b in zip(order, order[1:]))  # by y, then x
    assert has_regions(s, regions) and not has_regions(dataclasses.replace(s, region=None), regions)
    with figures.style():
        fig = RunRegions().draw(s, regions, "r0")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["arm\n0.40 of 0.90, n 20", "arm ∩ arm\n1.00 of 1.00, n 4"]
    targets, reads = (c.get_offsets() for c in ax.collections[:2])
    assert len(targets) == COLUMNS + 4 and len(reads) == COLUMNS + 3
    assert_figures_written = figures.save(fig, tmp_path / "regions")
    assert {p.suffix for p in assert_figures_written} == {".png", ".pdf"}


def test_long_panel_titles_wrap_and_stay_clear_of_their_neighbours():
    from labconsole.figures.base import TWO_COLUMNS, new_figure, panel_title, style
    label = "holes=[[14.0,14.0,18.0,18.0]] hole_names=[interior]"  # a hole-edge sweep's setting

    def title_boxes(entitle):
        with style():  # the report's fonts and sizes
            fig, axes = new_figure(TWO_COLUMNS, 2.3, 1, 3)
            for ax in axes[0]:
                entitle(ax)
            fig.canvas.draw()
        return axes[0], [ax.title.get_window_extent() for ax in axes[0]]

    _, plain = title_boxes(lambda ax: ax.set_title(label))
    assert any(a.x1 > b.x0 for a, b in zip(plain, plain[1:]))  # on one line they run into each other
    axes, wrapped = title_boxes(lambda ax: panel_title(ax, label, TWO_COLUMNS / 3 - 0.3))
    assert all(a.x1 < b.x0 for a, b in zip(wrapped, wrapped[1:]))
    assert axes[0].get_title() == "holes=[[14.0,14.0,18.0,18.0]]\nhole_names=[interior]"
    axes, _ = title_boxes(lambda ax: panel_title(ax, "dx=dy=0.5", TWO_COLUMNS / 3 - 0.3))
    assert axes[0].get_title() == "dx=dy=0.5"  # a short one stays as it is
