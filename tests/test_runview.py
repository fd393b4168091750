"""One run model: the reducer on crafted events, the events.jsonl readers, and the batch and the
console folding the same real events files (straight, growing, crashed, resumed) to the same view."""
from __future__ import annotations

import dataclasses
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from labconsole import batch, runner
from labconsole import events as ev
from labconsole.executors.local import LocalHandle
from labconsole.eventlog import EventTail, iter_events, read_events, reverse_events, reverse_lines
from labconsole.presets import load_preset
from labconsole.rundir import EventLog, Meta, read_meta
from labconsole.runview import MAX_WARNINGS, RunView, Segment, apply, liveness, replay, with_status
from runs_helpers import PRESETS, ROOT, tiny, wait_for
from test_app_helpers import make_eval


def started(segment: int = 0, start_step: int = 0, t: float = 1000.0) -> ev.RunStarted:
    return ev.RunStarted(run_id="r", preset="quick", config={"train": {"steps": 500}}, device="cpu", n_params=1,
                         start_step=start_step, segment=segment, time=t)


def train(step: int, t: float = 1000.0) -> ev.Train:
    return ev.Train(step=step, loss=0.5, lr=1e-3, images_per_s=100.0, time=t)


# -- the reducer ---------------------------------------------------------------------------------


def test_first_step_of_each_phase_is_its_first_eval():
    phases = ["A", "A", "B", "C", "B", "C"]
    view = replay([started()] + [make_eval(100 * k, 0.1 * k, p) for k, p in enumerate(phases)])
    assert view.first_steps == {"A": 0, "B": 200, "C": 300}
    assert view.first_step("C") == 300 and view.first_step("B") == 200
    assert replay([started()]).first_step("A") is None


def test_warnings_are_the_warning_and_error_logs_capped():
    logs = [ev.Log(level=("info", "warning", "error")[k % 3], message=str(k)) for k in range(300)]
    view = replay([started(), *logs])
    assert len(view.warnings) == MAX_WARNINGS and {w.level for w in view.warnings} == {"warning", "error"}
    # warnings are k = 1, 2, 4, 5, ..., 298, 299; the last 50 start at 226
    assert view.warnings[-1].message == "299" and view.warnings[0].message == "226"
    assert view.logs[-1].message == "299" and any(log.level == "info" for log in view.logs)


def test_a_resumed_segment_drops_the_evals_and_phases_of_the_abandoned_timeline():
    first = [started(), make_eval(0, 0.0, "A"), make_eval(100, 0.5, "B"),
             ev.PhaseChange(step=100, old="A", new="B", reason="b"), train(150), make_eval(200, 0.9, "C"),
             ev.PhaseChange(step=200, old="B", new="C", reason="c"), train(250)]  # then the worker died
    crashed = replay(first)
    assert crashed.first_step("C") == 200 and crashed.step == 250
    resumed = replay([started(segment=1, start_step=100, t=2000.0)], crashed)
    assert [e.step for e in resumed.evals] == [0, 100] and resumed.first_step("C") is None
    assert [p.new for p in resumed.phase_history] == ["B"] and resumed.phase == "B"
    assert resumed.step == 100 and resumed.start_step == 100 and resumed.status == "running"
    assert resumed.segments == (Segment(0, 0, 1000.0, "crashed"), Segment(1, 100, 2000.0, "running"))
    done = replay([make_eval(200, 0.7, "B"), ev.RunFinished(status="completed", step=200)], resumed)
    assert done.first_step("C") is None and done.latest.accuracy == 0.7
    assert [s.status for s in done.segments] == ["crashed", "completed"] and done.status == "completed"


def test_a_stopped_segment_keeps_its_status_when_the_run_resumes():
    view = replay([started(), train(50), ev.RunFinished(status="stopped", step=50), started(segment=1, start_step=50)])
    assert [s.status for s in view.segments] == ["stopped", "running"] and view.error == ""


def test_liveness_from_the_clock_alone():
    view = replay([started(t=1000.0), train(5, t=1010.0)])
    assert view.last_event == 1010.0
    assert liveness(view, now=1010.0 + 119) == "running"
    assert liveness(view, now=1010.0 + 121) == "stalled"
    assert liveness(view, now=1010.0 + 11, stalled_after=10) == "stalled"
    assert liveness(RunView(), now=5000.0) == "waiting"
    assert liveness(with_status(view, "crashed"), now=1011.0) == "crashed"
    finished = apply(view, ev.RunFinished(status="completed", step=5, time=1020.0))
    assert liveness(finished, now=1e9) == "completed"  # a finished run never goes stale
    with pytest.raises(ValueError, match="stalled_after"):
        liveness(view, now=1011.0, stalled_after=0)


def test_liveness_asks_the_run_dir_whether_the_worker_lives():
    now = time.time()
    view = replay([started(t=now - 5), train(5, t=now - 1)])
    elsewhere = Meta(run_id="r", host="another-host", heartbeat=now - 2)  # judged by its heartbeat
    assert liveness(view, elsewhere, now=now) == "running"
    assert liveness(view, elsewhere, now=now + 200) == "crashed"  # heartbeat too old: the worker is gone
    assert liveness(view, dataclasses.replace(elsewhere, status="stalled"), now=now) == "stalled"
    here = Meta(run_id="r", pid=os.getpid(), host=socket.gethostname())  # this very process: alive
    # While meta.json is there, the worker's own verdict counts, not the silence: a long eval is
    # silent, and a hung loop is marked "stalled" by the worker's heartbeat thread.
    assert liveness(view, here, now=now + 200) == "running"
    assert liveness(view, dataclasses.replace(here, status="stalled"), now=now) == "stalled"
    assert liveness(stalled_view(view), here, now=now) == "running"  # meta is written first: it is newer
    assert liveness(view, Meta(run_id="r", status="failed"), now=now) == "failed"  # meta ahead of the events
    assert liveness(RunView(), here, now=now) == "waiting"  # a live worker that has not started its run
    gone = Meta(run_id="r", status="stalled", pid=dead_pid(), host=socket.gethostname())
    assert liveness(stalled_view(view), gone, now=now) == "crashed"  # a dead stalled worker crashed


def stalled_view(view: RunView) -> RunView:
    return apply(view, ev.Activity(step=5, what="training", stalled=True, idle_s=40.0, time=view.last_event + 40))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_activity_events_fold_into_what_the_run_does_and_whether_it_moves():
    view = replay([started(t=1000.0), train(5, t=1001.0)])
    assert (view.activity, view.status) == ("", "running")
    view = apply(view, ev.Activity(step=5, what="evaluating", time=1002.0))
    assert (view.activity, view.status) == ("evaluating", "running")
    view = apply(view, ev.Activity(step=5, what="evaluating", stalled=True, idle_s=31.0, time=1033.0))
    assert (view.activity, view.status, view.last_event) == ("evaluating", "stalled", 1033.0)
    assert liveness(view, now=1e9) == "stalled"  # events alone: the stall stands, however long
    view = apply(view, ev.Activity(step=6, what="training", time=1040.0))
    assert (view.activity, view.status, view.step) == ("training", "running", 6)
    done = apply(view, ev.RunFinished(status="completed", step=6, time=1041.0))
    assert (done.activity, done.status) == ("", "completed")
    late = apply(done, ev.Activity(step=6, what="training", stalled=True, time=1042.0))
    assert late.status == "completed"  # a late activity never revives a finished run


def test_without_meta_silence_counts_after_twice_the_runs_stall_after():
    config = {"train": {"steps": 500, "stall_after": 30.0}}
    view = replay([ev.RunStarted(run_id="r", preset="quick", config=config, device="cpu", n_params=1, time=1000.0)])
    assert view.stall_after == 30.0
    # The worker emits at least once per stall_after while its process lives (events.Activity).
    assert liveness(view, now=1000.0 + 59) == "running"
    assert liveness(view, now=1000.0 + 61) == "stalled"
    assert liveness(view, now=1000.0 + 61, stalled_after=100) == "running"


def test_runview_and_eventlog_import_neither_torch_nor_textual():
    code = "import sys, labconsole.runview, labconsole.eventlog; print(sorted({'torch', 'textual'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the readers ---------------------------------------------------------------------------------


def lines_of(*events: ev.Event) -> bytes:
    return b"".join(ev.encode(e).encode() + b"\n" for e in events)


def test_a_torn_last_line_waits_and_a_corrupt_line_is_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.poll() == []  # no file yet: the worker has not written
    whole = lines_of(train(1), train(2))
    torn = ev.encode(train(3)).encode()
    path.write_bytes(whole + torn[:20])
    assert [e.step for e in tail.poll()] == [1, 2] and tail.offset == len(whole)
    assert [e.step for e in read_events(path)] == [1, 2]
    assert tail.poll() == []
    with open(path, "ab") as fh:  # the writer finishes the line, then writes garbage and one more
        fh.write(torn[20:] + b"\n" + b'{"v":1,"type":"tr\n' + lines_of(train(4)))
    assert [e.step for e in tail.poll()] == [3, 4] and tail.lines == 5
    assert [e.step for e in read_events(path)] == [1, 2, 3, 4]
    assert tail.offset == path.stat().st_size


def test_the_tail_follows_a_growing_file_from_any_line_boundary(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    with EventLog(path) as log:
        for burst in range(4):
            for k in range(burst + 1):
                log.append(train(10 * burst + k))
            assert [e.step for e in tail.poll()] == [10 * burst + k for k in range(burst + 1)]
        middle = log.size
        log.append(train(99))
    assert [e.step for e in EventTail(path, offset=middle).poll()] == [99]
    assert [e.step for e in iter_events(path, skip=8)] == [32, 33, 99]


def test_reverse_reads_whole_lines_over_chunk_boundaries_within_a_budget(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        for step in range(3000):
            log.append(train(step))
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"type":"train","st')  # torn last line
    lines = path.read_bytes().splitlines()[:-1]
    assert list(reverse_lines(path, 1 << 30)) == list(reversed(lines))
    assert [e.step for e in reverse_events(path, 1 << 30)][:3] == [2999, 2998, 2997]
    budget = list(reverse_lines(path, 1 << 16))
    assert 0 < len(budget) < len(lines) and budget == list(reversed(lines))[:len(budget)]


# -- the batch and the console on the same real events files ---------------------------------------


def console_settle(view: RunView, run_dir: Path) -> RunView:
    """What the console's ``RunMonitor.on_stream_ended`` does when the stream ends without a
    run_finished: the run dir's verdict (through the console's backend) becomes the status."""
    from labconsole.app.backend import Backend

    status = Backend().status(run_dir)
    return with_status(view, status) if view.status in ("waiting", "running") and status != "running" else view


class ConsoleFollower(threading.Thread):
    """The console's path (``RunMonitor``): ``stream.follow`` — the socket while the run is live,
    then the file — folded event by event by ``apply``; keeps the view after every event."""

    def __init__(self, run_dir: Path):
        super().__init__(daemon=True)
        self.run_dir, self.views = run_dir, []
        self.stop = threading.Event()
        self.watchdog = threading.Timer(240, self.stop.set)  # never hang a test run

    def run(self) -> None:
        from labconsole.stream import follow

        self.watchdog.start()
        view = RunView(run_id=self.run_dir.name)  # as RunMonitor.attach starts it
        for event in follow(self.run_dir, self.stop):
            view = apply(view, event)
            self.views.append(view)
        self.watchdog.cancel()

    def final(self) -> RunView:
        self.join(timeout=240)
        assert not self.is_alive() and self.views, "the console's follow did not end"
        return console_settle(self.views[-1], self.run_dir)


def console_view(run_dir: Path) -> RunView:
    follower = ConsoleFollower(run_dir)
    follower.start()
    return follower.final()


def same(a: RunView, b: RunView) -> bool:
    # repr, not ==: an undefined figure (e.g. R² of a constant axis) is NaN, and NaN != NaN.
    return repr(a) == repr(b)


def summary_text(entry: batch.RunEntry) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(batch.summary_table([entry]))
    return out.getvalue()


def assert_same_run(entry: batch.RunEntry, console: RunView) -> None:
    assert same(entry.view, console), f"batch:   {entry.view}\nconsole: {console}"
    twin = batch.RunEntry(entry.label, entry.setting, view=console, run_dir=entry.run_dir)
    assert summary_text(entry) == summary_text(twin)
    meta = read_meta(entry.run_dir)
    assert liveness(entry.view, meta) == liveness(console, meta)


def test_batch_and_console_agree_on_a_straight_run(runs_dir):
    preset = load_preset(PRESETS / "quick.toml", tiny(steps=12, eval_every=6))
    out = io.StringIO()
    run = batch.preset_batch(preset, runs_dir, 1, out)
    assert run.run() == batch.EXIT_OK, out.getvalue()
    entry = run.runs[0]
    assert entry.status == "completed" and [e.step for e in entry.view.evals] == [0, 6, 12]
    assert "completed at step 12" in out.getvalue()
    assert_same_run(entry, console_view(entry.run_dir))


def test_batch_and_console_agree_while_growing_after_a_crash_and_after_the_resume(runs_dir):
    # Evals every 4 steps, checkpoints every 6: the worker is killed after an eval past its last
    # checkpoint (8 > 6), so the resumed segment replaces a timeline the first one had begun.
    spec = load_preset(PRESETS / "quick.toml", tiny(steps=24, eval_every=4, checkpoint_every=6)).runs[0]
    run_dir = runner.create_run(spec, "quick", runs_dir)
    proc = runner.spawn(run_dir)
    runner.wait_live(run_dir, proc)
    entry = batch.RunEntry(label=spec.label, setting=spec.setting, steps=24)
    entry.launch(run_dir, LocalHandle(proc))
    follower = ConsoleFollower(run_dir)
    follower.start()

    # 1. Still running: the file grows while both read it; the batch's view after n events is
    #    the console's after the same n.
    seen: dict[int, RunView] = {}

    def past_checkpoint() -> bool:
        entry.poll()
        if proc.poll() is None and entry.tail.lines:
            seen[entry.tail.lines] = entry.view
            assert liveness(entry.view, read_meta(run_dir), now=entry.view.last_event + 1) == "running"
            # The worker lives and its loop moves: silence alone never makes it stalled while
            # meta.json is at hand; without it, twice train.stall_after of silence does.
            assert liveness(entry.view, read_meta(run_dir), now=entry.view.last_event + 1000) == "running"
            assert liveness(entry.view, now=entry.view.last_event + 2 * entry.view.stall_after + 1) == "stalled"
        v = entry.view
        return v.last_checkpoint is not None and v.latest is not None and v.latest.step > v.last_checkpoint

    wait_for(past_checkpoint, timeout=240, what="an eval past the first checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(seen) >= 3, "the file was read fewer than three times while it grew"

    # 2. Crashed: the worker is gone without a run_finished.
    lines = entry.poll()
    assert entry.status == "crashed" and lines[-1].startswith("crashed: worker exited with code")
    crashed = follower.final()
    for n, view in seen.items():
        assert same(view, follower.views[n - 1]), f"after {n} events"
    assert_same_run(entry, crashed)
    killed_at = max(e.step for e in crashed.evals)

    # 3. Resumed (two segments): the batch resumes, the console attaches afterwards.
    out = io.StringIO()
    resumed = batch.resume_batch(run_dir, out)
    assert resumed.run() == batch.EXIT_OK, out.getvalue()
    r = resumed.runs[0]
    assert [(s.index, s.status) for s in r.view.segments] == [(0, "crashed"), (1, "completed")]
    start = r.view.segments[1].start_step
    assert start < killed_at  # the first segment had evaluated past the checkpoint it resumed from
    assert all(e.segment == 1 for e in r.view.evals if e.step > start)  # that timeline was dropped
    assert_same_run(r, console_view(run_dir))
