"""The local executor: each worker a detached subprocess on this box (``labconsole.runner``).

How many train at once, and on which GPU, is the batch's choice (``--jobs``, ``--gpus``,
``--runs-per-gpu``); this only starts them. A worker outlives the batch that started it.
"""
from __future__ import annotations

import signal
import subprocess

from labconsole import runner
from labconsole.executors import Launch


class LocalHandle:
    """A worker subprocess of this box."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.where = f"pid {proc.pid}"

    def poll(self) -> int | None:
        """None while the worker lives, then its exit code."""
        return self.proc.poll()

    def stop(self) -> None:
        """SIGTERM: the worker finishes its step, checkpoints and ends "stopped"."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


class LocalExecutor:
    """Workers as subprocesses here; a crashed run is not retried unless ``--retries`` says so."""

    name = "local"
    queues = False  # the batch's --jobs or GPU slots decide how many run at once
    retries = 0

    def launch(self, launches: list[Launch]) -> list[LocalHandle]:
        """Start each worker (a resume continues from the run's latest checkpoint)."""
        return [LocalHandle(runner.resume(l.run_dir, gpu=l.gpu) if l.resume else runner.spawn(l.run_dir, gpu=l.gpu))
                for l in launches]

    def close(self) -> None:
        """Nothing held: the workers are detached."""
