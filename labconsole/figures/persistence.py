"""A run's H1 persistence over training (issue 16; follow-up paper, Figs. 2-3: "H1 shows two points,
as for a torus"), into ``<report>/runs/<run id>/``:

    persistence.*     left: the three longest-lived H1 bars against the training step, relative to
                      the cloud's diameter, and the loops read at each eval (``n_long``); right: the
                      H1 diagram (birth, death) at the run's last eval
    persistence.csv   the numbers behind it, one row an eval: step, points, p1, p2, p3, n_long

The point cloud is layer 4's top PCs that the samples file keeps (``pcs``, written since the
persistence diagrams landed: older runs have none and get no figure); the diagram is
``metrics.persistence`` (GUDHI, the ``topology`` extra: without it the report says how to install
it and draws the rest). Cost: ~0.1 s an eval of 100 points.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labconsole.figures.base import STEP_TICKS, TWO_COLUMNS, new_figure
from labconsole.rundir import samples_path
from labconsole.runview import RunView
from labconsole.samples import read_samples
from metrics.persistence import H1, h1_bars

TOP = 3  # bars drawn over steps: a torus's two loops and the first that is not one


def run_diagrams(view: RunView, run_dir: Path) -> list[tuple[int, H1]]:
    """(step, H1) for every eval whose samples file keeps PC scores with enough points.

    Raises ImportError (with how to install GUDHI) when the diagram cannot be computed at all."""
    out = []
    for e in view.evals:
        path = samples_path(run_dir, e.step)
        try:
            pcs = read_samples(path, e.step).pcs
        except (OSError, ValueError):
            continue  # no readable samples for this eval: the figure skips it
        if pcs is None or np.isfinite(pcs).all(axis=1).sum() < 4:
            continue
        out.append((e.step, h1_bars(pcs)))
    return out


def write_csv(path: Path, diagrams: list[tuple[int, H1]]) -> Path:
    """The numbers behind the figure: one row an eval."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "n_points", *(f"p{i + 1}" for i in range(TOP)), "n_long"])
        for step, h in diagrams:
            p = list(h.persistence[:TOP]) + [0.0] * (TOP - min(TOP, len(h.persistence)))
            w.writerow([step, h.n_points, *(f"{v:.4f}" for v in p), h.n_long])
    return path


class RunPersistence:
    """The top bars over steps and the last eval's diagram (a painter, refilled for every run)."""

    def __init__(self) -> None:
        self.fig, axes = new_figure(TWO_COLUMNS, 2.2, 1, 2, margins=(0.45, 0.1, 0.35, 0.3), wspace=0.3)
        self.steps_ax, self.diagram_ax = axes[0]
        self.lines = [self.steps_ax.plot([], [], color=f"C{i}", marker="o", ms=2, label=f"bar {i + 1}")[0]
                      for i in range(TOP)]
        self.steps_ax.set_xlabel("training step")
        self.steps_ax.set_ylabel("H1 persistence / diameter")
        self.steps_ax.set_ylim(0, 1)
        self.steps_ax.xaxis.set_major_locator(MaxNLocator(6))
        self.steps_ax.xaxis.set_major_formatter(STEP_TICKS)
        self.steps_ax.legend(loc="center right", fontsize=6)  # the loop counts run along the top
        self.diagram_ax.set_xlabel("birth / diameter")
        self.diagram_ax.set_ylabel("death / diameter")
        self.diagram_ax.plot([0, 1], [0, 1], color="0.6", lw=0.6)
        self.diagram_ax.set_xlim(0, 1)
        self.diagram_ax.set_ylim(0, 1)
        self.points = self.diagram_ax.scatter([], [], s=6, color="C0")
        self.labels: list = []
        self.title = self.fig.text(0.01, 0.99, "", fontsize=7, ha="left", va="top")

    def draw(self, diagrams: list[tuple[int, H1]], title: str) -> Figure:
        """The figure for one run's ``run_diagrams`` (at least one)."""
        steps = [s for s, _ in diagrams]
        for i, line in enumerate(self.lines):
            line.set_data(steps, [h.persistence[i] if len(h.persistence) > i else 0.0 for _, h in diagrams])
        self.steps_ax.relim()
        self.steps_ax.autoscale_view(scaley=False)
        for artist in self.labels:
            artist.remove()
        # The loops read at each eval, above its point: a torus reads 2, a circle 1, a flat sheet 0.
        self.labels = [self.steps_ax.text(s, 0.97, str(h.n_long), fontsize=5, ha="center", va="top", color="0.3",
                                          transform=self.steps_ax.get_xaxis_transform()) for s, h in diagrams]
        step, last = diagrams[-1]
        self.points.set_offsets(last.bars / last.diameter if len(last.bars) else np.zeros((0, 2)))
        self.diagram_ax.set_title(f"H1 at step {step:,}: {last.n_long} loop(s), {last.n_points} points",
                                  fontsize=7)
        self.title.set_text(title)
        return self.fig
