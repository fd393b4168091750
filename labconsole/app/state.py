"""Display helpers of the console: eval curves, their downsampling, ages and steps as text.

The run state itself is ``labconsole.runview`` (the one reducer every reader uses); its names are
re-exported here for the console code that imports them from this module. No Textual here.
Events are never thinned: the curves keep every eval, and only the *view* is downsampled
(``downsample``) to the width of the plot.
"""
from __future__ import annotations

import math
from typing import Sequence

from labconsole.events import Eval
from labconsole.runview import MAX_LOGS, PhaseStep, RunView, apply, replay, with_status

__all__ = [
    "ACCURACY_SERIES", "MAX_LOGS", "PhaseStep", "R2_SERIES", "SERIES_LABELS", "RunView", "apply", "downsample",
    "format_age", "format_step", "replay", "series", "with_status",
]

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
