"""What the console knows about one run: a pure reducer from events to a ``RunView``.

No Textual here. The app folds every event it receives into an immutable ``RunView`` and hands the
view down to its widgets; a test can replay an ``events.jsonl`` through ``replay`` and compare.
Events are never thinned: the curves keep every eval, and only the *view* is downsampled
(``downsample``) to the width of the plot.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from labconsole.events import (
    Checkpoint,
    Eval,
    Event,
    Log,
    PhaseChange,
    RunFinished,
    RunStarted,
    Train,
)

MAX_LOGS = 200  # Log events kept per run: a tail, not an archive (events.jsonl is the archive)

ACCURACY_SERIES = ("accuracy", "accuracy_x", "accuracy_y")  # Eval fields, in legend order
R2_SERIES = ("r2_x", "r2_y", "r2_mean")
SERIES_LABELS = {
    "accuracy": "acc",
    "accuracy_x": "acc x",
    "accuracy_y": "acc y",
    "r2_x": "R² x",
    "r2_y": "R² y",
    "r2_mean": "R² mean",
}


@dataclass(frozen=True)
class PhaseStep:
    """One phase transition: ``old -> new`` at ``step``, with the labeller's reason."""

    step: int
    old: str
    new: str
    reason: str

    def describe(self) -> str:
        if not self.old:
            return f"{self.new} from step {self.step:,}"
        return f"{self.old} -> {self.new} at step {self.step:,}"


@dataclass(frozen=True)
class RunView:
    """Everything the console shows about one run, folded from its events.

    ``status`` is ``waiting`` until ``RunStarted``, then ``running``, then the ``RunFinished`` status;
    the app may set ``crashed`` (``with_status``) when the stream ends without a ``RunFinished``.
    """

    run_id: str = ""
    preset: str = ""
    device: str = ""
    n_params: int = 0
    status: str = "waiting"
    segment: int = 0
    start_step: int = 0
    total_steps: int = 0  # train.steps of the resolved config; 0 when unknown
    step: int = 0  # the latest step any event reported
    loss: float | None = None
    images_per_s: float | None = None
    evals: tuple[Eval, ...] = ()  # every eval, in step order
    phase_history: tuple[PhaseStep, ...] = ()
    logs: tuple[Log, ...] = ()
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
    # A resumed segment restarts at its checkpoint: evals past that step belong to a timeline
    # that no longer exists and are dropped from the view (they stay in events.jsonl).
    evals = tuple(e for e in view.evals if e.step <= ev.start_step) if ev.segment else view.evals
    history = tuple(p for p in view.phase_history if p.step <= ev.start_step) if ev.segment else view.phase_history
    steps = ev.config.get("train", {}).get("steps", 0) if isinstance(ev.config, dict) else 0
    return dataclasses.replace(
        view, run_id=ev.run_id, preset=ev.preset, device=ev.device, n_params=ev.n_params,
        status="running", segment=ev.segment, start_step=ev.start_step, step=max(ev.start_step, 0),
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
    return dataclasses.replace(view, logs=(view.logs + (ev,))[-MAX_LOGS:])


def _on_finished(view: RunView, ev: RunFinished) -> RunView:
    return dataclasses.replace(view, status=ev.status, step=max(view.step, ev.step), error=ev.error)


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
# Curves


def series(evals: Sequence[Eval], name: str) -> tuple[list[int], list[float]]:
    """Steps and values of one Eval field (e.g. ``"accuracy"``), skipping missing / NaN values."""
    steps, values = [], []
    for ev in evals:
        value = getattr(ev, name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        steps.append(ev.step)
        values.append(float(value))
    return steps, values


def downsample(xs: Sequence[float], ys: Sequence[float], max_points: int) -> tuple[list, list]:
    """At most ``max_points`` points of a curve for display, keeping its shape.

    Splits the curve into buckets and keeps, per bucket, the lowest and the highest point in their
    original order (a min/max decimation: no spike disappears), plus the first and last point.
    The data itself is never thinned; call this with the width of the plot at draw time.
    """
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"xs and ys differ in length: {n} != {len(ys)}")
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    if n <= max_points:
        return list(xs), list(ys)
    n_buckets = (max_points - 2) // 2
    keep = {0, n - 1}
    for b in range(n_buckets):
        lo = 1 + (b * (n - 2)) // n_buckets
        hi = 1 + ((b + 1) * (n - 2)) // n_buckets
        if hi <= lo:
            continue
        bucket = range(lo, hi)
        keep.add(min(bucket, key=lambda i: ys[i]))
        keep.add(max(bucket, key=lambda i: ys[i]))
    idx = sorted(keep)
    return [xs[i] for i in idx], [ys[i] for i in idx]


# ---------------------------------------------------------------------------------------------
# Small formatting helpers shared by widgets


def format_age(seconds: float) -> str:
    """A compact age: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def format_step(step: int) -> str:
    """``12,800`` below a million, ``1.2M`` above (the paper's runs go to 320k)."""
    return f"{step / 1e6:.1f}M" if step >= 1_000_000 else f"{step:,}"
