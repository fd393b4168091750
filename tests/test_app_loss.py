"""The training loss in the console: the curve folded from Train events, its debiased EMA, the chart
on a log axis, and the chart drawn from a replayed events file (Pilot)."""
from __future__ import annotations

import math

import pytest

from labconsole.app import make_app
from labconsole.app.charts import loss_chart
from labconsole.app.loss import CHUNK, LossCurve, ema, fold, from_points
from labconsole.app.widgets.curves import ChartPlot
from labconsole.app.widgets.runs import RunList
from labconsole.eventlog import read_events
from labconsole.events import Eval, RunStarted, Train, encode
from labconsole.rundir import Meta, write_meta
from test_app_helpers import screen_text, story, wait_for, write_run


def test_ema_matches_a_hand_computation():
    # weight 0.6 on [1, 2, 4]: m = 0.4, 1.04, 2.224; debiased by 1 - 0.6^k = 0.4, 0.64, 0.784
    assert ema([1.0, 2.0, 4.0], 0.6) == pytest.approx([1.0, 1.625, 2.224 / 0.784])
    assert ema([3.0, 5.0], 0.0) == [3.0, 5.0]  # no smoothing
    assert ema([], 0.6) == []


def test_ema_passes_non_finite_values_through_and_rejects_bad_weights():
    out = ema([1.0, math.nan, 2.0], 0.5)
    assert out[0] == 1.0 and math.isnan(out[1])
    assert out[2] == pytest.approx((0.5 * 0.5 + 0.5 * 2.0) / 0.75)  # the NaN did not count
    for weight in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"EMA weight must be in \[0, 1\)"):
            ema([1.0], weight)


def test_the_curve_keeps_every_point_across_chunks_and_never_mutates():
    curve = LossCurve()
    for k in range(2 * CHUNK + 3):
        curve = curve.add(k * 10, 1.0 / (k + 1))
    assert len(curve) == 2 * CHUNK + 3 and len(curve.chunks) == 2 and len(curve.tail) == 3
    assert curve.points()[CHUNK] == (CHUNK * 10, 1.0 / (CHUNK + 1))
    longer = curve.add(99999, 0.5)
    assert len(curve) == 2 * CHUNK + 3 and longer.points()[-1] == (99999, 0.5)
    assert from_points(curve.points()) == curve


def test_a_resumed_segment_replaces_the_points_after_its_start_step():
    events = [Train(step=s, loss=1.0, lr=1e-3, images_per_s=1.0) for s in (50, 100, 150, 200)]
    events.append(RunStarted(run_id="r", preset="quick", config={}, device="cpu", n_params=1,
                             start_step=100, segment=1))
    events.append(Train(step=150, loss=0.5, lr=1e-3, images_per_s=1.0))
    curve = LossCurve()
    for event in events:
        curve = fold(curve, event)
    assert curve.points() == [(50, 1.0), (100, 1.0), (150, 0.5)]


def test_the_loss_chart_is_raw_and_smoothed_on_a_log_axis():
    curve = from_points([(10, 1.0), (20, 2.0), (30, math.nan), (40, 4.0)])
    chart = loss_chart(curve, 0.6)
    assert chart.ylog and [c.label for c in chart.curves] == ["loss", "EMA 0.6"]
    raw, smooth = chart.curves
    assert raw.steps == (10, 20, 40) and raw.values == (1.0, 2.0, 4.0)
    assert smooth.values == pytest.approx(ema([1.0, 2.0, 4.0], 0.6))
    assert "1 non-finite left out" in chart.title
    assert loss_chart(LossCurve()).n_points == 0


def write_long_run(runs, run_id="20240101T000000Z-quick-long01", train_per_eval=500):
    """A finished run whose events file holds thousands of Train events (no samples)."""
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    events = story(None, run_id, evals=5, train_per_eval=train_per_eval)
    (run_dir / "events.jsonl").write_text("".join(encode(e) + "\n" for e in events))
    write_meta(run_dir, Meta(run_id=run_id, status="completed", preset="quick", step=400))
    return run_dir


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_the_loss_chart_shows_every_train_event_of_a_replayed_run(tmp_path, size):
    runs, presets = tmp_path / "runs", tmp_path / "presets"
    presets.mkdir()
    run_dir = write_run(runs, evals=5)
    losses = [(e.step, e.loss) for e in read_events(run_dir / "events.jsonl") if isinstance(e, Train)]
    app = make_app(runs, presets)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.query_one(RunList).option_count == 1, what="the run listed")
        await pilot.press("a")
        plot = app.query_one("#loss", ChartPlot)
        await wait_for(pilot, lambda: plot.points_drawn == 2 * len(losses), what="the loss drawn")
        assert app.monitor.loss.points() == losses
        raw, smooth = plot.chart.curves
        assert list(zip(raw.steps, raw.values)) == losses  # 80 points: under the plot width, none thinned
        assert list(smooth.values) == pytest.approx(ema([v for _, v in losses], 0.6))
        assert plot.chart.ylog
        text = screen_text(app)
        for expected in ("loss · log · EMA 0.6", "accuracy · ceiling 0.90", "UMAP R²"):
            assert expected in text, expected


async def test_queued_train_messages_coalesce_without_losing_loss_points(tmp_path):
    runs, presets = tmp_path / "runs", tmp_path / "presets"
    presets.mkdir()
    run_dir = write_long_run(runs)
    events = read_events(run_dir / "events.jsonl")
    losses = [(e.step, e.loss) for e in events if isinstance(e, Train)]
    assert len(losses) == 2000
    app = make_app(runs, presets)
    async with app.run_test(size=(160, 48)) as pilot:
        app.monitor.attach(run_dir)
        await wait_for(pilot, lambda: len(app.monitor.view.evals) == 5, what="the replay")
        await wait_for(pilot, lambda: len(app.monitor.loss) == len(losses), what="every loss point")
        assert app.monitor.loss.points() == losses
        assert app.monitor.view.evals == tuple(e for e in events if isinstance(e, Eval))
        plot = app.query_one("#loss", ChartPlot)
        await wait_for(pilot, lambda: plot.chart.n_points == 2 * len(losses), what="the chart")
        # the display is thinned to the plot's width, the data is not
        assert 0 < plot.points_drawn < 2 * len(losses)


async def test_a_run_whose_worker_is_on_another_node_says_it_is_followed_from_its_events_file(tmp_path):
    # A SLURM or Ray run: meta.json names another host (its live socket is there) and a fresh
    # heartbeat, so the run is running; the console follows its events file and says so.
    import time

    runs, presets = tmp_path / "runs", tmp_path / "presets"
    presets.mkdir()
    run_id = "20240101T000000Z-quick-remote"
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    events = story(None, run_id, evals=2, train_per_eval=5, finished=None)
    (run_dir / "events.jsonl").write_text("".join(encode(e) + "\n" for e in events))
    now = time.time()
    write_meta(run_dir, Meta(run_id=run_id, status="running", preset="quick", host="gpu-node-7", pid=4242,
                             started=now - 60, heartbeat=now, step=100, socket="/tmp/elsewhere.sock"))
    app = make_app(runs, presets)
    async with app.run_test(size=(160, 48)) as pilot:
        app.monitor.attach(run_dir)
        await wait_for(pilot, lambda: "worker on gpu-node-7" in screen_text(app), what="the source named")
        assert app.monitor.view.status == "running" and len(app.monitor.view.evals) == 2
        assert "following events.jsonl" in screen_text(app)
