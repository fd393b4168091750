"""The executor seam (``labconsole.executors``) with the local executor: choosing one, its bad
input, and the batch's retries — a SIGKILLed worker resumed from its checkpoint, through the real CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from labconsole import events as ev
from labconsole.executors import ExecutorError, Launch, make
from labconsole.executors.local import LocalExecutor
from labconsole.rundir import read_meta
from runs_helpers import PRESETS, ROOT, events_of, labconsole, popen_labconsole, set_args, tiny, wait_for


def test_make_names_what_is_allowed():
    assert isinstance(make("local"), LocalExecutor)
    with pytest.raises(ExecutorError, match="expected one of local, slurm, ray, got 'kube'"):
        make("kube")
    with pytest.raises(ExecutorError, match="--ray-address: only with --executor ray"):
        make("local", {"ray_address": "10.0.0.1:6379"})
    with pytest.raises(ExecutorError, match="--slurm-time: only with --executor slurm"):
        make("ray", {"slurm_time": 60})


@pytest.mark.parametrize("args, says", [
    (["--executor", "kube"], "--executor: expected one of local, slurm, ray"),
    (["--ray-address", "x:1"], "--ray-address: only with --executor ray"),
    (["--retries", "-1"], "--retries: expected 0 or more, got -1"),
])
def test_bad_executor_input_is_one_line_and_exit_2(args, says, tmp_path):
    result = labconsole("--batch", str(PRESETS / "quick.toml"), *args, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # nothing made before the input was checked


def test_the_batch_process_imports_neither_ray_nor_submitit_unless_asked():
    code = ("import sys; from labconsole import batch, cli; from labconsole.executors import make; make('local'); "
            "print(sorted(m for m in ('ray', 'submitit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_local_handles_report_the_exit_code_and_stop_with_a_checkpoint(runs_dir):
    from labconsole import runner
    from labconsole.presets import load_preset

    spec = load_preset(PRESETS / "quick.toml", tiny(steps=4000, eval_every=2000, checkpoint_every=2000)).runs[0]
    run_dir = runner.create_run(spec, "quick", runs_dir)
    (handle,) = LocalExecutor().launch([Launch(run_dir)])
    assert handle.where == f"pid {handle.proc.pid}" and handle.poll() is None
    wait_for(lambda: read_meta(run_dir).step >= 3, what="a few steps")
    handle.stop()
    wait_for(lambda: handle.poll() is not None, timeout=120, what="the worker to stop")  # None while alive
    assert handle.poll() == 0 and read_meta(run_dir).status == "stopped"
    assert (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())


def test_a_killed_worker_is_retried_from_its_checkpoint_with_its_events_intact(runs_dir):
    # Checkpoints every 10 steps; the worker is killed past its first checkpoint. --retries 1:
    # the batch resumes it (a new segment) and the sweep ends completed, exit 0. 60 steps: at 30 the
    # first segment once ended before the kill landed (meta.json's step lags the worker's).
    args = set_args(tiny(steps=60, eval_every=60, checkpoint_every=10))
    batch = popen_labconsole("--batch", str(PRESETS / "quick.toml"), *args, "--runs-dir", str(runs_dir),
                             "--retries", "1", "--no-figures", cwd=runs_dir)
    run_dir = wait_for(lambda: next((p for p in runs_dir.iterdir() if p.is_dir() and p.name != "sweeps"), None),
                       what="the run dir")
    wait_for(lambda: (run_dir / "checkpoints" / "step-0000010.pt").exists() and read_meta(run_dir).step >= 14,
             timeout=180, what="a checkpoint and a few steps past it")
    before = (run_dir / "events.jsonl").read_text().splitlines()
    os.kill(read_meta(run_dir).pid, signal.SIGKILL)
    out, err = batch.communicate(timeout=300)
    assert batch.returncode == 0, out[-3000:] + err[-3000:]
    assert "crashed" in out and "retry 1 of 1: resuming from its latest checkpoint" in out
    after = (run_dir / "events.jsonl").read_text().splitlines()
    assert after[:len(before)] == before  # what the first segment wrote stays as written
    meta = read_meta(run_dir)
    assert meta.status == "completed" and meta.segment == 1
    starts = [e for e in events_of(run_dir) if isinstance(e, ev.RunStarted)]
    assert len(starts) == 2 and starts[1].start_step >= 10  # the second segment began at a checkpoint, not at 0


def test_without_retries_a_killed_worker_stays_crashed(runs_dir):
    args = set_args(tiny(steps=60, eval_every=60, checkpoint_every=10))
    batch = popen_labconsole("--batch", str(PRESETS / "quick.toml"), *args, "--runs-dir", str(runs_dir), "--no-figures",
                             cwd=runs_dir)
    run_dir = wait_for(lambda: next((p for p in runs_dir.iterdir() if p.is_dir() and p.name != "sweeps"), None),
                       what="the run dir")
    wait_for(lambda: (run_dir / "meta.json").exists() and read_meta(run_dir).step >= 3, timeout=180, what="a few steps")
    time.sleep(0.2)
    os.kill(read_meta(run_dir).pid, signal.SIGKILL)
    out, err = batch.communicate(timeout=300)
    assert batch.returncode == 1, out[-3000:] + err[-3000:]
    assert "crashed: worker exited with code -9 (pid" in out and "retry" not in out
