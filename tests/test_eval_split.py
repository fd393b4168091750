"""Issue 12 on a real hole run: ID and OOD read apart, the label warning, the failure modes in the
batch summary and in the console's strip.

One real ``labconsole --batch presets/hole.toml`` run, shrunk (tiny UNet, DDIM-3, 6 steps) and on a
coarser grid (dx = dy = 2: 247 training centres, a hole of 9 centres for 12 OOD labels), serves
every test here; each number it wrote is recomputed from its samples file and checkpoint.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

from labconsole import events as ev
from labconsole.app import make_app
from labconsole.app.widgets.failure_strip import BLOCKS, MODES, ZERO, FailureStrip, cell, strip_lines
from labconsole.evaluate import Evaluator, umap_rows
from labconsole.runconfig import load_config
from labconsole.samples import read_samples
from metrics import accuracy, failure_modes, manifold_r2
from model.checkpoint import load_checkpoint
from model.train import build_model
from runs_helpers import UMAP_EVAL, PRESETS, events_of, labconsole, set_args, tiny
from test_app_helpers import make_eval, screen_text, wait_for

CPU = torch.device("cpu")
OVERRIDES = tiny(UMAP_EVAL, "data.dx=2.0", "data.dy=2.0", "eval.n_ood=12", steps=6, eval_every=6, checkpoint_every=6)


@pytest.fixture(scope="module")
def hole_run(tmp_path_factory) -> tuple[Path, str]:
    """(the run dir, the batch's stdout) of one real, shrunk hole run."""
    cwd = tmp_path_factory.mktemp("hole")
    result = labconsole("--batch", str(PRESETS / "hole.toml"), "--runs-dir", "runs", "--no-figures", "--no-cost", *set_args(OVERRIDES), cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = [p.parent for p in (cwd / "runs").glob("*/events.jsonl")]
    return run_dir, result.stdout


def evals_of(run_dir: Path) -> list[ev.Eval]:
    return [e for e in events_of(run_dir) if isinstance(e, ev.Eval)]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker ran (train.threads = 1): the same arithmetic
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- the real hole run


def test_every_eval_reports_ood_beside_id_and_warns_of_the_repeated_hole_labels(hole_run):
    run_dir, _ = hole_run
    evals = evals_of(run_dir)
    assert [e.step for e in evals] == [0, 6]
    for e in evals:
        assert (e.n_samples, e.n_ood, e.umap_fits) == (16, 12, 1)
        ood = (e.accuracy_ood, e.ceiling_ood, e.blobs_0_ood, e.blobs_1_ood, e.blobs_many_ood, e.r2_ood, e.r2_all)
        assert None not in ood
    warnings = [e.message for e in events_of(run_dir) if isinstance(e, ev.Log) and e.level == "warning"]
    assert warnings == ["eval labels: the hole has 9 centres for eval.n_ood = 12: each is used at most twice; "
                        "UMAP reads one sample per centre"]


def test_accuracy_and_failure_modes_are_read_on_id_samples_with_ood_beside(hole_run):
    run_dir, _ = hole_run
    for e in evals_of(run_dir):
        s = read_samples(run_dir / e.samples_path, e.step)
        ind, ood = ~s.ood, s.ood
        assert (ind.sum(), ood.sum()) == (16, 12)
        acc, acc_ood = accuracy(s.pred[ind], s.labels[ind]), accuracy(s.pred[ood], s.labels[ood])
        assert (e.accuracy, e.accuracy_x, e.accuracy_y, e.accuracy_ood) == (acc.overall, acc.x, acc.y, acc_ood.overall)
        modes, modes_ood = failure_modes(s.blobs[ind]), failure_modes(s.blobs[ood])
        assert (e.blobs_0, e.blobs_1, e.blobs_many) == (modes.none, modes.one, modes.several)
        assert (e.blobs_0_ood, e.blobs_1_ood, e.blobs_many_ood) == (modes_ood.none, modes_ood.one, modes_ood.several)
        assert f"accuracy {acc.correct}/16 = " in e.phase_reason  # the phase counts the 16 ID samples


def test_r2_is_fitted_on_id_rows_and_the_ood_r2_sits_beside(hole_run, one_thread):
    """Layer 4 of the step-6 eval again, from the step-6 checkpoint; every R² recomputed apart."""
    run_dir, _ = hole_run
    event = evals_of(run_dir)[-1]
    cfg = load_config(run_dir)
    net = build_model(cfg.model, 0, CPU)
    net.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "step-0000006.pt")["model"])
    images, features = Evaluator(cfg, CPU)._sample(net)
    s = read_samples(run_dir / event.samples_path, event.step)
    np.testing.assert_array_equal(images, s.images)  # the same sampling as the worker's

    rows, representative = umap_rows(s.labels)
    id_rows, ood = rows[~s.ood[rows]], s.ood[rows]
    assert (len(id_rows), ood.sum()) == (16, 9)  # one row per distinct label: 12 OOD samples on 9 centres
    fit = dict(n_neighbors=cfg.eval.umap_neighbors, min_dist=cfg.eval.umap_min_dist, seed=cfg.eval.seed)
    inside = manifold_r2(features[id_rows], s.labels[id_rows], **fit)
    expected = (inside.r2_x, inside.r2_y, inside.r2_mean)
    assert (event.r2_x, event.r2_y, event.r2_mean) == pytest.approx(expected, abs=1e-9)
    joint = manifold_r2(features[rows], s.labels[rows], **fit)
    assert event.r2_all == pytest.approx(joint.r2_mean, abs=1e-9) and abs(event.r2_all - event.r2_mean) > 1e-6
    readout = [LinearRegression().fit(joint.embedding[~ood], s.labels[rows][~ood, k]) for k in (0, 1)]
    r2_ood = np.mean([f.score(joint.embedding[ood], s.labels[rows][ood, k]) for k, f in enumerate(readout)])
    # float32 embeddings: a negative R² far from 0 (here ~ -28) agrees to float32's precision, relative
    assert event.r2_ood == pytest.approx(r2_ood, rel=1e-6, abs=1e-6)
    # The samples file keeps the joint fit's embedding (ID and hole on one map), a point per sample.
    np.testing.assert_allclose(s.embedding, joint.embedding[np.searchsorted(rows, representative)], atol=1e-6)


def test_the_batch_summary_shows_the_last_evals_failure_modes(hole_run):
    run_dir, stdout = hole_run
    last = evals_of(run_dir)[-1]
    summary = stdout[stdout.index("summary"):]
    assert "none/one/several %" in summary
    shares = "/".join(f"{100 * f:.0f}" for f in (last.blobs_0, last.blobs_1, last.blobs_many))
    row = next(line for line in summary.splitlines() if run_dir.name in line)
    assert f" {shares} " in row, row


async def test_the_console_strip_shows_the_failure_modes_of_the_replayed_events(hole_run, tmp_path):
    run_dir, _ = hole_run
    evals = evals_of(run_dir)
    app = make_app(run_dir.parent, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.monitor.attach(run_dir)
        strip = app.query_one(FailureStrip)
        await wait_for(pilot, lambda: len(strip.evals) == len(evals), what="the replayed evals in the strip")
        await pilot.pause()
        rows = strip.render().plain.split("\n")
        for row, (label, name, _) in zip(rows, MODES, strict=True):
            cells = "".join(cell(getattr(e, name)) for e in evals)
            assert row.startswith(f"{label:<8}{cells} ") and row.endswith(f"{getattr(evals[-1], name):.0%}"), row
        text = screen_text(app)
        assert all(row.rstrip() in text for row in rows)


# --------------------------------------------------------------------------- the strip's cells


def test_a_cell_is_the_share_in_eighths_and_never_hides_a_small_one():
    assert [cell(f) for f in (0.0, 0.002, 1 / 8, 0.5, 0.94, 1.0)] == [ZERO, "▁", "▁", "▄", "█", "█"]
    assert [cell(k / 8) for k in range(1, 9)] == list(BLOCKS[1:])
    assert cell(math.nan) == "?"


def test_the_strip_keeps_the_latest_evals_that_fit_and_ends_with_the_last_shares():
    evals = [make_eval(100 * k, 0.5, "B") for k in range(30)]
    evals[-1] = dataclasses.replace(evals[-1], blobs_0=0.25, blobs_1=0.5, blobs_many=0.25)
    lines = [line.plain for line in strip_lines(evals, width=8 + 10 + 5)]  # room for 10 evals
    assert lines == ["no bump " + ZERO * 9 + "▂" + "  25%",
                     "one     " + "▇" * 9 + "▄" + "  50%",
                     "several " + "▁" * 9 + "▂" + "  25%"]
    assert [line.plain for line in strip_lines([], width=20)] == [f"{label:<8}" + " " * 12 for label, _, _ in MODES]


def test_the_strip_of_stripes_read_per_axis_says_mark_not_bump():
    evals = [dataclasses.replace(make_eval(100 * k, 0.5, "B"), reader="axes") for k in range(3)]
    lines = [line.plain for line in strip_lines(evals, width=8 + 3 + 5)]
    assert [line[:8] for line in lines] == ["no mark ", "one     ", "several "]
    periodic = [dataclasses.replace(e, reader="periodic") for e in evals]  # bumps on a torus: bumps
    assert strip_lines(periodic, width=16)[0].plain.startswith("no bump ")
