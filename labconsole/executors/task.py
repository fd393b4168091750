"""The body of a remote job or task (SLURM, Ray): the run's worker in the foreground.

It runs on the node the scheduler chose, with the run directory on a shared filesystem. The
worker resumes when one ran before (a requeued job, a retried task), and is started *attached*
(``runner.spawn``): it gets SIGTERM — checkpoint, "stopped" — when this process dies, so no
worker outlives its job or task, whatever killed them.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

from labconsole import runner
from labconsole.rundir import LIVE, effective_status, read_meta

EARLIER_WORKER_WAIT_S = 120.0  # a worker of an earlier attempt may still be writing its checkpoint
STOP_WAIT_S = 600.0  # a stopped worker finishes its step (or its eval) and checkpoints first
WAIT_TICK_S = 1.0  # run_worker waits in ticks, so an interrupt without a signal is seen (wait_ticking)


def should_resume(run_dir: Path) -> bool:
    """Whether a worker ran in ``run_dir`` before (``create_run`` leaves pid 0 in meta.json)."""
    return read_meta(run_dir).pid > 0


def wait_earlier_worker(run_dir: Path, timeout: float = EARLIER_WORKER_WAIT_S) -> None:
    """Wait until no earlier worker of the run lives (a lost task's worker is checkpointing on its
    parent's death); after ``timeout`` the run is taken as crashed and resumed anyway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and effective_status(read_meta(run_dir)) in LIVE:
        time.sleep(0.5)


def start_worker(run_dir: Path) -> subprocess.Popen:
    """Start the run's worker attached to this process: fresh, or resumed if one ran before."""
    run_dir = Path(run_dir)
    if should_resume(run_dir):
        wait_earlier_worker(run_dir)
        with _preemption_signal_blocked():
            return runner.spawn(run_dir, resume=True, attached=True)
    with _preemption_signal_blocked():
        return runner.spawn(run_dir, attached=True)


@contextlib.contextmanager
def _preemption_signal_blocked() -> Iterator[None]:
    """SLURM's ``--signal`` (submitit's preemption / time-limit signal, USR2 unless
    SUBMITIT_PREEMPT_SIGNAL says otherwise) reaches every process of the job step, and kills one
    that does not handle it: the worker would die without its checkpoint. So the worker is
    spawned with it blocked (a blocked signal stays blocked across fork and exec); the job body,
    which handles it (checkpoint, requeue), gets one that came meanwhile once it is unblocked."""
    sig = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)
    if sig is None or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_worker(proc: subprocess.Popen, timeout: float = STOP_WAIT_S) -> int:
    """SIGTERM the worker and wait for its checkpoint; SIGKILL only after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_worker(run_dir: str | Path) -> int:
    """Run the worker of ``run_dir`` to its end and return its exit code (0 completed or stopped).

    SIGTERM or Ctrl-C to this process (scancel, ``ray.cancel``) stops the worker with a checkpoint
    first; the exception then goes on, so the scheduler sees the job or task stopped."""
    proc = start_worker(Path(run_dir))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        return wait_ticking(proc)
    except BaseException:
        stop_worker(proc)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def wait_ticking(proc: subprocess.Popen, tick: float = WAIT_TICK_S) -> int:
    """``proc.wait()``, in ticks. A plain wait blocks in waitpid(2) until the worker exits, and an
    interrupt that comes without a signal — ``ray.cancel`` interrupts the task's main thread with
    ``_thread.interrupt_main`` — is only seen when the interpreter runs again: a stop would wait
    for the whole run. A wait with a timeout polls (sleeps of at most 50 ms), so it is seen at once."""
    while True:
        try:
            return proc.wait(timeout=tick)
        except subprocess.TimeoutExpired:
            continue


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
