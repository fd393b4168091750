"""One run of a batch: its launched worker and the ``RunView`` folded from its events.

The batch's own bookkeeping beside the view the console also folds (``labconsole.runview``):
where its worker runs (an executor's ``Handle``), its GPU, its retries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from labconsole import events as ev
from labconsole.eventlog import EventTail
from labconsole.executors import Handle
from labconsole.rundir import EVENTS, LIVE, effective_status, read_meta
from labconsole.runview import RunView, apply, with_status


WORKER_GRACE_S = 600.0  # a stopped worker finishes its step or eval and checkpoints (task.STOP_WAIT_S)


def progress_line(event: ev.Event) -> str | None:
    """The plain progress line an event is worth in the batch output, if any."""
    if isinstance(event, ev.RunStarted):
        return f"started on {event.device}, {event.n_params:,} parameters, from step {event.start_step}"
    if isinstance(event, ev.Eval):
        return (f"step {event.step}: accuracy {event.accuracy:.2f} (ceiling {event.ceiling:.2f}){held_out(event)}, "
                f"R² {event.r2_mean:.2f}, phase {event.phase_reason} [{event.eval_seconds:.1f} s eval]")
    if isinstance(event, ev.Log) and event.level != "info":
        return f"{event.level}: {event.message}"
    if isinstance(event, ev.RunFinished):
        return f"{event.status} at step {event.step}" + (f": {event.error}" if event.error else "")
    return None


def held_out(event: ev.Eval) -> str:
    """``, held out 0.42 (vertical arm 0.40, ...)`` for a run with held-out labels; "" without.
    Regions are listed when there are several (a cross: each arm and their intersection)."""
    if event.accuracy_ood is None:
        return ""
    regions = [f"{name} {r['accuracy']:.2f}" for name, r in (event.regions or {}).items() if r.get("accuracy") is not None]
    return f", held out {event.accuracy_ood:.2f}" + (f" ({', '.join(regions)})" if len(regions) > 1 else "")


@dataclass
class RunEntry:
    """One run of a batch: its process bookkeeping and its ``RunView``.

    The view's status is the batch's too: ``queued`` until launched, ``starting`` until the
    worker's ``RunStarted``, then what the events (or, for a dead worker, the run dir) say.
    """

    label: str
    setting: str
    steps: int = 0  # the planned train.steps, shown until the worker reports its config
    seed: int = 0
    run_dir: Path | None = None
    handle: Handle | None = None  # its launched worker (a subprocess, a SLURM job, a Ray task)
    tail: EventTail | None = None
    view: RunView = field(default_factory=lambda: RunView(status="queued"))
    started: float = 0.0  # unix time of the launch
    gpu: str | None = None  # the GPU its worker was given (CUDA_VISIBLE_DEVICES), None on the CPU
    retried: int = 0  # times a crashed worker was resumed by the batch (--retries)
    exit_seen: float = 0.0  # monotonic time its job or task was first seen over with its worker alive

    @property
    def status(self) -> str:
        return self.view.status

    @property
    def active(self) -> bool:
        """Launched and not over: a worker the batch still waits for. A run that ended "stopped"
        while its job lives is being requeued (SLURM preemption, time limit): it resumes."""
        if self.handle is None:
            return False
        if self.status in ("starting", *LIVE):
            return True
        return self.status == "stopped" and self.handle.poll() is None

    def launch(self, run_dir: Path, handle: Handle) -> None:
        """Record a started worker. A resumed run keeps its tail, and so its offset: the events of
        its earlier segments are not shown twice."""
        self.run_dir, self.handle, self.started, self.exit_seen = run_dir, handle, time.time(), 0.0
        self.tail = self.tail or EventTail(run_dir / EVENTS)
        self.view = with_status(self.view, "starting")

    def poll(self) -> list[str]:
        """Fold the run's new events into its view; returns the progress lines worth printing.

        Once the worker has exited without a ``run_finished`` event, its run dir decides the
        status: ``crashed``, unless the worker recorded another in meta.json.
        """
        lines = self._fold()
        code = self.handle.poll() if self.active else None
        if code is not None:
            lines += self._fold()  # what it wrote between the read above and its exit
            if self.active:
                status = effective_status(read_meta(self.run_dir))
                if status in LIVE and self._worker_outlives(code):
                    return lines  # a cancelled Ray task ends while its worker still checkpoints
                self.view = with_status(self.view, "crashed" if status in LIVE else status)
                lines.append(f"{self.status}: worker exited with code {code} ({self.handle.where}); see stderr.log")
        return lines

    def _worker_outlives(self, code: int) -> bool:
        """Whether to wait on for a live worker whose job or task has ended: a scheduler may report
        a cancelled task over (Ray: at once) while the worker it stopped is still writing its
        checkpoint. Waited for up to WORKER_GRACE_S from the first such poll, then crashed."""
        self.exit_seen = self.exit_seen or time.monotonic()
        return time.monotonic() - self.exit_seen < WORKER_GRACE_S

    def _fold(self) -> list[str]:
        lines = []
        for event in self.tail.poll():
            was = self.view.status
            self.view = apply(self.view, event)
            line = progress_line(event)
            if was == "stalled" and self.view.status == "running":  # the stall's warning was printed
                line = f"running again at step {self.view.step}"
            if line:
                lines.append(line)
        return lines
