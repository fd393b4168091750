"""The preset's own figures, chosen from what the sweep swept (issue 13):

    steps-to-c   increments / sigma: steps to phase C against the swept value (Fig. 4, 8)
    imbalance    dx != dy: acc_x against acc_y, R² x against R² y over steps (Fig. 5)
    id-vs-ood    holes: in-distribution against in-hole accuracy over steps (Fig. 9)
    curves       any sweep: accuracy and R² per setting, mean with its min-max seed band

Each function takes a ``report.ReportData`` and returns its figure (None when it does not apply).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labconsole.aggregate import SettingAggregate, curve
from labconsole.figures.base import ONE_COLUMN, STEP_TICKS, TWO_COLUMNS, band, colors, new_figure, panel_title
from labconsole.rundir import CONFIG


@dataclass
class StepsDrawn:
    """What the steps-to-C figure drew: points of runs that reached C, and censored runs."""

    reached: int = 0
    censored: int = 0


def steps_axis(data) -> tuple[str, list[str], str] | None:
    """(the swept key on x, the keys whose values make separate lines, x's axis label), or None
    when neither sigma nor an increment is swept. dx and dy swept together count as one key."""
    swept = list(data.swept)
    x = next((k for k in ("data.sigma", "data.dx", "data.dy") if k in swept), None)
    if x is None:
        return None
    keys = [k for k in swept if k != x and not _twin(data, x, k)]
    name = {"data.sigma": "bump width sigma", "data.dx": "increment dx", "data.dy": "increment dy"}[x]
    if x in ("data.dx", "data.dy") and any(_twin(data, x, k) for k in swept if k != x):
        name = "increment dx = dy"
    return x, keys, name


def _twin(data, a: str, b: str) -> bool:
    """Whether the increment keys ``a`` and ``b`` hold the same value in every setting (dx = dy)."""
    pair = {a, b} == {"data.dx", "data.dy"}
    return pair and all(s.values.get(a) == s.values.get(b) for s in data.grid)


def _line_label(data, agg: SettingAggregate, keys: list[str]) -> str:
    parts = []
    for k in keys:
        if k == "data.dy" and "data.dx" in keys and _twin(data, "data.dx", "data.dy"):
            continue
        name = "dx=dy" if k == "data.dx" and "data.dy" in keys and _twin(data, k, "data.dy") else k.rsplit(".", 1)[-1]
        parts.append(f"{name}={agg.setting.values.get(k)}")
    return " ".join(parts)


def steps_figure(data) -> tuple[Figure, StepsDrawn] | None:
    """Steps to phase C against the swept value: a point per seed, the mean over the seeds that
    reached C, and each censored run at its last eval, drawn as an open triangle "not reached by
    S" (never dropped). Left: the first eval at C; middle: the step from which C held; right: the
    step from which accuracy held at >= phase_accuracy_frac x ceiling (C without its UMAP half).
    One line per value of the other swept keys (sigma at several increments: a line per increment)."""
    axis = steps_axis(data)
    if axis is None:
        return None
    x_key, keys, x_name = axis
    lines: dict[str, list[SettingAggregate]] = {}
    for agg in data.aggregates:
        lines.setdefault(_line_label(data, agg, keys), []).append(agg)
    xs = sorted({float(a.setting.values[x_key]) for a in data.aggregates})
    jitter = 0.03 * (min(np.diff(xs)) if len(xs) > 1 else 1.0)  # seeds side by side, not on top
    fig, axes = new_figure(TWO_COLUMNS, 2.4, 1, 3, margins=(0.5, 0.1, 0.4, 0.25), wspace=0.12, sharey=True)
    drawn = StepsDrawn()
    panels = (("first_c", "first eval at phase C"), ("c_held", "phase C held from"),
              ("acc_held", "accuracy >= frac x ceiling from"))
    for ax, (attr, title) in zip(axes[0], panels):
        for color, (label, aggs) in zip(colors(len(lines)), lines.items()):
            _steps_line(ax, aggs, x_key, attr, color, label, jitter, drawn)
        ax.set_title(title)
        ax.set_xlabel(x_name)
        ax.yaxis.set_major_formatter(STEP_TICKS)
    axes[0, 0].set_ylabel("training step")
    axes[0, 0].legend(handles=_steps_legend(lines), loc="best")
    return fig, drawn


def _steps_line(ax, aggs, x_key, attr, color, label, jitter, drawn: StepsDrawn) -> None:
    reached, censored, means = [], [], []
    for agg in sorted(aggs, key=lambda a: float(a.setting.values[x_key])):
        x = float(agg.setting.values[x_key])
        st = getattr(agg, attr)
        runs = [s for s in st.per_run if s is not None]
        for i, s in enumerate(runs):
            xi = x + jitter * (i - (len(runs) - 1) / 2)
            (reached if isinstance(s, int) else censored).append((xi, s if isinstance(s, int) else s.by))
        if st.reached is not None:
            means.append((x, st.reached.mean))
    if means:
        ax.plot(*zip(*means), color=color, marker="o", ms=3, label=label)
    if reached:
        ax.scatter(*zip(*reached), s=9, color=color, alpha=0.6, lw=0)
    if censored:
        ax.scatter(*zip(*censored), s=22, marker="^", facecolors="none", edgecolors=color, lw=0.8, gid="censored")
    drawn.reached += len(reached)
    drawn.censored += len(censored)


def _steps_legend(lines: dict) -> list:
    handles = [Line2D([], [], color=c, marker="o", ms=3, label=l) for c, l in zip(colors(len(lines)), lines) if l]
    return handles + [Line2D([], [], ls="", marker="o", ms=3, color="0.4", alpha=0.6, label="one seed"),
                      Line2D([], [], ls="", marker="^", ms=4, mfc="none", color="0.4",
                             label="not reached by S (censored)")]


def _config_of(run_dir: Path | None):
    from labconsole.runconfig import load_config

    if run_dir is None or not (run_dir / CONFIG).is_file():
        return None
    try:
        return load_config(run_dir)
    except (OSError, ValueError):
        return None  # an unreadable config leaves the figure out, the CSVs have the numbers


def imbalanced(data) -> bool:
    """Whether some run learns a grid with dx != dy (the imbalance presets, Fig. 5)."""
    seen = set()
    for member, run_dir in zip(data.members, data.run_dirs):
        if member.setting in seen or member.view is None or not member.view.evals:
            continue
        seen.add(member.setting)
        cfg = _config_of(run_dir)
        if cfg is not None and cfg.data.dx != cfg.data.dy:
            return True
    return False


def imbalance_figure(data) -> Figure | None:
    """acc_x against acc_y and R² x against R² y, one trajectory per run coloured by step: a
    coupled learner moves along the diagonal, a factorized one along an axis first (Fig. 5)."""
    if not imbalanced(data):
        return None
    runs = [m for m in data.members if m.view is not None and m.view.evals]
    top = max(m.view.evals[-1].step for m in runs) or 1
    fig, axes = new_figure(TWO_COLUMNS, 3.0, 1, 2)
    markers = dict(zip((s.label for s in data.grid), "osD^v<>ph*"))
    for ax, (mx, my, name) in zip(axes[0], (("accuracy_x", "accuracy_y", "accuracy"), ("r2_x", "r2_y", "R²"))):
        for m in runs:
            pts = np.array([(getattr(e, mx), getattr(e, my), e.step) for e in m.view.evals], dtype=float)
            ax.plot(pts[:, 0], pts[:, 1], color="0.75", lw=0.6, zorder=1)
            dots = ax.scatter(pts[:, 0], pts[:, 1], c=pts[:, 2], cmap="viridis", vmin=0, vmax=top, s=8,
                              marker=markers.get(m.setting, "o"), zorder=2, lw=0)
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=0.6)  # x and y learnt alike
        ax.set_xlabel(f"{name} x")
        ax.set_ylabel(f"{name} y")
        ax.set_aspect("equal", adjustable="datalim")
    if len(data.grid) > 1:
        axes[0, 0].legend(handles=[Line2D([], [], ls="", marker=markers.get(s.label, "o"), color="0.4", label=s.label)
                                   for s in data.grid], loc="upper left")
    fig.colorbar(dots, ax=axes[0].tolist(), label="training step", format=STEP_TICKS, shrink=0.8)
    return fig


def ood_figure(data) -> Figure | None:
    """In-distribution and in-hole (OOD) accuracy over steps, per setting with its seed band,
    each beside its ceiling (the detector on true images of the same labels) (Fig. 9)."""
    aggs = [a for a in data.aggregates if "accuracy_ood" in a.curves]
    if not aggs:
        return None
    ncols = min(len(aggs), 3)
    nrows = math.ceil(len(aggs) / ncols)
    fig, axes = new_figure(ONE_COLUMN if ncols == 1 else TWO_COLUMNS, 2.3 * nrows, nrows, ncols, sharey=True)
    for ax, agg in zip(axes.flat, aggs):
        views = [m.view for m in agg.members]
        band(ax, agg.curves["accuracy"], "C0", "in distribution")
        band(ax, agg.curves["accuracy_ood"], "C3", "in the hole (OOD)")
        for metric, color, label in (("ceiling", "C0", "ceiling"), ("ceiling_ood", "C3", "OOD ceiling")):
            c = curve(views, metric)
            if c is not None:
                ax.plot(c.steps, c.mean, color=color, ls=":", lw=0.8, label=label)
        panel_title(ax, agg.setting.label or data.preset, fig.get_figwidth() / ncols - 0.3)
        ax.set_xlabel("training step")
        ax.xaxis.set_major_formatter(STEP_TICKS)
    for ax in axes.flat[len(aggs):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(loc="best")
    return fig


CURVE_PANELS = (("accuracy", "accuracy"), ("r2_mean", "mean R² (UMAP-3D)"),
                ("pca_pr", "PCA participation ratio"))  # the last only for runs with a PCA spectrum (issue 16)


def curves_figure(data) -> Figure | None:
    """Accuracy, mean R² and (when the runs have it) layer 4's PCA participation ratio over steps
    per setting: the mean over seeds with its min-max band."""
    aggs = [a for a in data.aggregates if "accuracy" in a.curves]
    if not aggs:
        return None
    panels = [p for p in CURVE_PANELS if p[0] != "pca_pr" or any("pca_pr" in a.curves for a in aggs)]
    fig, axes = new_figure(TWO_COLUMNS, 2.4, 1, len(panels))
    for ax, (metric, ylabel) in zip(axes[0], panels):
        for color, agg in zip(colors(len(aggs)), aggs):
            if metric in agg.curves:
                band(ax, agg.curves[metric], color, agg.setting.label or data.preset)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_formatter(STEP_TICKS)
    if len(aggs) > 1:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right upper")
    return fig
