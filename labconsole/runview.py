"""One run model: a pure reducer from a run's events to an immutable ``RunView`` (DESIGN §7).

Every reader folds events the same way — the batch (``labconsole.batch``), the console
(``labconsole.app``), sweep aggregation and reports — so they agree on what a run is::

    view = replay(eventlog.read_events(run_dir / "events.jsonl"))
    view = apply(view, event)            # one more event; ``view`` itself is never changed
    liveness(view, read_meta(run_dir))   # running / stalled / crashed / completed / ...

Stalled: the worker's heartbeat thread marks its run "stalled" when the training loop has not moved
for ``train.stall_after`` seconds, in meta.json and by an ``Activity`` event, and "running" again
when it moves; the view folds the event, ``liveness`` prefers meta.json (see there).

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

from pathlib import Path

from labconsole.eventlog import read_events
from labconsole.events import Activity, Checkpoint, Eval, Event, Log, PhaseChange, RunFinished, RunStarted, Train
from labconsole.rundir import EVENTS, LIVE, Meta, effective_status, read_meta

MAX_LOGS = 200  # Log events kept per run: a tail, not an archive (events.jsonl is the archive)
MAX_WARNINGS = 50  # warning / error Log events kept per run
# Without meta.json, a live run silent this long is "stalled": its worker emits at least once per
# train.stall_after while its process lives (events.Activity), so twice that means it does not. A run
# whose config predates train.stall_after is judged after STALLED_AFTER_S (its evals are silent).
SILENCE_FACTOR = 2.0
STALLED_AFTER_S = 120.0
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
    status: str = "waiting"  # ... running | stalled (events.Activity) | completed | stopped | failed | crashed
    activity: str = ""  # what the live worker does (events.Activity): starting | training | evaluating; "" once over
    stall_after: float = 0.0  # train.stall_after of the resolved config; 0 when unknown (an older run)
    segment: int = 0  # the index of the latest segment
    segments: tuple[Segment, ...] = ()
    start_step: int = 0  # of the latest segment
    total_steps: int = 0  # train.steps of the resolved config; 0 when unknown
    accuracy_frac: float = 0.8  # eval.phase_accuracy_frac of the resolved config: "accurate" is >= this x ceiling
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
    changes = handler(view, event)  # the fields that change: one new view per event, however many
    if event.time > view.last_event:
        changes["last_event"] = event.time
    return _evolve(view, changes) if changes else view


def _evolve(view: RunView, changes: dict) -> RunView:
    """``dataclasses.replace`` without its per-call field introspection (RunView has no
    ``__post_init__`` to rerun). A report replays every event of every run of a sweep: ~200k for
    30 runs of 51 evals, where two replace() calls per event took 60% of the time (measured on
    the 2-core box: report of such a sweep 8.5 s before, 3.5 s after)."""
    new = object.__new__(RunView)
    new.__dict__.update(view.__dict__)
    new.__dict__.update(changes)
    return new


def replay(events: Iterable[Event], view: RunView | None = None) -> RunView:
    """Fold ``events`` into a view, starting from ``view`` (default: an empty one)."""
    view = view or RunView()
    for event in events:
        view = apply(view, event)
    return view


def read_run(run_dir: str | Path, now: float | None = None) -> RunView:
    """The view of a run dir as it is now: its events replayed, its status its ``liveness``.

    A run dir without events.jsonl (its worker never wrote one) gives an empty view whose status
    comes from meta.json; without meta.json either, the status is ``waiting``. Used by sweeps and
    reports, which read many runs once rather than follow one.
    """
    run_dir = Path(run_dir)
    events = run_dir / EVENTS
    view = replay(read_events(events)) if events.exists() else RunView(run_id=run_dir.name)
    try:
        meta = read_meta(run_dir)
    except (FileNotFoundError, ValueError):
        meta = None  # liveness then judges from the events alone
    return with_status(view, liveness(view, meta, now))


def with_status(view: RunView, status: str) -> RunView:
    """The view with its status set from outside the stream (e.g. ``crashed`` from the run dir)."""
    return view if view.status == status else dataclasses.replace(view, status=status)


def _on_started(view: RunView, ev: RunStarted) -> dict:
    evals, history = view.evals, view.phase_history
    if ev.segment:  # the resume rule (module docstring)
        evals = tuple(e for e in evals if e.step <= ev.start_step)
        history = tuple(p for p in history if p.step <= ev.start_step)
    segments = tuple(dataclasses.replace(s, status="crashed") if s.status == "running" else s
                     for s in view.segments)  # a predecessor that never finished: its worker died
    train = ev.config.get("train", {}) if isinstance(ev.config, dict) else {}
    frac = (ev.config.get("eval", {}) if isinstance(ev.config, dict) else {}).get("phase_accuracy_frac", 0.8)
    return dict(accuracy_frac=float(frac),
        run_id=ev.run_id, preset=ev.preset, device=ev.device, n_params=ev.n_params, activity="",
        stall_after=float(train.get("stall_after", 0.0) or 0.0),
        status="running", segment=ev.segment, start_step=ev.start_step, step=max(ev.start_step, 0),
        segments=segments + (Segment(ev.segment, ev.start_step, ev.time),),
        total_steps=int(train.get("steps", 0) or 0), evals=evals, phase_history=history, error="",
    )


def _on_train(view: RunView, ev: Train) -> dict:
    return dict(step=max(view.step, ev.step), loss=ev.loss, images_per_s=ev.images_per_s)


def _on_eval(view: RunView, ev: Eval) -> dict:
    evals = view.evals
    if evals and evals[-1].step >= ev.step:
        # A re-evaluation of a step already shown (e.g. after a resume): the newer one wins.
        evals = tuple(e for e in evals if e.step < ev.step)
    return dict(evals=evals + (ev,), step=max(view.step, ev.step))


def _on_phase(view: RunView, ev: PhaseChange) -> dict:
    entry = PhaseStep(ev.step, ev.old, ev.new, ev.reason)
    if view.phase_history and view.phase_history[-1] == entry:
        return {}
    return dict(phase_history=view.phase_history + (entry,))


def _on_checkpoint(view: RunView, ev: Checkpoint) -> dict:
    return dict(last_checkpoint=ev.step)


def _on_log(view: RunView, ev: Log) -> dict:
    warnings = view.warnings
    if ev.level in ("warning", "error"):
        warnings = (warnings + (ev,))[-MAX_WARNINGS:]
    return dict(logs=(view.logs + (ev,))[-MAX_LOGS:], warnings=warnings)


def _on_finished(view: RunView, ev: RunFinished) -> dict:
    segments = view.segments
    if segments and segments[-1].status == "running":
        segments = segments[:-1] + (dataclasses.replace(segments[-1], status=ev.status),)
    return dict(status=ev.status, step=max(view.step, ev.step), error=ev.error, segments=segments, activity="")


def _on_activity(view: RunView, ev: Activity) -> dict:
    changes = dict(activity=ev.what, step=max(view.step, ev.step))
    if view.status in LIVE:  # a late Activity never revives a finished run
        changes["status"] = "stalled" if ev.stalled else "running"
    return changes


_HANDLERS = {
    RunStarted: _on_started,
    Train: _on_train,
    Eval: _on_eval,
    PhaseChange: _on_phase,
    Checkpoint: _on_checkpoint,
    Log: _on_log,
    Activity: _on_activity,
    RunFinished: _on_finished,
}


# ---------------------------------------------------------------------------------------------
# Liveness


def liveness(view: RunView, meta: Meta | None = None, now: float | None = None, *,
             stalled_after: float | None = None) -> str:
    """What the run is doing now, from its view, its run dir's meta.json and the clock.

    A final status the events (or the reader) gave the view stands. Otherwise meta.json decides
    (``rundir.effective_status``): ``crashed`` when the worker is gone, the final status its worker
    wrote before the reader caught up, or — for a started run whose worker lives — ``running`` or
    ``stalled`` as the worker judged its own loop. Without meta.json (e.g. a viewer on another host
    with a copy of the events) the view's own status holds, and a running run silent for more than
    ``stalled_after`` seconds is ``stalled`` too: its worker is frozen or gone.

    Args:
        view: the run's view.
        meta: its meta.json (``rundir.read_meta``); None to judge from the events alone.
        now: unix time (default: the clock).
        stalled_after: seconds of silence that count without meta.json; default SILENCE_FACTOR x the
            run's train.stall_after (STALLED_AFTER_S when its config does not say).
    Returns:
        ``waiting``, ``running``, ``stalled``, ``completed``, ``stopped``, ``failed`` or ``crashed``.
    Raises:
        ValueError: ``stalled_after`` is not positive.
    """
    if stalled_after is None:
        stalled_after = SILENCE_FACTOR * view.stall_after if view.stall_after > 0 else STALLED_AFTER_S
    if stalled_after <= 0:
        raise ValueError(f"stalled_after: expected a positive number of seconds, got {stalled_after}")
    if view.status in FINAL:
        return view.status
    now = time.time() if now is None else now
    if meta is not None:
        status = effective_status(meta, now=now)
        # "running" says only that the worker lives: a view still waiting for its RunStarted waits.
        return view.status if status == "running" and view.status not in LIVE else status
    if view.status == "running" and view.last_event and now - view.last_event > stalled_after:
        return "stalled"
    return view.status
