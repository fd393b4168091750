"""One run model: a pure reducer from a run's events to an immutable ``RunView`` (DESIGN §7).

Every reader folds events the same way — the batch (``labconsole.batch``), the console
(``labconsole.app``), sweep aggregation and reports — so they agree on what a run is::

    view = replay(eventlog.read_events(run_dir / "events.jsonl"))
    view = apply(view, event)            # one more event; ``view`` itself is never changed
    liveness(view, read_meta(run_dir))   # running / stalled / crashed / completed / ...

The resume rule: a segment resumed from the checkpoint at ``start_step`` replaces the timeline
its crashed or stopped predecessor went on with; evals and phase changes after ``start_step`` are
dropped from the view (they stay in events.jsonl). Events are never thinned otherwise.

No Textual, no torch.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Iterable

from labconsole.events import Checkpoint, Eval, Event, Log, PhaseChange, RunFinished, RunStarted, Train
from labconsole.rundir import Meta, effective_status

MAX_LOGS = 200  # Log events kept per run: a tail, not an archive (events.jsonl is the archive)
MAX_WARNINGS = 50  # warning / error Log events kept per run
STALLED_AFTER_S = 120.0  # a live run silent this long is "stalled": evals of the paper presets take ~1 min
FINAL = ("completed", "stopped", "failed", "crashed")  # statuses after which a run's view stays put


@dataclass(frozen=True)
class PhaseStep:
    """One phase transition: ``old -> new`` at ``step``, with the labeller's reason."""

    step: int
    old: str
    new: str
    reason: str

    def describe(self) -> str:
        """``A -> B at step 1,200`` (or ``C from step 0`` without an old phase)."""
        if not self.old:
            return f"{self.new} from step {self.step:,}"
        return f"{self.old} -> {self.new} at step {self.step:,}"


@dataclass(frozen=True)
class Segment:
    """One start of the worker: the first (0) or a resume from the checkpoint at ``start_step``.

    ``status`` is ``running`` until its ``RunFinished``; a segment followed by another without one
    ended with its worker's death: ``crashed``.
    """

    index: int
    start_step: int
    started: float  # unix time of its RunStarted
    status: str = "running"


@dataclass(frozen=True)
class RunView:
    """What is known of one run, folded from its events.

    ``status`` is ``waiting`` until ``RunStarted``, then ``running``, then the ``RunFinished``
    status; a reader may set another from outside (``with_status``), e.g. ``crashed`` when the
    stream ends without a ``RunFinished`` and the run dir says the worker is gone.
    """

    run_id: str = ""
    preset: str = ""
    device: str = ""
    n_params: int = 0
    status: str = "waiting"
    segment: int = 0  # the index of the latest segment
    segments: tuple[Segment, ...] = ()
    start_step: int = 0  # of the latest segment
    total_steps: int = 0  # train.steps of the resolved config; 0 when unknown
    step: int = 0  # the latest step any event reported
    loss: float | None = None
    images_per_s: float | None = None
    evals: tuple[Eval, ...] = ()  # every eval, in step order: the eval series
    phase_history: tuple[PhaseStep, ...] = ()
    logs: tuple[Log, ...] = ()  # the last MAX_LOGS Log events, any level
    warnings: tuple[Log, ...] = ()  # the last MAX_WARNINGS Log events of level warning or error
    last_checkpoint: int | None = None
    error: str = ""
    last_event: float = 0.0  # unix time of the newest event folded in (0: none yet)

    @property
    def latest(self) -> Eval | None:
        """The most recent eval, or None before the first."""
        return self.evals[-1] if self.evals else None

    @property
    def phase(self) -> str:
        """The current phase letter ("" before the first eval): the newest of eval and phase change."""
        latest, last = self.latest, (self.phase_history[-1] if self.phase_history else None)
        if last is not None and (latest is None or last.step >= latest.step):
            return last.new
        return latest.phase if latest else ""

    @property
    def phase_reason(self) -> str:
        """Why the labeller chose the current phase, e.g. "B: 94% single bumps, accuracy 0.31"."""
        if self.latest is not None:
            return self.latest.phase_reason
        return self.phase_history[-1].reason if self.phase_history else ""

    @property
    def baseline_r2(self) -> float | None:
        """Mean R² of the first eval (step 0 for a fresh run): the label-echo baseline (DESIGN §5)."""
        return self.evals[0].r2_mean if self.evals else None

    @property
    def first_steps(self) -> dict[str, int]:
        """Phase letter -> the step of the first eval labelled with it, e.g. ``{"A": 0, "C": 6400}``.

        Evals dropped by the resume rule do not count: a phase reached only on an abandoned
        timeline has no first step.
        """
        out: dict[str, int] = {}
        for e in self.evals:
            out.setdefault(e.phase, e.step)
        return out

    def first_step(self, phase: str) -> int | None:
        """The step of the first eval in ``phase`` ("A", "B" or "C"), or None if never reached."""
        return self.first_steps.get(phase)


# ---------------------------------------------------------------------------------------------
# The reducer


def apply(view: RunView, event: Event) -> RunView:
    """Return the view after ``event``; ``view`` is left unchanged.

    Unknown event kinds leave the view as it is (a newer worker may emit more kinds).
    """
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return view
    view = handler(view, event)
    return dataclasses.replace(view, last_event=event.time) if event.time > view.last_event else view


def replay(events: Iterable[Event], view: RunView | None = None) -> RunView:
    """Fold ``events`` into a view, starting from ``view`` (default: an empty one)."""
    view = view or RunView()
    for event in events:
        view = apply(view, event)
    return view


def with_status(view: RunView, status: str) -> RunView:
    """The view with its status set from outside the stream (e.g. ``crashed`` from the run dir)."""
    return view if view.status == status else dataclasses.replace(view, status=status)


def _on_started(view: RunView, ev: RunStarted) -> RunView:
    evals, history = view.evals, view.phase_history
    if ev.segment:  # the resume rule (module docstring)
        evals = tuple(e for e in evals if e.step <= ev.start_step)
        history = tuple(p for p in history if p.step <= ev.start_step)
    segments = tuple(dataclasses.replace(s, status="crashed") if s.status == "running" else s
                     for s in view.segments)  # a predecessor that never finished: its worker died
    steps = ev.config.get("train", {}).get("steps", 0) if isinstance(ev.config, dict) else 0
    return dataclasses.replace(
        view, run_id=ev.run_id, preset=ev.preset, device=ev.device, n_params=ev.n_params,
        status="running", segment=ev.segment, start_step=ev.start_step, step=max(ev.start_step, 0),
        segments=segments + (Segment(ev.segment, ev.start_step, ev.time),),
        total_steps=int(steps or 0), evals=evals, phase_history=history, error="",
    )


def _on_train(view: RunView, ev: Train) -> RunView:
    return dataclasses.replace(
        view, step=max(view.step, ev.step), loss=ev.loss, images_per_s=ev.images_per_s
    )


def _on_eval(view: RunView, ev: Eval) -> RunView:
    evals = view.evals
    if evals and evals[-1].step >= ev.step:
        # A re-evaluation of a step already shown (e.g. after a resume): the newer one wins.
        evals = tuple(e for e in evals if e.step < ev.step)
    return dataclasses.replace(view, evals=evals + (ev,), step=max(view.step, ev.step))


def _on_phase(view: RunView, ev: PhaseChange) -> RunView:
    entry = PhaseStep(ev.step, ev.old, ev.new, ev.reason)
    if view.phase_history and view.phase_history[-1] == entry:
        return view
    return dataclasses.replace(view, phase_history=view.phase_history + (entry,))


def _on_checkpoint(view: RunView, ev: Checkpoint) -> RunView:
    return dataclasses.replace(view, last_checkpoint=ev.step)


def _on_log(view: RunView, ev: Log) -> RunView:
    warnings = view.warnings
    if ev.level in ("warning", "error"):
        warnings = (warnings + (ev,))[-MAX_WARNINGS:]
    return dataclasses.replace(view, logs=(view.logs + (ev,))[-MAX_LOGS:], warnings=warnings)


def _on_finished(view: RunView, ev: RunFinished) -> RunView:
    segments = view.segments
    if segments and segments[-1].status == "running":
        segments = segments[:-1] + (dataclasses.replace(segments[-1], status=ev.status),)
    return dataclasses.replace(view, status=ev.status, step=max(view.step, ev.step), error=ev.error,
                               segments=segments)


_HANDLERS = {
    RunStarted: _on_started,
    Train: _on_train,
    Eval: _on_eval,
    PhaseChange: _on_phase,
    Checkpoint: _on_checkpoint,
    Log: _on_log,
    RunFinished: _on_finished,
}


# ---------------------------------------------------------------------------------------------
# Liveness


def liveness(view: RunView, meta: Meta | None = None, now: float | None = None, *,
             stalled_after: float = STALLED_AFTER_S) -> str:
    """What the run is doing now, from its view, its run dir's meta.json and the clock.

    A final status the events (or the reader) gave the view stands. Otherwise the run dir
    decides (``rundir.effective_status``: ``crashed`` when the worker is gone, or the status its
    worker wrote before the reader caught up); a run that is still live but has emitted nothing
    for more than ``stalled_after`` seconds is ``stalled`` (a long eval, or a hung worker).

    Args:
        view: the run's view.
        meta: its meta.json (``rundir.read_meta``); None to judge from the events alone.
        now: unix time (default: the clock).
        stalled_after: seconds of silence before a live run counts as stalled.
    Returns:
        ``waiting``, ``running``, ``stalled``, ``completed``, ``stopped``, ``failed`` or ``crashed``.
    Raises:
        ValueError: ``stalled_after`` is not positive.
    """
    if stalled_after <= 0:
        raise ValueError(f"stalled_after: expected a positive number of seconds, got {stalled_after}")
    if view.status in FINAL:
        return view.status
    now = time.time() if now is None else now
    if meta is not None:
        status = effective_status(meta, now=now)
        if status != "running":
            return status
    if view.status == "running" and view.last_event and now - view.last_event > stalled_after:
        return "stalled"
    return view.status
