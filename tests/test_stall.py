"""Hung workers do not look alive: a real worker whose loop is held (the LABCONSOLE_TEST_HOLD test
hook) is "stalled" everywhere — meta.json, the runs list, the run view, the batch, the console's
lines — and "running" again once it moves; a long eval that advances its sampler is not stalled;
a killed worker is crashed, not stalled.
"""
from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
from rich.console import Console

from labconsole import batch, runner
from labconsole import events as ev
from labconsole.executors.local import LocalHandle
from labconsole.app.widgets.phase import summary_text
from labconsole.app.widgets.runs import run_prompt
from labconsole.presets import PresetError, load_preset
from labconsole.rundir import effective_status, list_runs, pid_alive, read_meta
from labconsole.runview import RunView, apply, liveness, read_run, replay
from labconsole.worker import HOLD_ENV
from runs_helpers import PRESETS, events_of, first, tiny, wait_for

# On the CPU, so an eval's length does not depend on the box having a GPU.
CPU = ("train.device=cpu",)


def start(runs_dir: Path, *overrides: str, steps: int, eval_every: int) -> tuple[Path, object, batch.RunEntry]:
    """A tiny quick run under a batch entry (the batch's own bookkeeping of a worker)."""
    spec = load_preset(PRESETS / "quick.toml",
                       tiny(*CPU, *overrides, steps=steps, eval_every=eval_every, checkpoint_every=100)).runs[0]
    run_dir = runner.create_run(spec, "quick", runs_dir)
    proc = runner.spawn(run_dir)
    runner.wait_live(run_dir, proc)
    entry = batch.RunEntry(label=spec.label, setting=spec.setting, steps=steps)
    entry.launch(run_dir, LocalHandle(proc))
    return run_dir, proc, entry


def stalled_in_training(run_dir: Path) -> ev.Activity | None:
    """The stall the hold causes (after step 1). On a loaded box, setting up (building the data,
    the model) or the first eval's UMAP import can outlast a stall_after of 2 s too."""
    return first(run_dir, ev.Activity, lambda e: e.stalled and e.what == "training" and e.step >= 1)


def rendered(table) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(table)
    return out.getvalue()


def test_a_held_loop_is_stalled_everywhere_then_running_again_then_completed(runs_dir, monkeypatch):
    hold = runs_dir / "hold"
    hold.touch()
    monkeypatch.setenv(HOLD_ENV, str(hold))  # the worker inherits it: it waits after step 1
    run_dir, proc, entry = start(runs_dir, "train.stall_after=2", steps=3, eval_every=1000)
    lines: list[str] = []

    def polled(predicate):
        lines.extend(entry.poll())
        return predicate()

    # 1. Held: the heartbeat thread lives on, the loop does not move.
    wait_for(lambda: polled(lambda: stalled_in_training(run_dir) and entry.status == "stalled"),
             timeout=180, what="the held loop marked stalled")
    meta = read_meta(run_dir)
    assert proc.poll() is None and pid_alive(meta.pid, meta.pid_start)  # alive: not crashed
    assert meta.status == "stalled" and effective_status(meta) == "stalled"
    assert [r.status for r in list_runs(runs_dir)] == ["stalled"]
    view = read_run(run_dir)
    assert (view.status, view.activity, view.step) == ("stalled", "training", 1)
    assert liveness(entry.view, meta) == "stalled"
    assert "stalled" in rendered(batch.summary_table([entry]))
    assert any(line.startswith("warning: no progress for ") and line.endswith(" s at step 1 (training)")
               for line in lines), lines
    assert summary_text(view).renderables[0].plain.startswith("stalled · training  step 1 / 3")
    assert run_prompt(list_runs(runs_dir)[0]).plain.startswith("◌ stalled")
    with pytest.raises(ValueError, match="still stalled"):  # a live worker: no second one on its run dir
        runner.resume(run_dir)
    with pytest.raises(batch.BadInput, match="still stalled"):
        batch.resume_batch(run_dir, io.StringIO())

    # 2. Released: the loop moves, the same worker says so, and finishes.
    hold.unlink()
    wait_for(lambda: polled(lambda: first(run_dir, ev.Log, lambda e: e.message.startswith("progress again"))),
             timeout=120, what="the loop marked as moving again")
    assert proc.wait(timeout=180) == 0
    entry.poll()
    assert entry.status == "completed" and read_meta(run_dir).status == "completed"
    assert any(line.startswith("running again at step") for line in lines + entry.poll()), lines
    activities = [e for e in events_of(run_dir) if isinstance(e, ev.Activity)]
    stall = activities.index(stalled_in_training(run_dir))
    assert activities[stall].idle_s >= 2.0 and not activities[stall + 1].stalled  # the next one: moving
    assert replay(events_of(run_dir)).status == "completed"


def test_a_long_eval_that_advances_its_sampler_is_not_stalled(runs_dir):
    # DDIM-100 of 16 labels: seconds on any CPU (the attention at 32 x 32 dominates a step), far
    # longer than stall_after = 2 s, while no single sampler step comes near it. The first eval of
    # a process also imports and JIT-loads UMAP (~7 s on a loaded 2-core box) with no sampler step
    # to mark, so it may show a stall of its own: the second eval (step 1) is the one judged.
    run_dir, proc, _ = start(runs_dir, "train.stall_after=2", "diffusion.T=100", "eval.ddim_steps=100",
                             steps=1, eval_every=1)
    assert proc.wait(timeout=420) == 0, (run_dir / "stderr.log").read_text()[-2000:]
    events = events_of(run_dir)
    judged = next(i for i, e in enumerate(events) if isinstance(e, ev.Activity) and e.what == "evaluating" and e.step == 1)
    result = next(e for e in events if isinstance(e, ev.Eval) and e.step == 1)
    assert result.sampler == "ddim-100" and result.eval_seconds > 2.0  # longer than stall_after
    assert not [e for e in events[judged:] if isinstance(e, ev.Activity) and e.stalled]
    assert read_meta(run_dir).status == "completed"
    # While the run moves, it is never silent much longer than stall_after (the heartbeat thread
    # says "still evaluating"), so a viewer with the events alone can tell a long eval from a hang.
    view = RunView()
    for event, after in zip(events, events[1:]):
        view = apply(view, event)
        if view.status == "running":
            assert after.time - event.time < 2 * 2.0, f"{after.time - event.time:.1f} s of silence after {event}"


def test_a_killed_stalled_worker_is_crashed_not_stalled(runs_dir, monkeypatch):
    hold = runs_dir / "hold"
    hold.touch()
    monkeypatch.setenv(HOLD_ENV, str(hold))
    run_dir, proc, entry = start(runs_dir, "train.stall_after=2", steps=3, eval_every=1000)
    wait_for(lambda: stalled_in_training(run_dir) and read_meta(run_dir).status == "stalled",
             timeout=180, what="the held loop marked stalled")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    meta = read_meta(run_dir)
    assert meta.status == "stalled"  # what the dead worker left behind
    assert effective_status(meta) == "crashed"
    assert [r.status for r in list_runs(runs_dir)] == ["crashed"]
    assert read_run(run_dir).status == "crashed"
    lines = entry.poll()
    assert entry.status == "crashed" and lines[-1].startswith("crashed: worker exited with code")


# -- the pieces: the config key, the event, the evaluator's progress hook --------------------------


def test_stall_after_must_be_a_positive_number_of_seconds():
    assert load_preset(PRESETS / "quick.toml").runs[0].config.train.stall_after == 300.0
    assert load_preset(PRESETS / "quick.toml", ["train.stall_after=2"]).runs[0].config.train.stall_after == 2.0
    for bad in ("0", "-5", '"soon"'):
        with pytest.raises(PresetError, match=r"train\.stall_after.*: expected a (positive number of seconds|number)"):
            load_preset(PRESETS / "quick.toml", [f"train.stall_after={bad}"])


def test_an_activity_event_round_trips_with_its_defaults():
    event = ev.Activity(step=7, what="evaluating", stalled=True, idle_s=31.5, segment=1, time=5.0)
    assert ev.decode(ev.encode(event)) == event
    assert ev.encode(event).startswith('{"v":1,"type":"activity",')
    minimal = ev.decode('{"v":1,"type":"activity","time":5,"step":7,"what":"training"}')
    assert (minimal.stalled, minimal.idle_s, minimal.segment) == (False, 0.0, 0)


def test_the_evaluator_marks_progress_at_every_sampler_step():
    import torch

    from labconsole.evaluate import Evaluator
    from model.train import build_model

    cfg = load_preset(PRESETS / "quick.toml", tiny(*CPU, "eval.ddim_steps=5")).runs[0].config
    marks: list[int] = []
    Evaluator(cfg, torch.device("cpu"), on_progress=lambda: marks.append(1))(0, build_model(cfg.model, 0, torch.device("cpu")))
    assert len(marks) == 5
