"""What each plot shows, as plain data (no Textual, no plotext): built from ``RunView``s and
from a sweep's aggregates (``labconsole.aggregate``).

A ``Chart`` is a title, some curves against step and some horizontal reference lines (the
detector's accuracy ceiling, the step-0 R² baseline), on a linear or a log y-axis. The ``ChartPlot``
widget draws one, thinning each curve to the plot's width at draw time. A sweep's charts may put
something else than the step on x (``xlabel``, ``xticks``) and draw points (``Curve.points``):
the ``SweepPlot`` widget honours those.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from labconsole.app.loss import EMA_WEIGHT, LossCurve, ema
from labconsole.app.state import ACCURACY_SERIES, R2_SERIES, SERIES_LABELS, series
from labconsole.runview import RunView

if TYPE_CHECKING:  # annotations only: the console imports aggregate and sweep on first use
    from labconsole.aggregate import SettingAggregate
    from labconsole.sweep import Setting

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
SETTING_COLOURS = ("green+", "cyan+", "magenta+", "orange+", "yellow+", "blue+", "red+", "white")
SEED_MARKER, CENSORED_MARKER, BAND_MARKER = "•", "▲", "·"
SWEEP_LABELS = {**SERIES_LABELS, "accuracy": "acc ID", "accuracy_ood": "acc OOD (in-hole)"}  # beside each other
PCA_PR_TITLE = "PCA PR (effective dim)"  # layer 4's participation ratio (metrics.spectrum; ours)


@dataclass(frozen=True)
class Curve:
    label: str  # "" : no legend entry
    steps: tuple[float, ...]  # the x values: steps, or a swept value
    values: tuple[float, ...]
    colour: str
    marker: str = "braille"
    points: bool = False  # points only, no line between them


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
    xlabel: str = "step"
    xticks: tuple[tuple[float, str], ...] = ()  # (x, label) for a swept value that is not a number
    xlim: tuple[float, float] | None = None

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


def pca_chart(view: RunView) -> Chart:
    """Layer 4's PCA effective dimension against step (issue 16): the participation ratio and n90,
    the fewest PCs holding 90 % of the variance (metrics.spectrum), on one axis from 0."""
    curves = (_curve(view, "pca_pr", "PR", "green+"), _curve(view, "pca_n90", "n90", "cyan"))
    top = max((v for c in curves for v in c.values), default=1.0)
    return Chart("PCA layer 4 · effective dim", curves if curves[0].values else (), (), (0.0, 1.05 * top),
                 empty="no PCA spectrum in these evals")


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


# ---------------------------------------------------------------------------------------------
# Sweeps: the preset's own figure, and the curves of every setting with their seed band

FIGURES = {  # figure kind -> what the sweep view's figure panel shows
    "steps": "steps to phase C against the swept value",
    "imbalance": "acc x against acc y, R² x against R² y",
    "holes": "in-distribution against in-hole (OOD) accuracy",
    "curves": "accuracy and R² per setting",
}


def figure_kind(preset: str, swept: Sequence[str], aggregates: Sequence[SettingAggregate]) -> str:
    """Which of ``FIGURES`` the paper draws for this sweep: holes (Fig. 9) when its runs report
    in-hole accuracy, imbalance (Fig. 5) for the imbalance presets, steps to C against the swept
    value (Figs. 4, 8) when something besides the seed is swept, else the curves alone."""
    if preset.startswith("hole") or any("accuracy_ood" in a.curves for a in aggregates):
        return "holes"
    if preset.startswith("imbalance"):
        return "imbalance"
    return "steps" if swept else "curves"


@dataclass(frozen=True)
class Axis:
    """Swept paths that move together (dx and dy of "data.dx,data.dy"): one axis of the grid."""

    name: str  # "dx=dy" when they always hold the same value, else "sigma, phase_r2_min"
    paths: tuple[str, ...]


def sweep_axes(grid: Sequence[Setting], swept: Sequence[str]) -> list[Axis]:
    """The grid's axes, in the preset's order: a path joins an earlier one when their values
    determine each other across the grid (swept together), else starts its own axis."""
    column = {p: [_key(s.values.get(p)) for s in grid] for p in swept}
    groups: list[list[str]] = []
    for path in swept:
        home = next((g for g in groups if _linked(column[g[0]], column[path])), None)
        if home is None:
            groups.append([path])
        else:
            home.append(path)
    return [Axis(_axis_name(g, column), tuple(g)) for g in groups]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _linked(a: list[str], b: list[str]) -> bool:
    pairs = set(zip(a, b))
    return len(pairs) == len(set(a)) == len(set(b))


def _axis_name(paths: list[str], column: dict[str, list[str]]) -> str:
    last = [p.rsplit(".", 1)[-1] for p in paths]
    same = all(column[p] == column[paths[0]] for p in paths)
    return ("=" if same else ", ").join(last)


def steps_chart(aggregates: Sequence[SettingAggregate], swept: Sequence[str]) -> Chart:
    """Steps to phase C against the last swept axis (Figs. 4, 8): a point per seed, censored
    seeds marked at their last eval, the mean over those that got there; one colour per value of
    the other axes (sigma's three increments)."""
    axes = sweep_axes([a.setting for a in aggregates], swept)
    if not axes:
        return Chart("steps to C: nothing is swept but the seed", empty="nothing swept")
    x_axis, others = axes[-1], axes[:-1]
    xs, ticks = _x_values([a.setting.values.get(x_axis.paths[0]) for a in aggregates])
    groups: dict[str, list[int]] = {}
    for i, agg in enumerate(aggregates):
        groups.setdefault(_group_label(agg.setting.values, others), []).append(i)
    lines, points = [], []
    for (label, members), colour in zip(groups.items(), _cycle(SETTING_COLOURS, len(groups))):
        means = [(xs[i], aggregates[i].first_c.reached.mean) for i in members if aggregates[i].first_c.reached]
        seeds = [(xs[i], s) for i in members for s in aggregates[i].first_c.per_run if isinstance(s, int)]
        cens = [(xs[i], c.by) for i in members for c in aggregates[i].first_c.censored]
        lines.append(Curve(label or "mean", *_unzip(means), colour))
        points += [Curve("", *_unzip(seeds), colour, SEED_MARKER, True),
                   Curve("", *_unzip(cens), colour, CENSORED_MARKER, True)]
    pad = (max(xs) - min(xs)) * 0.05 or 0.5
    return Chart(f"steps to C · {SEED_MARKER} seed {CENSORED_MARKER} censored (last eval) — mean",
                 tuple(lines + points), xlabel=x_axis.name, xticks=ticks, xlim=(min(xs) - pad, max(xs) + pad),
                 empty="no evals yet")


def _x_values(values: list[Any]) -> tuple[list[float], tuple[tuple[float, str], ...]]:
    """The swept values as x (themselves when they are numbers, else their positions) and a
    labelled tick at each."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        ticks = {float(v): str(v) for v in values}  # a tick at every swept value, written as in the preset
        return [float(v) for v in values], tuple(sorted(ticks.items()))
    labels = list(dict.fromkeys(_key(v) for v in values))
    return [float(labels.index(_key(v))) for v in values], tuple((float(i), t) for i, t in enumerate(labels))


def _group_label(values: dict[str, Any], axes: Sequence[Axis]) -> str:
    return " ".join(f"{a.name}={_key(values.get(a.paths[0]))}" for a in axes)


def _unzip(pairs: list[tuple[float, float]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return tuple(p[0] for p in pairs), tuple(float(p[1]) for p in pairs)


def _cycle(colours: Sequence[str], n: int) -> list[str]:
    return [colours[i % len(colours)] for i in range(n)]


def band_chart(aggregates: Sequence[SettingAggregate], metrics: Sequence[str], title: str,
               ylim: tuple[float, float] | None = (0.0, 1.05)) -> Chart:
    """Per setting and metric, the mean over seeds (a line) and its min-max band (dotted lines);
    one colour per (setting, metric). The legend names the setting when there are several."""
    several = len(aggregates) > 1
    pairs = [(a, m) for a in aggregates for m in metrics if m in a.curves]
    curves = []
    for (agg, metric), colour in zip(pairs, _cycle(SETTING_COLOURS, len(pairs))):
        c = agg.curves[metric]
        name = SWEEP_LABELS.get(metric, metric) if len(metrics) > 1 else ""
        label = " ".join(t for t in ((agg.setting.label or "") if several else "", name) if t) or "mean"
        curves += [Curve(label, c.steps, c.mean, colour),
                   Curve("", c.steps, c.lo, colour, BAND_MARKER), Curve("", c.steps, c.hi, colour, BAND_MARKER)]
    if ylim is None:
        ylim = _r2_limits(curves)
    return Chart(f"{title} · mean, {BAND_MARKER} min-max over seeds", tuple(curves), (), ylim)


def sweep_figure(kind: str, aggregates: Sequence[SettingAggregate], swept: Sequence[str]) -> tuple[Chart, ...]:
    """The charts of the preset's own figure (``FIGURES``); none for ``curves`` (drawn anyway).

    Raises:
        ValueError: an unknown kind.
    """
    if kind == "steps":
        return (steps_chart(aggregates, swept),)
    if kind == "imbalance":
        return (band_chart(aggregates, ("accuracy_x", "accuracy_y"), "acc x vs acc y"),
                band_chart(aggregates, ("r2_x", "r2_y"), "R² x vs R² y", None))
    if kind == "holes":
        return (band_chart(aggregates, ("accuracy", "accuracy_ood"), "ID vs OOD accuracy"),)
    if kind == "curves":
        return ()
    raise ValueError(f"unknown figure {kind!r}; expected one of: {', '.join(FIGURES)}")


def sweep_curves(aggregates: Sequence[SettingAggregate]) -> tuple[Chart, Chart, Chart]:
    """Accuracy, mean R² and layer 4's PCA participation ratio of every setting, each with its seed
    band (any sweep; the PR chart has no points for runs written before issue 16)."""
    return (band_chart(aggregates, ("accuracy",), "accuracy"),
            band_chart(aggregates, ("r2_mean",), "R² mean", None),
            band_chart(aggregates, ("pca_pr",), PCA_PR_TITLE, _pr_limits(aggregates)))


def _pr_limits(aggregates: Sequence[SettingAggregate]) -> tuple[float, float]:
    """From 0 (a PR is >= 1) to a little above the largest band value."""
    top = max((max(c.hi) for a in aggregates if (c := a.curves.get("pca_pr")) is not None and c.hi), default=1.0)
    return (0.0, 1.05 * top)
