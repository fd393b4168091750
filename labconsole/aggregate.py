"""Aggregation per setting over seeds (DESIGN §7): pure functions on run views and a grid.

The paper reads every finding over seeds, keeping the best (App. A.6). For each setting:

- **steps to a phase**: the first eval at phase B or beyond, the first at phase C, and the step
  from which C holds to the end (the first C can flap back to B, notes/increments-prior.md). A
  run that has not got there is *censored* — ``Censored(by=S)``: "not reached by step S", S its
  last eval — and is kept: the mean / min / max / std are over the runs that reached it, beside
  how many are censored and by when;
- **terminal figures**: every number of each run's latest eval (accuracy and its ceiling,
  acc_x, acc_y, R² x / y / mean, OOD accuracy and ceiling when present, the failure-mode
  fractions — whatever numbers the ``Eval`` event carries, so new fields join by themselves);
- **the best seed**: the best terminal accuracy (App. A.6);
- **curves**: per metric, the mean over seeds with a min-max band at each eval step.

Runs whose eval steps differ (an extra eval, a run cut short) are aligned on the union of
their steps: a point is the mean over the runs evaluated at that step, and ``Curve.n`` says how
many those are; nothing is interpolated. NaN (an undefined R²) is left out of every statistic.
``std`` is the population standard deviation over seeds (numpy's default, ddof 0).

No Textual, no torch, no matplotlib: the console, the batch and the report share these.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from labconsole.events import Eval
from labconsole.runview import RunView
from labconsole.sweep import Setting

PHASE_ORDER = {"A": 0, "B": 1, "C": 2}
# Eval numbers that describe how the eval ran, not what the model does: kept in evals.csv, not aggregated.
BOOKKEEPING = ("time", "segment", "eval_seconds", "n_samples", "n_ood", "capture_t", "umap_seed", "umap_fits")
# Eval fields drawn over steps (curves.csv, the sweep view, the report's curves figure); pca_top4 /
# pca_pr: layer 4's top-4 variance share and participation ratio (issue 16; absent from older runs).
CURVE_METRICS = ("accuracy", "accuracy_x", "accuracy_y", "r2_x", "r2_y", "r2_mean", "accuracy_ood", "pca_top4",
                 "pca_pr")


def metric_names(eval_type: type = Eval) -> tuple[str, ...]:
    """The numeric fields of the eval event, in its order, ``step`` and bookkeeping excluded."""
    return tuple(f.name for f in dataclasses.fields(eval_type)
                 if _is_number_type(f.type) and f.name != "step" and f.name not in BOOKKEEPING)


def number_fields(eval_type: type = Eval) -> tuple[str, ...]:
    """Every numeric field of the eval event, bookkeeping included (what evals.csv writes)."""
    return tuple(f.name for f in dataclasses.fields(eval_type) if _is_number_type(f.type) and f.name != "time")


def _is_number_type(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = {p.strip() for p in text.split("|")} - {"None"}
    return bool(parts) and parts <= {"float", "int"}


# ---------------------------------------------------------------------------------------------
# Small result types


@dataclass(frozen=True)
class Censored:
    """A phase not reached by step ``by`` (the run's last eval)."""

    by: int

    def __str__(self) -> str:
        return f"> {self.by}"


@dataclass(frozen=True)
class Spread:
    """Mean, min, max and std of some values over seeds, with how many there were."""

    mean: float
    min: float
    max: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread | None:
        """The spread of the finite values; None when there are none."""
        xs = [float(v) for v in values if v is not None and math.isfinite(v)]
        if not xs:
            return None
        return cls(statistics.fmean(xs), min(xs), max(xs), statistics.pstdev(xs), len(xs))


@dataclass(frozen=True)
class StepsTo:
    """Steps to a phase over a setting's runs: the reached ones' spread and the censored ones."""

    phase: str
    per_run: tuple[int | Censored | None, ...]  # None: the run has no eval
    reached: Spread | None

    @property
    def censored(self) -> tuple[Censored, ...]:
        """The runs that have not reached the phase, each with its last eval step."""
        return tuple(s for s in self.per_run if isinstance(s, Censored))

    @property
    def n_reached(self) -> int:
        """How many runs reached the phase."""
        return sum(isinstance(s, int) for s in self.per_run)

    def describe(self) -> str:
        """e.g. ``600 ± 50 [550-650], 2 of 3; 1 censored (> 900)`` or ``not reached (> 900, > 900)``."""
        cens = ", ".join(str(c) for c in self.censored)
        if self.reached is None:
            return f"not reached ({cens})" if cens else "no evals"
        r = self.reached
        text = f"{r.mean:,.0f} ± {r.std:,.0f} [{r.min:,.0f}-{r.max:,.0f}], {self.n_reached} of {len(self.per_run)}"
        return text + (f"; {len(self.censored)} censored ({cens})" if cens else "")


@dataclass(frozen=True)
class Curve:
    """One metric over steps for a setting: the mean over seeds and its min-max band."""

    metric: str
    steps: tuple[int, ...]
    mean: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: tuple[int, ...]  # runs with a finite value at that step


@dataclass(frozen=True)
class Member:
    """One run of a group: its setting, seed and view (None when it was never created)."""

    setting: str
    seed: int
    run_id: str = ""
    view: RunView | None = None
    label: str = ""


@dataclass(frozen=True)
class Best:
    """The seed with the best terminal accuracy (App. A.6)."""

    seed: int
    run_id: str
    accuracy: float
    step: int  # of its latest eval
    label: str = ""
    r2_mean: float = math.nan


@dataclass(frozen=True)
class SettingAggregate:
    """Everything aggregated over one setting's seeds."""

    setting: Setting
    members: tuple[Member, ...]
    first_b: StepsTo  # first eval at phase B or beyond
    first_c: StepsTo
    c_held: StepsTo  # first eval from which every later eval is C
    acc_held: StepsTo  # first eval from which every later eval is accurate (>= phase_accuracy_frac x ceiling)
    terminal: dict[str, Spread]  # metric -> spread over the runs' latest evals (metrics without values absent)
    best: Best | None
    curves: dict[str, Curve]  # metric -> curve (metrics without values absent)

    @property
    def n_evaluated(self) -> int:
        """Runs with at least one eval."""
        return sum(m.view is not None and bool(m.view.evals) for m in self.members)


# ---------------------------------------------------------------------------------------------
# One run


def first_reached(view: RunView | None, phase: str) -> int | Censored | None:
    """The step of the run's first eval at ``phase`` or beyond (A < B < C); ``Censored`` when
    none is, None for a run without evals."""
    if view is None or not view.evals:
        return None
    rank = PHASE_ORDER[phase]
    hit = next((e.step for e in view.evals if PHASE_ORDER.get(e.phase, -1) >= rank), None)
    return hit if hit is not None else Censored(view.evals[-1].step)


def held_from(view: RunView | None, phase: str) -> int | Censored | None:
    """The step from which every eval of the run is at ``phase`` or beyond: a reading of "steps to
    C" that does not flap; ``Censored`` when the last eval is below it, None without evals."""
    if view is None or not view.evals:
        return None
    rank, start = PHASE_ORDER[phase], None
    for e in view.evals:
        if PHASE_ORDER.get(e.phase, -1) >= rank:
            start = e.step if start is None else start
        else:
            start = None
    return start if start is not None else Censored(view.evals[-1].step)


def accurate_from(view: RunView | None) -> int | Censored | None:
    """The step from which every eval's accuracy is at least ``phase_accuracy_frac`` x its ceiling
    (phase C's accuracy half, without its UMAP R² half): what the samples show, read without the
    noise of one UMAP fit; ``Censored`` when the last eval is below it, None without evals."""
    if view is None or not view.evals:
        return None
    start = None
    for e in view.evals:
        ok = e.ceiling > 0 and e.accuracy >= view.accuracy_frac * e.ceiling - 1e-12
        start = (e.step if start is None else start) if ok else None
    return start if start is not None else Censored(view.evals[-1].step)


def _value(e: Eval, metric: str) -> float | None:
    v = getattr(e, metric, None)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# ---------------------------------------------------------------------------------------------
# Over seeds


def steps_to(views: Sequence[RunView | None], phase: str, *, held: bool = False) -> StepsTo:
    """Steps to ``phase`` over runs (``held``: from which it holds to the end); ``phase`` "accurate"
    reads ``accurate_from``."""
    if phase == "accurate":
        per_run = tuple(accurate_from(v) for v in views)
    else:
        per_run = tuple((held_from if held else first_reached)(v, phase) for v in views)
    reached = Spread.of([s for s in per_run if isinstance(s, int)])
    return StepsTo(phase, per_run, reached)


def terminal(views: Sequence[RunView | None], metrics: Sequence[str] | None = None) -> dict[str, Spread]:
    """Per metric, the spread of the runs' latest evals (``step`` included: where each run ended)."""
    latest = [v.latest for v in views if v is not None and v.latest is not None]
    out = {}
    for metric in ("step", *(metrics or metric_names())):
        spread = Spread.of([_value(e, metric) for e in latest])
        if spread is not None:
            out[metric] = spread
    return out


def best_seed(members: Sequence[Member]) -> Best | None:
    """The member with the best terminal accuracy (ties: the first); None when none has an eval."""
    scored = [m for m in members if m.view is not None and m.view.latest is not None
              and math.isfinite(m.view.latest.accuracy)]
    if not scored:
        return None
    top = max(scored, key=lambda m: m.view.latest.accuracy)  # max keeps the first of equals
    e = top.view.latest
    return Best(top.seed, top.run_id, e.accuracy, e.step, top.label, e.r2_mean)


def curve(views: Sequence[RunView | None], metric: str) -> Curve | None:
    """Mean and min-max band of ``metric`` over runs, on the union of their eval steps (the
    module docstring); None when no run has a finite value of it."""
    by_step: dict[int, list[float]] = {}
    for view in views:
        for e in (view.evals if view is not None else ()):
            v = _value(e, metric)
            if v is not None and math.isfinite(v):
                by_step.setdefault(e.step, []).append(v)
    if not by_step:
        return None
    steps = sorted(by_step)
    cols = [by_step[s] for s in steps]
    return Curve(metric, tuple(steps), tuple(statistics.fmean(c) for c in cols), tuple(min(c) for c in cols),
                 tuple(max(c) for c in cols), tuple(len(c) for c in cols))


def aggregate_setting(setting: Setting, members: Sequence[Member], metrics: Sequence[str] | None = None) -> SettingAggregate:
    """Everything of one setting, from its members (every planned run, evaluated or not)."""
    views = [m.view for m in members]
    curves = {m: c for m in CURVE_METRICS if (c := curve(views, m)) is not None}
    return SettingAggregate(setting, tuple(members), steps_to(views, "B"), steps_to(views, "C"),
                            steps_to(views, "C", held=True), steps_to(views, "accurate"), terminal(views, metrics),
                            best_seed(members), curves)


def aggregate(grid: Sequence[Setting], members: Sequence[Member]) -> list[SettingAggregate]:
    """One aggregate per setting of ``grid``, in its order; members are matched by setting label.

    Raises:
        ValueError: a member names a setting the grid lacks.
    """
    labels = {s.label for s in grid}
    stray = sorted({m.setting for m in members} - labels)
    if stray:
        raise ValueError(f"runs of settings {stray} that the grid lacks; expected one of: {sorted(labels)}")
    return [aggregate_setting(s, [m for m in members if m.setting == s.label]) for s in grid]


def describe(agg: SettingAggregate) -> str:
    """One line for the batch summary: steps to C (censored counted) and terminal accuracy."""
    name = agg.setting.label or "the preset"
    acc = agg.terminal.get("accuracy")
    acc_text = f"{acc.mean:.2f} ± {acc.std:.2f} [{acc.min:.2f}-{acc.max:.2f}]" if acc else "no evals"
    return (f"{name}: {len(agg.members)} seed(s); first C: {agg.first_c.describe()}; "
            f"C held from: {agg.c_held.describe()}; accurate from: {agg.acc_held.describe()}; "
            f"terminal accuracy: {acc_text}")

