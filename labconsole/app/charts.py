"""What each plot shows, as plain data (no Textual, no plotext): built from ``RunView``s.

A ``Chart`` is a title, some curves against step and some horizontal reference lines (the
detector's accuracy ceiling, the step-0 R² baseline), on a linear or a log y-axis. The ``ChartPlot``
widget draws one, thinning each curve to the plot's width at draw time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from labconsole.app.loss import EMA_WEIGHT, LossCurve, ema
from labconsole.app.state import ACCURACY_SERIES, R2_SERIES, SERIES_LABELS, series
from labconsole.runview import RunView

# Plotext colour names that stay distinct in 16 and 256 colours.
SERIES_COLOURS = {
    "accuracy": "green+",
    "accuracy_x": "cyan",
    "accuracy_y": "magenta",
    "r2_x": "cyan",
    "r2_y": "magenta",
    "r2_mean": "green+",
}
RUN_COLOURS = ("green+", "cyan+", "magenta+", "orange+")  # compare: up to four runs
RAW_LOSS_COLOUR = "gray"  # faint: the raw points are noisy, the smoothed line is what one reads
SMOOTH_LOSS_COLOUR = "orange+"


@dataclass(frozen=True)
class Curve:
    label: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    colour: str


@dataclass(frozen=True)
class HLine:
    value: float
    label: str
    colour: str = "gray"


@dataclass(frozen=True)
class Chart:
    title: str
    curves: tuple[Curve, ...] = ()
    hlines: tuple[HLine, ...] = ()
    ylim: tuple[float, float] | None = None
    ylog: bool = False  # a log y-axis
    empty: str = "no evals yet"  # said in place of a plot without points

    @property
    def n_points(self) -> int:
        return sum(len(c.steps) for c in self.curves)


def _curve(view: RunView, name: str, label: str | None = None, colour: str | None = None) -> Curve:
    steps, values = series(view.evals, name)
    return Curve(label or SERIES_LABELS[name], tuple(steps), tuple(values), colour or SERIES_COLOURS[name])


def accuracy_chart(view: RunView) -> Chart:
    """Accuracy overall / x / y against step, with the latest eval's ceiling."""
    curves = tuple(_curve(view, name) for name in ACCURACY_SERIES)
    if any(e.accuracy_ood is not None for e in view.evals):
        curves += (_curve(view, "accuracy_ood", "acc in-hole", "orange"),)
    latest = view.latest
    hlines = (HLine(latest.ceiling, f"ceiling {latest.ceiling:.2f}"),) if latest else ()
    title = "accuracy" + (f" · ceiling {latest.ceiling:.2f}" if latest else "")
    return Chart(title, curves, hlines, (0.0, 1.05))


def r2_chart(view: RunView) -> Chart:
    """UMAP R² for x, y and their mean against step, with the first eval's mean as baseline."""
    curves = tuple(_curve(view, name) for name in R2_SERIES)
    base = view.baseline_r2
    hlines = (HLine(base, f"step-0 baseline {base:.2f}"),) if base is not None else ()
    title = "UMAP R²" + (f" · step-0 baseline {base:.2f}" if base is not None else "")
    return Chart(title, curves, hlines, _r2_limits(curves))


def loss_chart(curve: LossCurve, weight: float = EMA_WEIGHT) -> Chart:
    """The training loss against step on a log axis: the raw points (faint) and their debiased
    EMA (``loss.ema`` with ``weight``). Points a log axis cannot show (NaN, inf, <= 0, e.g. a
    diverged run) are left out of both and counted in the title."""
    steps, losses, skipped = [], [], 0
    for step, loss in curve.points():
        if math.isfinite(loss) and loss > 0:
            steps.append(step)
            losses.append(loss)
        else:
            skipped += 1
    curves = (Curve("loss", tuple(steps), tuple(losses), RAW_LOSS_COLOUR),
              Curve(f"EMA {weight:g}", tuple(steps), tuple(ema(losses, weight)), SMOOTH_LOSS_COLOUR))
    title = f"loss · log · EMA {weight:g}" + (f" · {skipped} non-finite left out" if skipped else "")
    return Chart(title, curves if steps else (), ylog=True, empty="no train events yet")


def compare_chart(runs: Sequence[tuple[str, RunView]], field: str) -> Chart:
    """One curve per run for one Eval field (e.g. ``accuracy`` or ``r2_mean``), up to four runs."""
    if len(runs) > len(RUN_COLOURS):
        raise ValueError(f"compare takes at most {len(RUN_COLOURS)} runs, got {len(runs)}")
    curves = tuple(
        _curve(view, field, label, colour) for (label, view), colour in zip(runs, RUN_COLOURS)
    )
    ylim = (0.0, 1.05) if field.startswith("accuracy") else _r2_limits(curves)
    return Chart(SERIES_LABELS.get(field, field), curves, (), ylim)


def _r2_limits(curves: Sequence[Curve]) -> tuple[float, float]:
    low = min((min(c.values) for c in curves if c.values), default=0.0)
    return (min(0.0, low), 1.05)
