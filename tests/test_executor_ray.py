"""``--executor ray`` on a real local Ray: a sweep as Ray tasks through the CLI, with a killed
worker (retried by the batch from its checkpoint) and a lost task process (its worker checkpoints,
Ray retries the task); a stop that checkpoints every run; GPU shares; the one line without Ray.

Each ``labconsole --batch --executor ray`` starts (and shuts down) its own local Ray; the GPU test
drives the executor in-process on a Ray of 2 CPUs and 2 stand-in GPUs, started last.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labconsole import events as ev
from labconsole import runner
from labconsole import sweep as sweeps
from labconsole.executors import Launch
from labconsole.executors.ray import RayExecutor, start_local_ray  # imports without Ray: RayExecutor needs it
from labconsole.presets import load_preset
from labconsole.rundir import pid_alive, read_meta
from labconsole.worker import HOLD_ENV
from runs_helpers import PRESETS, ROOT, events_of, first, labconsole, popen_labconsole, set_args, tiny, wait_for

ray = pytest.importorskip("ray")  # the ray extra (in the test extra too)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG and /proc: Linux")

CPU = ("train.device=cpu",)  # the stand-in GPUs below are not real: the workers train on the CPU
TWO_SEEDS = ("sweep.seeds=[0,1]",)


@pytest.fixture
def runs(tmp_path: Path):
    """A runs directory; a worker still alive under it at the end is killed by its pid (a worker
    attached to a Ray task leads no process group of its own)."""
    yield tmp_path
    for pid in worker_pids(tmp_path):
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def worker_pids(runs: Path) -> set[int]:
    """The pid of every worker segment that ran under ``runs`` (from the events and meta.json)."""
    pids = {e.pid for meta in runs.rglob("meta.json") for e in events_of(meta.parent) if isinstance(e, ev.RunStarted)}
    return pids | {read_meta(meta.parent).pid for meta in runs.rglob("meta.json")} - {0}


def sweep_runs(runs: Path, n: int = 2) -> list[Path]:
    """The run dirs of the one sweep under ``runs``, in sweep order, once all ``n`` are recorded."""
    def recorded() -> list[Path] | None:
        # the sweep dir exists a moment before its manifest: wait for sweep.json, not the dir
        found = [p.parent for p in (runs / "sweeps").glob("*/sweep.json")]
        paths = [sweeps.load(found[0]).run_path(i) for i in range(n)] if found else []
        return paths if paths and all(paths) else None

    return wait_for(recorded, timeout=120, what="the sweep's run dirs")


def complete_lines(path: Path) -> list[str]:
    """The lines of ``path`` written whole so far (a line being written has no newline yet)."""
    lines = path.read_text().splitlines(keepends=True)
    return [line for line in lines if line.endswith("\n")]


def finished(run_dir: Path) -> ev.RunFinished | None:
    ends = [e for e in events_of(run_dir) if isinstance(e, ev.RunFinished)]
    return ends[-1] if ends else None


def task_process_of(worker: int) -> int:
    """The Ray worker process running a run's task: the parent of the run's (attached) worker."""
    parent = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert "ray::" in Path(f"/proc/{parent}/cmdline").read_text()  # Ray names its workers ray::<task>
    return parent


def batch(*args: str, runs: Path) -> subprocess.Popen:
    """``labconsole --batch`` of the quick preset on a local Ray (every run launched at once)."""
    return popen_labconsole("--batch", str(PRESETS / "quick.toml"), *args, "--executor", "ray",
                            "--runs-dir", str(runs), "--no-figures", cwd=runs)


def communicate(proc: subprocess.Popen, timeout: float = 240) -> str:
    """The batch's output once it ends; after ``timeout`` it is killed (its local Ray with it)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the batch did not end within {timeout:.0f} s: {(out + err)[-3000:]}") from None
    return out + err


# -- through the CLI ---------------------------------------------------------------------------------


def test_a_ray_sweep_completes_through_a_killed_worker_and_a_lost_task_process(runs, monkeypatch):
    """Seed 0's worker is killed: its task ends, the batch resumes the run from its checkpoint.
    Seed 1's task process is killed: its worker checkpoints (SIGTERM on its parent's death), and
    Ray retries the task, which resumes the run; the batch follows it through. Both complete."""
    hold = runs / "hold"
    hold.touch()
    monkeypatch.setenv(HOLD_ENV, str(hold))  # the workers inherit it (through Ray): they wait after a step
    args = set_args(tiny(*CPU, *TWO_SEEDS, seeds=False, steps=12, eval_every=12, checkpoint_every=1))
    proc = batch(*args, runs=runs)
    try:
        killed, lost = sweep_runs(runs)
        for run_dir in (killed, lost):
            wait_for(lambda: first(run_dir, ev.Train), timeout=180, what=f"{run_dir.name} at step 1")
        hold.unlink()  # on to step 1's checkpoint, then held again a step or so later: killed mid-run
        saved = wait_for(lambda: first(killed, ev.Checkpoint), timeout=60, what="seed 0's first checkpoint")
        hold.touch()
        before = complete_lines(killed / "events.jsonl")
        os.kill(read_meta(killed).pid, signal.SIGKILL)
        worker = read_meta(lost).pid
        task = task_process_of(worker)
        # Not a group of its own: Ray would kill the group (SIGTERM, SIGKILL 200 ms later) when the
        # task process dies, the worker with it, before a slow stop (a step, an eval) checkpoints.
        assert os.getpgid(task) != task
        environ = b"\0" + Path(f"/proc/{worker}/environ").read_bytes()
        assert b"\0CUDA_VISIBLE_DEVICES=\0" in environ  # a run that asked for no GPU sees none
        os.kill(task, signal.SIGKILL)
        stopped = wait_for(lambda: finished(lost), timeout=120, what="seed 1's worker to stop")
        wait_for(lambda: not pid_alive(worker), timeout=60, what="seed 1's worker to end")  # not left orphaned
        hold.unlink()
    except BaseException:
        proc.kill()  # its runs may be held for good: no waiting for it
        raise
    finally:
        out = communicate(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "[seed=0] retry 1 of 2: resuming from its latest checkpoint" in out and "(ray task " in out
    assert "[seed=1] retry" not in out  # Ray retried seed 1's task itself
    for run_dir in (killed, lost):
        assert read_meta(run_dir).status == "completed" and finished(run_dir).step == 12
        assert read_meta(run_dir).segment == 1
    (resumed,) = [e for e in events_of(killed) if isinstance(e, ev.RunStarted) and e.segment == 1]
    assert resumed.start_step >= saved.step == 1  # from its checkpoint, not from step 0
    assert complete_lines(killed / "events.jsonl")[:len(before)] == before  # what was written stays
    assert stopped.status == "stopped" and (lost / "checkpoints" / f"step-{stopped.step:07d}.pt").exists()
    (again,) = [e for e in events_of(lost) if isinstance(e, ev.RunStarted) and e.segment == 1]
    assert again.start_step == stopped.step and again.pid != worker


def test_a_stop_checkpoints_every_ray_run_and_the_sweep_resumes_locally(runs, monkeypatch):
    hold = runs / "hold"
    hold.touch()
    monkeypatch.setenv(HOLD_ENV, str(hold))  # the workers inherit it (through Ray): they wait after step 1
    args = set_args(tiny(*CPU, *TWO_SEEDS, seeds=False, steps=3, eval_every=3, checkpoint_every=3))
    proc = batch(*args, runs=runs)
    try:
        dirs = sweep_runs(runs)
        for run_dir in dirs:
            wait_for(lambda: first(run_dir, ev.Train), timeout=180, what=f"{run_dir.name} at step 1")
        proc.send_signal(signal.SIGINT)  # the batch calls stop() on every handle: ray.cancel
    except BaseException:
        proc.kill()  # its runs are held for good: no waiting for it
        raise
    finally:
        out = communicate(proc, timeout=180)
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted: 2 run(s) asked to checkpoint and stop" in out, out[-3000:]
    for run_dir in dirs:
        end = finished(run_dir)
        assert end is not None and end.status == "stopped" and read_meta(run_dir).status == "stopped", out[-3000:]
        assert (run_dir / "checkpoints" / f"step-{end.step:07d}.pt").exists()
    assert not [pid for pid in worker_pids(runs) if pid_alive(pid)]  # cancelled tasks leave no worker
    hold.unlink()
    sweep = next((runs / "sweeps").iterdir())
    result = labconsole("--batch", "--resume", str(sweep), "--jobs", "2", "--no-figures", cwd=runs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [read_meta(d).status for d in dirs] == ["completed", "completed"]
    assert [read_meta(d).segment for d in dirs] == [1, 1]
    assert not [pid for pid in worker_pids(runs) if pid_alive(pid)]  # no worker left behind


def test_without_ray_installed_the_cli_says_how_to_install_it(tmp_path):
    # ray is installed here: hide it, as an environment without the extra would.
    code = ("import sys; sys.modules['ray'] = None\n"
            "from labconsole.cli import main\n"
            f"sys.exit(main(['--batch', {str(PRESETS / 'quick.toml')!r}, '--executor', 'ray', "
            f"'--runs-dir', {str(tmp_path / 'runs')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == ("labconsole: error: --executor ray: the ray package is not installed; "
                    "install it with: pip install 'labconsole[ray]'")
    assert not (tmp_path / "runs").exists()


# -- the executor in-process, on a Ray with stand-in GPUs ---------------------------------------------


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """A local Ray of 2 CPUs and 2 stand-in GPUs in this process (started as ``RayExecutor`` starts
    one); its workers inherit ``HOLD_ENV``: they wait after step 1 while the file it names (returned)
    exists."""
    hold = tmp_path_factory.mktemp("ray") / "hold"
    before = os.environ.get(HOLD_ENV)
    os.environ[HOLD_ENV] = str(hold)  # before Ray starts: its processes inherit the environment
    start_local_ray(num_cpus=2, num_gpus=2, logging_level="ERROR", log_to_driver=False)
    yield hold
    ray.shutdown()
    if before is None:
        os.environ.pop(HOLD_ENV, None)
    else:
        os.environ[HOLD_ENV] = before


def new_run(runs: Path, steps: int) -> Path:
    spec = load_preset(PRESETS / "quick.toml", tiny(*CPU, steps=steps, eval_every=steps, checkpoint_every=steps)).runs[0]
    return runner.create_run(spec, "quick", runs)


def started(dirs: list[Path]) -> list | None:
    """The meta.json of each run once every worker has written its own (its pid, its GPU)."""
    metas = [read_meta(d) for d in dirs]
    return metas if all(m.pid > 0 for m in metas) else None


def test_ray_gives_each_task_its_gpu_share_and_the_worker_records_it(held, runs):
    held.touch()  # the workers need only start: each waits after step 1
    dirs = [new_run(runs, steps=3) for _ in range(4)]
    executor = RayExecutor(gpus_per_run=0.5, cpus_per_run=0.5)  # 4 x 1/2 GPU = the 2 stand-in GPUs
    assert not executor.started  # it joins the Ray this process holds, and leaves it so
    handles = executor.launch([Launch(d) for d in dirs])
    metas = wait_for(lambda: started(dirs), timeout=180, what="four workers")
    assert sorted(m.gpu for m in metas) == ["0", "0", "1", "1"]  # Ray's CUDA_VISIBLE_DEVICES, inherited
    for m in metas:
        os.kill(m.pid, signal.SIGKILL)
    wait_for(lambda: all(h.poll() is not None for h in handles), timeout=120, what="the tasks to end")
    assert [h.poll() for h in handles] == [-signal.SIGKILL] * 4  # the worker's exit code: a crashed run
    held.unlink()
    executor.close()
    assert ray.is_initialized()


def test_a_forced_cancel_kills_the_task_and_its_worker_still_checkpoints(held, runs):
    # Ray 2.60 SIGKILLs a task process's children when it exits unless the local Ray turns that off
    # (RAY_kill_child_processes_on_worker_exit=0, _LOCAL_RAY_ENV): then the worker's parent death
    # reaches it as SIGTERM (PR_SET_PDEATHSIG) and it checkpoints, as a plain stop does.
    held.touch()
    run_dir = new_run(runs, steps=3)
    executor = RayExecutor(gpus_per_run=0, cpus_per_run=0.5)
    (handle,) = executor.launch([Launch(run_dir)])
    wait_for(lambda: first(run_dir, ev.Train), timeout=180, what="step 1")
    worker = read_meta(run_dir).pid
    ray.cancel(handle.ref, force=True)  # what a repeated stop does
    end = wait_for(lambda: finished(run_dir), timeout=120, what="the run's end")
    assert end.status == "stopped" and (run_dir / "checkpoints" / f"step-{end.step:07d}.pt").exists()
    wait_for(lambda: handle.poll() is not None, timeout=60, what="the task's end")
    assert handle.poll() == 1 and "cancel" in handle.error.lower()  # the task failed; the run did not
    wait_for(lambda: not pid_alive(worker), timeout=30, what="the worker to exit")
    held.unlink()
    executor.close()
