"""The worker as a real subprocess: crash, resume, graceful stop, NaN — nothing on disk is lost."""
from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest

from labconsole import events as ev
from labconsole import runner
from labconsole.presets import load_preset
from labconsole.rundir import LIVE, Meta, effective_status, list_runs, read_meta, write_meta
from labconsole.samples import read_samples
from runs_helpers import PRESETS, events_of, first, labconsole, tiny, wait_for


def start_quick(runs_dir: Path, *extra: str, steps: int = 150) -> tuple[Path, object]:
    """A tiny quick run, long enough to be interrupted; checkpoints every 5 steps."""
    spec = load_preset(PRESETS / "quick.toml", tiny(*extra, steps=steps, eval_every=200, checkpoint_every=5)).runs[0]
    run_dir = runner.create_run(spec, "quick", runs_dir)
    proc = runner.spawn(run_dir)
    runner.wait_live(run_dir, proc)
    return run_dir, proc


def test_sigkill_is_reported_crashed_and_resume_continues_in_a_new_segment(runs_dir):
    # 40 steps: killed at its first checkpoint (step 5), the resume trains the rest (~0.2 s a step)
    run_dir, proc = start_quick(runs_dir, steps=40)
    wait_for(lambda: first(run_dir, ev.Checkpoint), what="a first checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    assert effective_status(read_meta(run_dir)) == "crashed"
    assert [r.status for r in list_runs(runs_dir)] == ["crashed"]
    before = (run_dir / "events.jsonl").read_bytes()
    checkpoints_before = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").glob("*.pt")}
    last_ckpt = max(e.step for e in events_of(run_dir) if isinstance(e, ev.Checkpoint))

    result = labconsole("--batch", "--resume", str(run_dir), cwd=runs_dir)
    assert result.returncode == 0, result.stderr
    after = (run_dir / "events.jsonl").read_bytes()
    assert after.startswith(before.rstrip(b"\n"))  # nothing earlier rewritten (a torn line may be closed)
    resumed = [e for e in events_of(run_dir) if isinstance(e, ev.RunStarted)]
    assert [(e.segment, e.start_step) for e in resumed] == [(0, 0), (1, last_ckpt)]
    seg1 = [e for e in events_of(run_dir) if e.segment == 1]
    assert all(e.step > last_ckpt for e in seg1 if isinstance(e, ev.Train))
    assert isinstance(seg1[-1], ev.RunFinished) and seg1[-1].status == "completed" and seg1[-1].step == 40
    for name, data in checkpoints_before.items():  # earlier checkpoints untouched
        assert (run_dir / "checkpoints" / name).read_bytes() == data
    assert read_meta(run_dir).status == "completed" and read_meta(run_dir).segment == 1

    # What the typed seams carried: the start line, where each eval read layer 4, its samples file.
    assert resumed[0].device == "cpu (1 threads, fp32)"
    evals = [e for e in events_of(run_dir) if isinstance(e, ev.Eval)]
    assert [(e.segment, e.step) for e in evals] == [(0, 0), (1, 40)]
    for e in evals:  # tiny(): DDIM-3 of T = 50 visits 49, 24 (or 25), 0; eval.capture_t = 0
        assert (e.sampler, e.capture, e.capture_t, e.n_samples, e.n_ood, e.umap_seed) == ("ddim-3", "block", 0, 8, 0, 0)
        samples = read_samples(run_dir / e.samples_path, e.step)
        assert len(samples) == e.n_samples + e.n_ood and samples.images.shape[1:] == (32, 32)
    assert all((run_dir / e.path).is_file() for e in events_of(run_dir) if isinstance(e, ev.Checkpoint))


def test_sigterm_stops_gracefully_with_a_final_checkpoint(runs_dir):
    run_dir, proc = start_quick(runs_dir)
    wait_for(lambda: first(run_dir, ev.Train, lambda e: e.step >= 3), what="training to start")
    assert runner.stop(run_dir)
    assert proc.wait(timeout=60) == 0
    finished = events_of(run_dir)[-1]
    assert isinstance(finished, ev.RunFinished) and finished.status == "stopped"
    assert (run_dir / "checkpoints" / f"step-{finished.step:07d}.pt").exists()
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == f"step-{finished.step:07d}.pt"
    assert effective_status(read_meta(run_dir)) == "stopped"
    assert not runner.stop(run_dir)  # nothing left to stop


def test_nan_loss_fails_clearly_and_keeps_the_last_good_checkpoint(runs_dir):
    run_dir, proc = start_quick(runs_dir)
    wait_for(lambda: first(run_dir, ev.Checkpoint), what="a first checkpoint")
    runner.stop(run_dir)
    proc.wait(timeout=60)
    good = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").glob("*.pt")}
    # The resumed segment trains with an absurd learning rate: its loss overflows.
    config = run_dir / "config.toml"
    config.write_text(config.read_text().replace("lr = 0.003", "lr = 1e30").replace("grad_clip = 1.0", "grad_clip = 0.0"))

    result = labconsole("--batch", "--resume", str(run_dir), cwd=runs_dir)
    assert result.returncode == 1
    assert "loss became nan" in result.stdout
    finished = events_of(run_dir)[-1]
    assert isinstance(finished, ev.RunFinished) and finished.status == "failed" and "nan" in finished.error
    assert read_meta(run_dir).status == "failed"
    now = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").glob("*.pt")}
    assert now == good  # no checkpoint written after the NaN; the good ones intact


def test_resume_refuses_a_running_or_completed_run(runs_dir):
    run_dir, proc = start_quick(runs_dir)
    result = labconsole("--batch", "--resume", str(run_dir), cwd=runs_dir)
    assert result.returncode == 2 and "still running" in result.stderr
    runner.stop(run_dir)
    proc.wait(timeout=60)
    with pytest.raises(ValueError, match="not a run directory"):
        runner.resume(runs_dir)


def test_stop_leaves_a_run_on_another_host_alone(tmp_path):
    # A run on a shared filesystem, live by its heartbeat, whose pid is one on this host (ours):
    # the pid means nothing here, so stop() signals nothing and says so (False).
    meta = dataclasses.replace(Meta.for_this_process("20261203T000000Z-quick-abcdef", "quick"), host="another-node")
    write_meta(tmp_path, meta)
    assert effective_status(read_meta(tmp_path)) in LIVE and read_meta(tmp_path).heartbeat <= time.time()
    assert not runner.stop(tmp_path)  # had it signalled our pid, SIGTERM would have ended this test
