"""Start, resume and stop runs (DESIGN §3). No Textual, no torch: the console imports this.

A worker is started detached — its own session, stdio to ``stdout.log`` / ``stderr.log`` in the
run dir — so it keeps training when the console or the SSH session that started it goes away.
"""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import labconsole
from labconsole import cores
from labconsole.presets import RunSpec
from labconsole.runconfig import dumps_config
from labconsole.rundir import CONFIG, LIVE, Meta, create_run_dir, effective_status, read_meta, write_meta

WORKER_MODULE = "labconsole.worker"


def create_run(spec: RunSpec, preset_name: str, runs_dir: Path) -> Path:
    """Make the run dir with its resolved ``config.toml`` and an initial ``meta.json``."""
    run_dir = create_run_dir(runs_dir, preset_name, {CONFIG: dumps_config(spec.config)})
    write_meta(run_dir, Meta(run_id=run_dir.name, preset=preset_name, label=spec.label,
                             started=time.time(), heartbeat=time.time()))
    return run_dir


def spawn(run_dir: Path, *, resume: bool = False, gpu: str | None = None, attached: bool = False) -> subprocess.Popen:
    """Start the worker of ``run_dir`` in its own session; returns the process handle. With
    ``gpu``, the worker sees that GPU alone (``CUDA_VISIBLE_DEVICES``: its ``cuda:0``).

    ``attached`` (a SLURM job or a Ray task, ``labconsole.executors.task``): the worker stays in
    its parent's session and gets SIGTERM (checkpoint, "stopped") when its parent dies, so no
    worker outlives the job or task that started it; a console's or batch's worker is detached
    and outlives them."""
    run_dir = Path(run_dir).absolute()
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    # A detached worker shares this box's cores with its live runs; a job's or task's has its own.
    env.pop(cores.SHARE_ENV, None)
    if not attached:
        env[cores.SHARE_ENV] = "1"
    # The worker must import this very labconsole, installed or not.
    root = str(Path(labconsole.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", WORKER_MODULE, str(run_dir)] + (["--resume"] if resume else [])
    with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=run_dir,
                                start_new_session=not attached, preexec_fn=functools.partial(_die_with_parent, os.getpid()) if attached else None)


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG); a
    parent already gone by now (the child was re-parented) means SIGTERM at once. The worker leads
    its own process group (not session): a scheduler that SIGKILLs its task's group moments after
    SIGTERM (Ray does, 200 ms) would cut its checkpoint short; the parent's death reaches it."""
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)


def wait_live(run_dir: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until the worker has taken over ``meta.json`` (its pid, its socket), so a viewer that
    attaches next follows it live.

    Raises:
        RuntimeError: the worker exited first (the last line of its stderr.log says why) or
            did not start within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = read_meta(run_dir)
        if meta.pid == proc.pid and meta.socket or meta.pid == proc.pid and meta.status != "running":
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited at start ({proc.returncode}): {_last_line(run_dir / 'stderr.log')}")
        time.sleep(0.05)
    raise RuntimeError(f"the worker did not start within {timeout:.0f} s; see {run_dir / 'stderr.log'}")


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1] if lines else "no output"


def start(spec: RunSpec, preset_name: str, runs_dir: Path, gpu: str | None = None) -> Path:
    """Create a run for ``spec``, start its worker (on ``gpu``, if given: ``spawn``) and wait until
    it is live; returns the run dir."""
    run_dir = create_run(spec, preset_name, Path(runs_dir))
    wait_live(run_dir, spawn(run_dir, gpu=gpu))
    return run_dir


def resume(run_dir: Path, gpu: str | None = None) -> subprocess.Popen:
    """Continue a stopped, failed or crashed run from its latest checkpoint, in a new segment.

    Raises:
        ValueError: the run is still running, or the directory is not a run.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise ValueError(f"{run_dir}: not a run directory (no {CONFIG})")
    status = effective_status(read_meta(run_dir))
    if status in LIVE:
        raise ValueError(f"{run_dir}: still {status}; stop it first")
    return spawn(run_dir, resume=True, gpu=gpu)


def stop(run_dir: Path) -> bool:
    """Ask a running worker to stop gracefully (SIGTERM: finish the step, checkpoint, "stopped").

    Returns False when the run is not running, or runs on another host (its pid means nothing here).
    """
    meta = read_meta(run_dir)
    if effective_status(meta) not in LIVE or not meta.on_this_host():
        return False
    try:
        os.kill(meta.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
