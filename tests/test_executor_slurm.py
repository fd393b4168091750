"""``--executor slurm`` end to end with submitit's local executor (no SLURM here: the
LABCONSOLE_SLURM_CLUSTER=local test hook), real batches and real workers on tiny runs.

What the local executor cannot show: a real job array, sbatch/sacct/scancel, requeueing through
scontrol, or SLURM signalling every process of a job step; the preemption test sends submitit's
signal to the job and its worker, as SLURM's ``--signal`` does.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from labconsole import events as ev
from labconsole import runner
from labconsole.batch import Batch
from labconsole.executors import Launch
from labconsole.presets import load_preset
from labconsole.runentry import RunEntry
from labconsole.rundir import pid_alive, read_meta
from labconsole.worker import HOLD_ENV
from runs_helpers import PRESETS, ROOT, events_of, first, labconsole, set_args, tiny, wait_for

pytest.importorskip("submitit")
from labconsole.executors.slurm import SlurmExecutor  # noqa: E402 - after the skip: it imports submitit

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals and /proc")

QUICK = str(PRESETS / "quick.toml")
TIMEOUT = 240  # generous: the box may be busy with other work
HOLD = Path(tempfile.gettempdir()) / f"labconsole-slurm-hold-{os.getpid()}"  # see the hold fixture


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs dir, the local-cluster hook in the environment, and, at the end, every process still
    running for this test (batch, submitit controller, job, worker: all name the dir) killed."""
    monkeypatch.setenv("LABCONSOLE_SLURM_CLUSTER", "local")
    yield tmp_path
    for pid in _processes_naming(tmp_path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _processes_naming(path: Path) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if (str(path) + os.sep).encode() in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if (p / "meta.json").exists())


def cli_args(runs: Path, *overrides: str, **shrink) -> list[str]:
    """``labconsole --batch`` of the quick preset, shrunk (``tiny``), through the slurm executor."""
    return ["--batch", QUICK, *set_args(tiny(*overrides, **shrink)), "--runs-dir", str(runs), "--executor", "slurm", "--no-figures"]


def finished(run_dir: Path) -> list[ev.RunFinished]:
    return [e for e in events_of(run_dir) if isinstance(e, ev.RunFinished)]


def test_a_sweep_runs_as_one_array_to_completion(runs):
    # --jobs 2: the batch launches at most --jobs runs at once, even for an executor of capacity None
    args = cli_args(runs, "sweep.seeds=[0,1]", steps=4, eval_every=4, checkpoint_every=4, seeds=False)
    result = labconsole(*args, "--jobs", "2", cwd=runs, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dirs = run_dirs(runs)
    assert len(dirs) == 2 and all(read_meta(d).status == "completed" for d in dirs)
    jobs = [json.loads((d / "slurm.json").read_text()) for d in dirs]
    assert sorted(j["array"]["index"] for j in jobs) == [0, 1] and {j["array"]["size"] for j in jobs} == {2}
    assert all(j["job_id"] and Path(j["stdout"]).exists() for j in jobs)
    assert all(f"slurm job {j['job_id']}" in result.stdout for j in jobs)


def in_process_batch(runs: Path, n: int, **shrink) -> Batch:
    """A batch of ``n`` runs of the quick preset (seeds 0..n-1), shrunk, launched together through the
    slurm executor: the batch's own code in this process, without a sweep (so no report to draw)."""
    seeds = f"sweep.seeds=[{','.join(map(str, range(n)))}]"
    specs = load_preset(QUICK, tiny(seeds, seeds=False, **shrink)).runs

    def starter(spec):
        return lambda gpu: Launch(runner.create_run(spec, "quick", runs), gpu=gpu)

    entries = [(RunEntry(label=s.label, setting=s.setting, steps=s.config.train.steps, seed=s.config.train.seed),
                starter(s)) for s in specs]
    return Batch("quick", entries, n, io.StringIO(), executor=SlurmExecutor(cluster="local"))


def alongside(batch: Batch, action) -> tuple[int, str]:
    """Run ``batch`` here while ``action`` runs in a thread (what a test does to its jobs); the
    batch's exit code and output. The action's failure fails the test, and always releases the hold."""
    failed = []

    def act():
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            failed.append(exc)
            for entry in batch.runs:  # do not leave the batch waiting on a held worker
                if entry.handle is not None:
                    entry.handle.stop()
        finally:
            HOLD.unlink(missing_ok=True)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    code = batch.run()
    thread.join(timeout=TIMEOUT)
    if failed:
        raise failed[0]
    return code, batch.console.file.getvalue()


def run_dir_of(runs: Path) -> Path:
    return wait_for(lambda: (run_dirs(runs) or [None])[0], timeout=TIMEOUT, what="the run dir")


def hold_after_checkpoint(runs: Path) -> Path:
    """The run's dir once its worker has a checkpoint and waits (the test hook) after a later step."""
    run_dir = run_dir_of(runs)
    wait_for(lambda: first(run_dir, ev.Checkpoint), timeout=TIMEOUT, what="a first checkpoint")
    HOLD.touch()  # the worker now waits after its next step, mid-run
    return run_dir


@pytest.fixture
def hold(runs, monkeypatch):
    """The worker test hook: while HOLD exists, a worker (started after this) waits after each step."""
    monkeypatch.setenv(HOLD_ENV, str(HOLD))
    HOLD.unlink(missing_ok=True)
    yield HOLD
    HOLD.unlink(missing_ok=True)


def test_preemption_checkpoints_requeues_and_resumes(runs, hold):
    # The executor alone: the batch takes a segment that ends "stopped" for the run's end, and would
    # stop following a run whose job requeues itself (RunEntry.active).
    spec = load_preset(QUICK, tiny(steps=6, eval_every=6, checkpoint_every=6)).runs[0]
    hold.touch()  # the worker waits after its first step, mid-run
    (handle,) = SlurmExecutor(cluster="local").launch([Launch(runner.create_run(spec, "quick", runs))])
    run_dir = run_dir_of(runs)
    wait_for(lambda: first(run_dir, ev.Train), timeout=TIMEOUT, what="a first step")
    before = _lines(run_dir)
    worker = read_meta(run_dir).pid
    for pid in (_parent(worker), worker):  # SLURM's --signal reaches every process of the job step
        os.kill(pid, signal.SIGUSR2)
    wait_for(lambda: finished(run_dir), timeout=60, what="segment 0 to stop")
    assert handle.poll() is None  # the job lives on: requeued
    hold.unlink()
    assert wait_for(lambda: handle.poll() is not None, timeout=TIMEOUT, what="the job to end") and handle.poll() == 0
    meta = read_meta(run_dir)
    assert meta.status == "completed" and meta.segment == 1 and meta.pid != worker
    stops = finished(run_dir)
    assert [(e.segment, e.status) for e in stops] == [(0, "stopped"), (1, "completed")]
    after = _lines(run_dir)
    assert after[:len(before)] == before and len(after) > len(before)
    resumed = [e for e in events_of(run_dir) if isinstance(e, ev.RunStarted)][1]
    assert resumed.start_step == stops[0].step > 0  # from the checkpoint the preemption wrote
    record = json.loads((run_dir / "slurm.json").read_text())
    assert "Requeued" in Path(record["stdout"]).read_text() and record["earlier_jobs"] == []


def test_a_killed_worker_is_retried_from_its_checkpoint(runs, hold):
    batch = in_process_batch(runs, 1, steps=20, eval_every=20, checkpoint_every=2)
    seen = {}

    def kill():
        run_dir = seen["run_dir"] = hold_after_checkpoint(runs)
        seen["job"] = json.loads((run_dir / "slurm.json").read_text())["job_id"]
        os.kill(read_meta(run_dir).pid, signal.SIGKILL)
        wait_for(lambda: read_meta(run_dir).segment == 1, timeout=TIMEOUT, what="the retry's worker")

    code, out = alongside(batch, kill)
    run_dir = seen["run_dir"]
    assert code == 0 and "retry 1 of 2" in out and read_meta(run_dir).status == "completed", out
    resumed = [e for e in events_of(run_dir) if isinstance(e, ev.RunStarted)][1]
    assert resumed.start_step > 0  # from its latest checkpoint, not from scratch
    record = json.loads((run_dir / "slurm.json").read_text())
    assert record["earlier_jobs"] == [seen["job"]] and record["job_id"] != seen["job"]


def test_ctrl_c_stops_both_runs_with_a_checkpoint_and_no_requeue(runs):
    batch = in_process_batch(runs, 2, steps=100000, eval_every=100000, checkpoint_every=100000)

    def ctrl_c():
        wait_for(lambda: len(run_dirs(runs)) == 2 and all(first(d, ev.Train) for d in run_dirs(runs)),
                 timeout=TIMEOUT, what="both runs training")
        os.kill(os.getpid(), signal.SIGINT)  # the batch's handler: stop every job (scancel)

    code, out = alongside(batch, ctrl_c)
    assert code == 130, out
    for run_dir in run_dirs(runs):
        (stop,) = finished(run_dir)
        assert stop.status == "stopped" and (run_dir / "checkpoints" / f"step-{stop.step:07d}.pt").exists()
        meta = read_meta(run_dir)
        assert meta.status == "stopped" and meta.segment == 0
        wait_for(lambda: not pid_alive(meta.pid, meta.pid_start), timeout=60, what="the worker to exit")
        assert "Requeued" not in Path(json.loads((run_dir / "slurm.json").read_text())["stdout"]).read_text()
    assert all(r.status == "stopped" for r in batch.runs), out
    wait_for(lambda: not _processes_naming(runs), timeout=30, what="every job to end")  # none restarted


def _python(code: str, runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=runs, capture_output=True, text=True, env=env, timeout=120)


def test_without_submitit_the_cli_says_how_to_install_it(runs):
    code = ("import sys; sys.modules['submitit'] = None\n"  # import submitit now raises ImportError
            "from labconsole.cli import main\n"
            f"sys.exit(main(['--batch', {QUICK!r}, '--executor', 'slurm', '--runs-dir', {str(runs / 'r')!r}]))")
    result = _python(code, runs)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "labconsole: error: --executor slurm: the submitit package is not installed; "
        "install it with: pip install 'labconsole[slurm]'"]
    assert not (runs / "r").exists()


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has SLURM")
def test_without_slurm_the_cli_says_so_and_starts_nothing(runs, monkeypatch):
    monkeypatch.delenv("LABCONSOLE_SLURM_CLUSTER")
    result = labconsole("--batch", QUICK, "--executor", "slurm", "--runs-dir", str(runs / "r"), cwd=runs)
    assert result.returncode == 2 and "no SLURM here" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (runs / "r").exists()


def _lines(run_dir: Path) -> list[str]:
    text = (run_dir / "events.jsonl").read_text()
    return text[:text.rfind("\n") + 1].splitlines()  # whole lines only


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2:].split()[1])
