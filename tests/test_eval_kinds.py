"""Evaluating every data kind (issue 16): the reader by kind, its ceiling and its words ("single marks"
for stripes), per-region accuracy, the PCA spectrum and its ring overlaps, their Eval fields on the
wire, the console's detail lines and PCA plot, and a tiny sos-cross run end to end with its report."""
from __future__ import annotations

import csv
import dataclasses
import json
import re
import math

import numpy as np
import pytest
import torch

from labconsole import events as ev
from labconsole.app import make_app
from labconsole.app.widgets.eval_detail import EvalDetail, detail_lines
from labconsole.config import EvalConfig, RunConfig
from labconsole.eventlog import read_events
from labconsole.evaluate import Evaluator, ring_overlaps
from labconsole.readout import Reading, Readout, reader_for
from labconsole.samples import read_samples, write_samples
from metrics import RingOverlaps, pca_spectrum
from model.config import DataConfig, DiffusionConfig, ModelConfig
from model.data import hole_membership, render
from model.train import build_model
from runs_helpers import PRESETS, labconsole, set_args, tiny
from test_app_helpers import make_eval, screen_text, wait_for, write_run

CPU = torch.device("cpu")
CROSS = ((13.0, 0.0, 19.0, 31.0), (0.0, 13.0, 31.0, 19.0))  # a vertical and a horizontal strip (follow-up Fig. 4)
NAMES = ("vertical arm", "horizontal arm")
KINDS = {
    "sos": DataConfig(dx=1.0, dy=1.0, kind="sos"),
    "stripe-44": DataConfig(dx=1.0, dy=1.0, kind="stripe", canvas=44),
    "periodic": DataConfig(dx=1.0, dy=1.0, sigma=1.5, periodic=True),
}


def tiny_config(data: DataConfig, n_samples: int = 24, n_ood: int = 0) -> RunConfig:
    ec = EvalConfig(n_samples=n_samples, n_ood=n_ood, sampler="ddim", ddim_steps=3, umap_neighbors=5, seed=3)
    return RunConfig(data=data, model=ModelConfig(size="tiny"), diffusion=DiffusionConfig(T=30, prediction="x0"),
                     eval=ec)


# --------------------------------------------------------------------------- the reader by kind


def test_the_reader_follows_the_data_kind():
    assert reader_for(DataConfig()) == "bump"
    assert reader_for(DataConfig(periodic=True)) == "periodic"
    assert reader_for(DataConfig(kind="sos")) == reader_for(DataConfig(kind="stripe")) == "axes"
    assert reader_for(DataConfig(canvas=44)) == "axes"


def test_stripes_off_the_frame_are_expected_absent_and_score_right_when_read_so():
    cfg = DataConfig(kind="stripe", canvas=44)  # frame [6, 38) of the canvas
    labels = np.array([[20.0, 20.0], [20.0, 2.0], [3.0, 40.0], [10.5, 30.5]], dtype=np.float32)
    readout = Readout(cfg, 1.0, min_depth=0.3, min_snr=10.0)
    truth = render(torch.from_numpy(labels), cfg).numpy() * 2 - 1
    reading = readout.read(truth, labels)
    assert readout.expected(labels).tolist() == [[True, True], [True, False], [False, False], [True, True]]
    assert np.isnan(reading.positions[1, 1]) and np.isnan(reading.positions[2]).all()
    np.testing.assert_allclose(reading.positions[[0, 3]], labels[[0, 3]], atol=0.1)  # canvas coordinates
    assert reading.marks.tolist() == [1, 1, 1, 1]  # a blank read as blank is "one": what was asked
    assert readout.score(reading, labels).overall == 1.0


def test_sos_stripes_on_the_frame_edge_score_either_way_and_the_ceiling_is_one():
    cfg = DataConfig(kind="sos", canvas=44)  # frame [6, 38): 6 and 38 mirror each other, 5 and 39 too
    xs = np.array([3.0, 4.0, 5.0, 5.5, 6.0, 7.0, 37.0, 38.0, 38.5, 39.0, 40.0], dtype=np.float32)
    labels = np.stack([xs, np.full_like(xs, 20.0)], axis=1)
    readout = Readout(cfg, 1.0, min_depth=0.3, min_snr=10.0)
    assert readout.edge(labels)[:, 0].tolist() == [False, False, True, True, True, False, False, True, True,
                                                    True, False]
    assert not readout.edge(labels)[:, 1].any()
    assert readout.ceiling(labels).overall == 1.0  # 0.55 before the band (5 of these 11 read "wrong")
    truth = render(torch.from_numpy(labels), cfg).numpy() * 2 - 1
    assert readout.read(truth, labels).marks.tolist() == [1] * len(xs)  # none is an extra mark
    # Not lenient beyond the band: an inside stripe read absent, an edge stripe drawn 3 px in, and a
    # stripe 2 px out read at the edge are all wrong.
    wrong = np.array([[np.nan, 20.0], [10.0, 20.0], [6.0, 20.0]])
    for_labels = np.array([[37.0, 20.0], [6.0, 20.0], [4.0, 20.0]], dtype=np.float32)
    assert readout.score(Reading(wrong, np.ones(3, dtype=np.int64)), for_labels).correct_x == 0
    # kind stripe gates each axis by the frame (no tail drawn): no band
    assert not Readout(DataConfig(kind="stripe", canvas=44), 1.0, min_depth=0.3, min_snr=10.0).edge(labels).any()


def test_axes_failure_modes_none_one_several():
    cfg = DataConfig(kind="sos")
    readout = Readout(cfg, 1.0, min_depth=0.3, min_snr=10.0)
    labels = np.array([[10.5, 20.5]] * 3, dtype=np.float32)
    blank = np.ones((32, 32), dtype=np.float32)
    cross = render(torch.from_numpy(labels[:1]), cfg).numpy()[0] * 2 - 1
    two = np.minimum(cross, render(torch.tensor([[25.5, 20.5]]), cfg).numpy()[0] * 2 - 1)  # two vertical stripes
    reading = readout.read(np.stack([blank, cross, two]), labels)
    assert reading.marks.tolist() == [0, 1, 2]


@pytest.mark.parametrize("name", KINDS)
def test_an_untrained_model_is_evaluated_for_every_kind_with_a_ceiling_near_one(name, one_thread):
    cfg = tiny_config(KINDS[name])
    evaluator = Evaluator(cfg, CPU)
    assert evaluator.ceiling.overall >= 0.9 and evaluator.ceiling.n == 24
    result = evaluator(0, build_model(cfg.model, 0, CPU))
    numbers = (result.accuracy, result.ceiling, result.blobs_0 + result.blobs_1 + result.blobs_many)
    assert all(math.isfinite(v) for v in numbers) and result.blobs_0 + result.blobs_1 + result.blobs_many == 1
    assert result.phase in "ABC" and result.regions is None
    mark = "bump" if name == "periodic" else "mark"  # stripes are read per axis: marks (reader "axes")
    assert result.reader == ("periodic" if name == "periodic" else "axes") and f"single {mark}s" in result.phase_reason
    assert 0 < result.pca_top4 <= 1 and 1 <= result.pca_pr <= 23 and 1 <= result.pca_n90 <= 23
    assert len(result.pca_ratios) == 15 and sorted(result.pca_ratios, reverse=True) == result.pca_ratios
    assert result.samples.pred.shape == (24, 2)


# --------------------------------------------------------------------------- regions


def test_a_sos_cross_reports_three_regions_with_their_counts(one_thread):
    data = DataConfig(dx=1.0, dy=1.0, kind="sos", holes=CROSS, hole_names=NAMES)
    cfg = tiny_config(data, n_samples=16, n_ood=40)
    evaluator = Evaluator(cfg, CPU)
    result = evaluator(0, build_model(cfg.model, 0, CPU))
    ood = evaluator.labels[evaluator.ood]
    member = hole_membership(ood, CROSS)
    expected_n = {"vertical arm": int((member[:, 0] & ~member[:, 1]).sum()),
                  "horizontal arm": int((member[:, 1] & ~member[:, 0]).sum()),
                  "vertical arm ∩ horizontal arm": int(member.all(axis=1).sum())}
    assert list(result.regions) == list(expected_n)
    assert {name: r["n"] for name, r in result.regions.items()} == expected_n and sum(expected_n.values()) == 40
    for r in result.regions.values():
        assert set(r) == {"accuracy", "accuracy_x", "accuracy_y", "n", "ceiling"}
        assert r["accuracy"] is None if r["n"] == 0 else 0 <= r["accuracy"] <= 1
        # a sum of stripes is read exactly from its truth image (tests/test_metrics_stripes.py)
        assert r["ceiling"] is None if r["n"] == 0 else r["ceiling"] == 1.0
    assert evaluator.ceiling_ood.overall >= 0.9


def test_an_edge_square_of_bumps_is_read_against_its_own_lower_ceiling(one_thread):
    """At sigma 2, bumps cut by the frame's border are placed worse by the reader than bumps inside
    (at sigma 1 both read 1.0): the edge square's ceiling is below the interior square's (measured:
    0.80 against 1.00 over all of each square's centres)."""
    holes = [[14.0, 14.0, 18.0, 18.0], [0.0, 14.0, 4.0, 18.0]]  # an interior and an edge 4 x 4 square
    data = DataConfig(dx=1.0, dy=1.0, sigma=2.0, holes=holes, hole_names=["interior", "edge"])
    evaluator = Evaluator(tiny_config(data, n_samples=16, n_ood=32), CPU)
    result = evaluator(0, build_model(ModelConfig(size="tiny"), 0, CPU))
    ceilings = {name: r["ceiling"] for name, r in result.regions.items()}
    assert set(ceilings) == {"interior", "edge"} and ceilings["interior"] == 1.0 and ceilings["edge"] <= 0.9


# --------------------------------------------------------------------------- the wire


def test_the_new_eval_fields_round_trip_through_json(one_thread):
    data = DataConfig(dx=1.0, dy=1.0, kind="sos", holes=CROSS, hole_names=NAMES)
    result = Evaluator(tiny_config(data, 16, 12), CPU)(3, build_model(ModelConfig(size="tiny"), 0, CPU))
    event = ev.decode(ev.encode(result.to_event("samples/step-0000003.npz")))
    new = ("regions", "pca_top4", "pca_pr", "pca_n90", "pca_ratios", "pca_overlap_xy", "pca_overlap_xx",
           "pca_overlap_yy")
    assert {k: getattr(event, k) for k in new} == {k: getattr(result, k) for k in new}
    assert isinstance(event.pca_n90, int) and list(event.regions)[0] == "vertical arm"


def test_the_ring_overlaps_are_the_spectrums_and_round_trip(one_thread):
    cfg = tiny_config(DataConfig(dx=4.0, dy=4.0), n_samples=64)  # 8 x 8 centres, all drawn: 8 rings of 8 each way
    evaluator = Evaluator(cfg, CPU)
    model = build_model(cfg.model, 0, CPU)
    result = evaluator(0, model)
    features = evaluator._sample(model)[1]  # the same layer 4 again: the eval's noise and generator are seeded
    rows = evaluator.umap_rows
    rings = pca_spectrum(features[rows], evaluator.labels[rows]).rings
    assert (rings.n_rings_x, rings.n_rings_y) == (8, 8)
    expected = (rings.overlap_xy, rings.overlap_xx, rings.overlap_yy)
    got = (result.pca_overlap_xy, result.pca_overlap_xx, result.pca_overlap_yy)
    assert got == pytest.approx(expected, abs=1e-9) and all(0 <= v <= 1 for v in got)
    event = ev.decode(ev.encode(result.to_event("samples/step-0000000.npz")))
    assert (event.pca_overlap_xy, event.pca_overlap_xx, event.pca_overlap_yy) == got


def test_ring_overlaps_without_enough_rings_are_none_never_nan():
    assert ring_overlaps(None) == dict(pca_overlap_xy=None, pca_overlap_xx=None, pca_overlap_yy=None)
    some = ring_overlaps(RingOverlaps(0.02, math.nan, 0.98, n_rings_x=1, n_rings_y=3))
    assert some == dict(pca_overlap_xy=0.02, pca_overlap_xx=None, pca_overlap_yy=0.98)
    line = ev.encode(dataclasses.replace(make_eval(5, 0.5, "B"), **some))
    assert '"pca_overlap_xx":null' in line and "NaN" not in line


def test_an_eval_line_without_the_issue_16_fields_still_decodes():
    line = ev.encode(ev.Eval(step=5, accuracy=0.5, accuracy_x=0.5, accuracy_y=0.5, ceiling=1.0, ceiling_x=1.0,
                             ceiling_y=1.0, r2_x=0.1, r2_y=0.2, r2_mean=0.15, r2_pca_mean=0.1, r2_shuffled=0.0,
                             blobs_0=0.0, blobs_1=1.0, blobs_many=0.0, phase="B", phase_reason="B", eval_seconds=1.0,
                             n_samples=16, sampler="ddim-3"))
    new = ("regions", "pca_top4", "pca_pr", "pca_n90", "pca_ratios", "pca_overlap_xy", "pca_overlap_xx",
           "pca_overlap_yy")
    old = {k: v for k, v in json.loads(line).items() if k not in new}
    event = ev.decode(json.dumps(old))
    assert tuple(getattr(event, k) for k in new) == (None,) * len(new)


def test_samples_of_a_larger_canvas_keep_absent_axes_and_the_frame_offset(tmp_path, one_thread):
    cfg = tiny_config(KINDS["stripe-44"])
    result = Evaluator(cfg, CPU)(0, build_model(cfg.model, 0, CPU))
    read = read_samples(write_samples(tmp_path, 0, result.samples), 0)
    assert read.offset == 6.0
    np.testing.assert_array_equal(np.isnan(read.pred), np.isnan(result.samples.pred))


# --------------------------------------------------------------------------- end to end


def test_a_tiny_sos_cross_run_ends_with_region_columns_in_its_report(tmp_path):
    overrides = tiny("data.kind=sos", "data.dx=1.0", "data.dy=1.0", "data.sigma=1.0",
                     "data.holes=[[13.0, 0.0, 19.0, 31.0], [0.0, 13.0, 31.0, 19.0]]",
                     'data.hole_names=["vertical arm", "horizontal arm"]', "eval.umap_neighbors=5",
                     steps=4, eval_every=4, checkpoint_every=4)
    done = labconsole("--batch", str(PRESETS / "hole-mini.toml"), *set_args(overrides),
                      "--runs-dir", str(tmp_path / "runs"), "--no-cost", "--no-figures", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the batch's eval line: held-out accuracy, and each region of the cross that has labels beside it
    # (16 held-out labels: the intersection, 49 of 399 held-out centres, may draw none)
    assert re.search(r"step 4: accuracy [0-9.]+ \(ceiling [0-9.]+\), held out [0-9.]+ \(vertical arm [0-9.]+, "
                     r"horizontal arm [0-9.]+(, vertical arm ∩ horizontal arm [0-9.]+)?\), R²", done.stdout), done.stdout
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    with open(sweep_dir / "report" / "evals.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["0", "4"]
    for name in ("vertical arm", "horizontal arm", "vertical arm ∩ horizontal arm"):
        assert f"region[{name}].accuracy" in rows[0] and rows[-1][f"region[{name}].n"] != ""
    assert float(rows[-1]["pca_top4"]) > 0 and float(rows[-1]["pca_pr"]) >= 1
    assert {"pca_overlap_xy", "pca_overlap_xx", "pca_overlap_yy"} <= set(rows[0])  # empty without rings


# --------------------------------------------------------------------------- the console


REGIONS = {"vertical arm": dict(accuracy=0.4, accuracy_x=0.55, accuracy_y=0.6, n=38),
           "horizontal arm": dict(accuracy=0.35, accuracy_x=0.5, accuracy_y=0.61, n=40),
           "vertical arm ∩ horizontal arm": dict(accuracy=None, accuracy_x=None, accuracy_y=None, n=0)}


RINGS = dict(pca_overlap_xy=0.02, pca_overlap_xx=0.99, pca_overlap_yy=0.98)


def cross_run(runs_dir, regions=REGIONS):
    """A synthetic finished run whose evals carry a cross's regions (``regions``) and the PCA spectrum."""
    run_dir = write_run(runs_dir)
    events = read_events(run_dir / "events.jsonl")
    events = [dataclasses.replace(e, regions=regions, pca_top4=0.62, pca_pr=3.94, pca_n90=7, pca_ratios=[0.3] * 15,
                                  **RINGS) if isinstance(e, ev.Eval) else e for e in events]
    (run_dir / "events.jsonl").write_text("".join(ev.encode(e) + "\n" for e in events))
    return run_dir


def test_detail_lines_pack_the_regions_and_drop_x_y_when_narrow():
    e = dataclasses.replace(make_eval(1200, 0.5, "B"), regions=REGIONS, pca_top4=0.62, pca_pr=3.94, pca_n90=7)
    wide = [line.plain for line in detail_lines(e, 120)]
    assert wide[0] == "PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7"
    assert wide[1:] == ["held out: vertical arm 0.40 (x 0.55 y 0.60, n 38) · horizontal arm 0.35 (x 0.50 y 0.61, n 40)",
                        "          vertical arm ∩ horizontal arm n/a (x n/a y n/a, n 0)"]
    narrow = [line.plain for line in detail_lines(e, 76)]
    assert narrow[1:] == ["held out: vertical arm 0.40 (n 38) · horizontal arm 0.35 (n 40)",
                          "          vertical arm ∩ horizontal arm n/a (n 0)"]
    assert [line.plain for line in detail_lines(e, 50)][1:] == ["held out: vertical arm 0.40 · horizontal arm 0.35",
                                                                "          vertical arm ∩ horizontal arm n/a"]
    assert detail_lines(make_eval(0, 0.1, "A"), 156) == [] and detail_lines(None, 80) == []  # older evals: nothing


def test_a_regions_ceiling_shows_in_the_widest_detail_only():  # older evals have none: not shown
    with_ceiling = {"edge": dict(accuracy=0.4, accuracy_x=0.55, accuracy_y=0.6, n=38, ceiling=0.8)}
    e = dataclasses.replace(make_eval(1200, 0.5, "B"), regions=with_ceiling)
    assert [line.plain for line in detail_lines(e, 120)] == ["held out: edge 0.40 (x 0.55 y 0.60, ceiling 0.80, n 38)"]
    three = {**with_ceiling, "interior": dict(accuracy=0.9, accuracy_x=0.9, accuracy_y=1.0, n=40, ceiling=1.0),
             "rim": dict(accuracy=0.5, accuracy_x=0.6, accuracy_y=0.7, n=12, ceiling=0.9)}
    narrow = [line.plain for line in detail_lines(dataclasses.replace(e, regions=three), 60)]
    assert narrow == ["held out: edge 0.40 (n 38) · interior 0.90 (n 40)",
                      "          rim 0.50 (n 12)"]  # no room: no x / y, no ceiling


def test_the_pca_line_adds_the_ring_overlaps_on_a_line_of_their_own_when_narrow():
    e = dataclasses.replace(make_eval(1200, 0.5, "B"), pca_top4=0.62, pca_pr=3.94, pca_n90=7, **RINGS)
    rings = "rings x⊥y 0.02 · x∥x 0.99 · y∥y 0.98"
    assert [line.plain for line in detail_lines(e, 120)] == [f"PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7 · {rings}"]
    assert [line.plain for line in detail_lines(e, 78)] == [f"PCA @1,200: top-4 62% · PR 3.9 · n90 7 · {rings}"]
    assert [line.plain for line in detail_lines(e, 50)] == ["PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7", rings]
    assert all(len(line) <= 40 for line in detail_lines(e, 40)) and len(detail_lines(e, 40)) == 2
    crowded = [line.plain for line in detail_lines(dataclasses.replace(e, regions=REGIONS), 50)]
    assert len(crowded) == 3 and crowded[0].startswith("PCA layer 4") and rings not in crowded  # regions first
    one = dataclasses.replace(e, pca_overlap_xx=None, pca_overlap_yy=None)  # one x-ring: no parallelism
    assert detail_lines(one, 120)[0].plain.endswith("rings x⊥y 0.02 · x∥x n/a · y∥y n/a")
    none = dataclasses.replace(one, pca_overlap_xy=None)  # no rings, or an eval written before them
    assert [line.plain for line in detail_lines(none, 120)] == ["PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7"]


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_the_console_shows_a_cross_runs_region_lines_and_its_pca_line(tmp_path, size):
    run_dir = cross_run(tmp_path / "runs")
    app = make_app(run_dir.parent, tmp_path)
    async with app.run_test(size=size) as pilot:
        app.monitor.attach(run_dir)
        detail = app.query_one(EvalDetail)
        await wait_for(pilot, lambda: detail.eval is not None and detail.eval.step == 400, what="the last eval")
        await pilot.pause()
        text = screen_text(app)
        rings = "rings x⊥y 0.02 · x∥x 0.99 · y∥y 0.98"
        if size[0] > 80:
            assert f"PCA layer 4 @400: top-4 62% · PR 3.9 · n90 7 · {rings}" in text
        else:  # a monitor of ~50 columns: the rings' own line would be a fourth, the regions come first
            assert "PCA layer 4 @400: top-4 62% · PR 3.9 · n90 7" in text and "x⊥y" not in text
        assert "held out: vertical arm 0.40" in text and "horizontal arm 0.35" in text
        assert "vertical arm ∩ horizontal arm n/a" in text
        assert detail.size.height == 3


async def test_at_80_columns_a_run_without_regions_shows_its_rings_under_the_pca_line(tmp_path):
    run_dir = cross_run(tmp_path / "runs", regions=None)  # a torus run: no held-out region
    app = make_app(run_dir.parent, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.monitor.attach(run_dir)
        detail = app.query_one(EvalDetail)
        await wait_for(pilot, lambda: detail.eval is not None and detail.eval.step == 400, what="the last eval")
        await pilot.pause()
        text = screen_text(app)
        assert "PCA layer 4 @400: top-4 62% · PR 3.9 · n90 7" in text
        assert "rings x⊥y 0.02 · x∥x 0.99 · y∥y 0.98" in text and detail.size.height == 2


async def test_p_turns_the_r2_plot_into_the_pca_effective_dimension_and_back(tmp_path):
    run_dir = cross_run(tmp_path / "runs")
    app = make_app(run_dir.parent, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.monitor.attach(run_dir)
        plot = app.monitor.query_one("#r2")
        await wait_for(pilot, lambda: plot.chart.n_points > 0, what="the R² plot drawn")
        assert plot.chart.title.startswith("UMAP R²")
        await pilot.press("p")
        await pilot.pause()
        assert plot.chart.title == "PCA layer 4 · effective dim" and plot.chart.curves[0].values == (3.94,) * 5
        assert "PCA layer 4 · effective dim" in screen_text(app)
        await pilot.press("p")
        assert plot.chart.title.startswith("UMAP R²")
