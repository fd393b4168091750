"""The console's pure state: the run model as the console imports it, the curve downsampler, the charts
(the PCA ones of issue 16 included)."""
from __future__ import annotations

import dataclasses
import math

import pytest

from labconsole.aggregate import Member, aggregate
from labconsole.app.charts import accuracy_chart, compare_chart, pca_chart, r2_chart, sweep_curves
from labconsole.app.state import RunView, apply, downsample, format_age, replay, series, with_status
from labconsole.events import Eval, Log, PhaseChange, RunFinished, RunStarted, Train
from labconsole.sweep import Setting
from test_app_helpers import make_eval, story


def test_the_console_folds_with_the_one_run_model():
    from labconsole import runview

    assert (RunView, apply, replay, with_status) == (runview.RunView, runview.apply, runview.replay, runview.with_status)


def test_replay_folds_a_whole_run():
    events = story(evals=5)
    view = replay(events)
    assert view.run_id == "run" and view.preset == "quick" and view.device == "cpu"
    assert view.status == "completed"
    assert view.total_steps == 400 and view.step == 400
    assert [e.step for e in view.evals] == [0, 100, 200, 300, 400]
    assert view.phase == "C"
    assert [p.describe() for p in view.phase_history] == ["A -> B at step 200", "B -> C at step 400"]
    assert view.baseline_r2 == pytest.approx(view.evals[0].r2_mean)
    assert view.last_checkpoint == 400
    assert [log.level for log in view.logs] == ["warning"]
    train = [e for e in events if isinstance(e, Train)][-1]
    assert view.loss == train.loss and view.images_per_s == train.images_per_s


def test_apply_never_mutates_and_train_keeps_the_curves():
    view = replay(story(evals=2, finished=None))
    after = apply(view, Train(step=150, loss=0.5, lr=1e-4, images_per_s=10.0))
    assert view.step == 100 and after.step == 150
    assert after.evals is view.evals  # the curves' identity tells widgets there is nothing to redraw
    assert view.status == "running"


def test_a_late_train_event_never_moves_the_step_back():
    view = replay([Train(step=300, loss=1, lr=1, images_per_s=1), Train(step=200, loss=1, lr=1, images_per_s=1)])
    assert view.step == 300


def test_resume_drops_the_abandoned_timeline():
    """A segment resumed from a checkpoint at step 200 replaces what the crashed one did after it."""
    first = story(evals=5, finished=None)
    resumed = [
        RunStarted(run_id="run", preset="quick", config={}, device="cpu", n_params=1, start_step=200, segment=1),
        make_eval(300, accuracy=0.99, phase="C"),
    ]
    view = replay(first + resumed)
    assert [e.step for e in view.evals] == [0, 100, 200, 300]
    assert view.evals[-1].accuracy == 0.99
    assert view.segment == 1 and view.status == "running"
    assert [p.step for p in view.phase_history] == [200] and view.phase == "C"


def test_a_re_evaluation_of_the_same_step_replaces_it():
    view = replay([make_eval(0, 0.1, "A"), make_eval(100, 0.2, "A"), make_eval(100, 0.3, "B")])
    assert [(e.step, e.accuracy) for e in view.evals] == [(0, 0.1), (100, 0.3)]


def test_phase_without_phase_change_events_comes_from_the_latest_eval():
    view = replay([make_eval(0, 0.0, "A"), make_eval(100, 0.5, "B")])
    assert view.phase == "B" and view.phase_reason.startswith("B:")
    assert view.phase_history == ()


def test_duplicate_phase_change_is_recorded_once():
    change = PhaseChange(step=100, old="A", new="B", reason="r")
    assert len(replay([change, change]).phase_history) == 1


def test_logs_are_a_bounded_tail():
    view = replay(Log(level="error", message=str(k)) for k in range(500))
    assert len(view.logs) == 200 and view.logs[-1].message == "499"


def test_finished_and_external_status():
    view = replay(story(evals=2, finished=None))
    assert with_status(view, "crashed").status == "crashed"
    assert with_status(view, "running") is view
    failed = apply(view, RunFinished(status="failed", step=120, error="CUDA out of memory"))
    assert failed.status == "failed" and failed.error == "CUDA out of memory" and failed.step == 120


def test_series_skips_missing_values():
    evals = [make_eval(0, 0.1, "A"), make_eval(100, float("nan"), "A"), make_eval(200, 0.3, "B")]
    assert series(evals, "accuracy") == ([0, 200], [0.1, 0.3])
    assert series(evals, "accuracy_ood") == ([], [])


def test_downsample_keeps_ends_extremes_and_order():
    xs = list(range(10_000))
    ys = [math.sin(x / 300) for x in xs]
    ys[4321] = 5.0  # a spike must survive
    ys[7777] = -5.0
    dx, dy = downsample(xs, ys, 200)
    assert len(dx) <= 200
    assert dx[0] == 0 and dx[-1] == 9_999
    assert dx == sorted(dx)
    assert 5.0 in dy and -5.0 in dy
    assert all(ys[x] == y for x, y in zip(dx, dy))  # points of the data, never invented
    assert len(xs) == 10_000  # the data itself is untouched


def test_downsample_leaves_short_curves_alone_and_rejects_bad_input():
    assert downsample([1, 2, 3], [4, 5, 6], 10) == ([1, 2, 3], [4, 5, 6])
    with pytest.raises(ValueError, match="differ in length"):
        downsample([1, 2], [1], 10)
    with pytest.raises(ValueError, match="at least 4"):
        downsample([1, 2], [1, 2], 2)


def test_charts_carry_ceiling_and_baseline():
    view = replay(story(evals=4))
    acc = accuracy_chart(view)
    assert [c.label for c in acc.curves] == ["acc", "acc x", "acc y"]
    assert acc.hlines[0].value == view.latest.ceiling and "ceiling" in acc.title
    assert acc.n_points == 3 * 4
    r2 = r2_chart(view)
    assert [c.label for c in r2.curves] == ["R² x", "R² y", "R² mean"]
    assert r2.hlines[0].value == view.evals[0].r2_mean and "baseline" in r2.title
    assert accuracy_chart(RunView()).n_points == 0 and accuracy_chart(RunView()).hlines == ()


def with_pca(events, pr=lambda k: 2.0 + k, n90=lambda k: 5 + k):
    """The events, each Eval given a PCA spectrum: PR pr(k) and n90 n90(k) at its k-th eval."""
    out, k = [], 0
    for e in events:
        if isinstance(e, Eval):
            e = dataclasses.replace(e, pca_top4=0.5, pca_pr=pr(k), pca_n90=n90(k))
            k += 1
        out.append(e)
    return out


def test_the_pca_chart_draws_pr_and_n90_from_zero_and_says_when_there_is_none():
    chart = pca_chart(replay(with_pca(story(evals=4))))
    assert [c.label for c in chart.curves] == ["PR", "n90"] and chart.n_points == 2 * 4
    assert chart.curves[0].values == (2.0, 3.0, 4.0, 5.0) and chart.curves[1].values == (5.0, 6.0, 7.0, 8.0)
    assert chart.ylim == pytest.approx((0.0, 1.05 * 8)) and "effective dim" in chart.title
    older = pca_chart(replay(story(evals=4)))  # evals written before issue 16
    assert older.n_points == 0 and older.empty == "no PCA spectrum in these evals"


def test_the_sweep_curves_add_the_pca_pr_band_when_the_runs_have_it():
    grid = [Setting("s", {})]
    members = [Member("s", seed, f"r{seed}", replay(with_pca(story(evals=3), pr=lambda k: 2.0 + k + seed)))
               for seed in (0, 1)]
    acc, r2, pca = sweep_curves(aggregate(grid, members))
    mean, lo, hi = pca.curves  # one setting: the mean and its min-max band
    assert mean.values == (2.5, 3.5, 4.5) and lo.values == (2.0, 3.0, 4.0) and hi.values == (3.0, 4.0, 5.0)
    assert pca.ylim == pytest.approx((0.0, 1.05 * 5.0)) and pca.title.startswith("PCA PR")
    (agg,) = aggregate(grid, members)
    assert agg.curves["pca_top4"].mean == (0.5, 0.5, 0.5)
    older = aggregate(grid, [Member("s", 0, "r0", replay(story(evals=3)))])
    assert "pca_pr" not in older[0].curves and sweep_curves(older)[2].n_points == 0


def test_compare_chart_overlays_up_to_four_runs():
    views = [(f"run{k}", replay(story(evals=k + 2))) for k in range(4)]
    chart = compare_chart(views, "accuracy")
    assert [c.label for c in chart.curves] == ["run0", "run1", "run2", "run3"]
    assert len({c.colour for c in chart.curves}) == 4
    with pytest.raises(ValueError, match="at most 4"):
        compare_chart(views + views[:1], "accuracy")


def test_format_age():
    assert [format_age(s) for s in (5, 90, 7200, 3 * 86400)] == ["5s", "1m", "2h", "3d"]


def test_a_running_run_that_went_quiet_says_how_long_in_its_summary():
    from labconsole.app.widgets.phase import QUIET_AFTER_S, quiet_for, summary_text

    view = apply(RunView(run_id="r"), RunStarted(run_id="r", preset="p", config={}, device="cpu", n_params=1,
                                                 start_step=0, pid=1, time=1000.0))
    view = apply(view, Train(step=5, loss=0.1, lr=1e-3, images_per_s=10.0, time=1010.0))
    assert view.last_event == 1010.0
    assert apply(view, Train(step=6, loss=0.1, lr=1e-3, images_per_s=10.0, time=1005.0)).last_event == 1010.0

    def head(now):
        return summary_text(view, now=now).renderables[0].plain

    assert quiet_for(view, now=1010.0 + QUIET_AFTER_S - 1) == 0 and "no event" not in head(1010.0 + 30)
    assert head(1010.0 + 192).startswith("running · no event for 3m 12s  step 5")
    assert "no event for 1h 06m" in head(1010.0 + 3960)
    stopped = with_status(view, "stopped")  # only a running run can be quiet
    assert quiet_for(stopped, now=1010.0 + 500) == 0 and "no event" not in summary_text(stopped, now=1510.0).renderables[0].plain
