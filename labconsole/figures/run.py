"""One run's figures (issue 13), into ``<report>/runs/<run id>/``:

    curves    accuracy, acc_x, acc_y with the ceiling; R² x, y, mean with the step-0 baseline
    samples   the paper's Fig. 3: rows = the first eval, each phase change, the last eval;
              columns = a fixed set of labels, the target marked
    umap      the last eval's layer-4 embedding (UMAP-3D), two projections, coloured by x and by y
    pca       layer 4's PCA spectrum over steps and at the last eval (``figures.spectrum``; issue 16)
    persistence  H1 persistence of layer 4's top PCs over steps, and the last diagram
              (``figures.persistence``; with the ``topology`` extra)
    regions   the last eval's held-out samples, a row per region (``figures.regions``)

A report draws these for many runs, so each kind is a *painter*: its figure, axes, ticks, legend
and colorbars are made once and refilled for every run (``RunFigures``); a run pays for drawing
and saving only (bench/report_cost.py times it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from labconsole.figures.base import ONE_COLUMN, RUN_DPI, STEP_TICKS, TWO_COLUMNS, Mosaic, new_figure, save
from labconsole.figures.persistence import RunPersistence, run_diagrams, write_csv
from labconsole.figures.regions import RunRegions, has_regions
from labconsole.figures.spectrum import RunSpectrum, has_spectrum
from labconsole.rundir import samples_path
from labconsole.runview import RunView
from labconsole.samples import Samples, read_samples

GRID_COLUMNS = 8  # labels per row of the samples grid (Fig. 3)
GRID_ROWS = 8  # at most: the first eval, the phase changes, the last eval
CURVE_PANELS = (("accuracy", "accuracy_x", "accuracy_y"), ("r2_mean", "r2_x", "r2_y"))  # colours C0, C1, C2
GRID_MARGINS = (0.72, 0.04, 0.66, 0.2)  # inches: row labels, -, rotated column labels + their name, title


class RunFigures:
    """The per-run figures; ``write`` draws one run's into a folder."""

    def __init__(self) -> None:
        self.curves = RunCurves()
        self.samples = RunSamples()
        self.umap = RunUmap()
        self.spectrum: RunSpectrum | None = None  # made at the first run with a spectrum
        self.persistence: RunPersistence | None = None  # made at the first run with PC scores
        self.regions: RunRegions | None = None  # made at the first run with held-out regions
        self.no_topology: str | None = None  # why no diagram can be computed (said once a report)

    def write(self, view: RunView, run_dir: Path, out: Path) -> tuple[list[Path], list[str]]:
        """The run's curves, samples grid, UMAP embedding and PCA spectrum into ``out``; (files, notes)."""
        name = run_dir.name
        files = save(self.curves.draw(view, name), out / "curves", RUN_DPI)
        if has_spectrum(view):
            self.spectrum = self.spectrum or RunSpectrum()
            files += save(self.spectrum.draw(view, name), out / "pca", RUN_DPI)
        files += self._persistence(view, run_dir, out)
        rows, phases, notes = grid_rows(view, run_dir)
        if rows:
            files += save(self.samples.draw(rows, phases, name), out / "samples", RUN_DPI)
        last = rows[-1] if rows and rows[-1].step == view.evals[-1].step else read_eval(run_dir, view.evals[-1])
        if isinstance(last, Samples) and last.embedding is not None and np.isfinite(last.embedding).all():
            files += save(self.umap.draw(last, name), out / "umap", RUN_DPI)
        elif isinstance(last, Samples):
            notes.append(f"{name}: its last eval's samples hold no usable UMAP embedding (too few samples): "
                         f"no umap figure")
        if has_regions(last, view.evals[-1].regions):
            self.regions = self.regions or RunRegions()
            files += save(self.regions.draw(last, view.evals[-1].regions, name), out / "regions", RUN_DPI)
        return files, notes

    def _persistence(self, view: RunView, run_dir: Path, out: Path) -> list[Path]:
        """The H1 figure and its CSV where the run's samples keep PC scores; [] otherwise, and
        [] for every run once GUDHI turned out missing (``notes`` says so once)."""
        if self.no_topology is not None:
            return []
        try:
            diagrams = run_diagrams(view, run_dir)
        except ImportError as exc:
            self.no_topology = f"no persistence diagrams: {exc}"
            return []
        if not diagrams:
            return []
        self.persistence = self.persistence or RunPersistence()
        files = save(self.persistence.draw(diagrams, run_dir.name), out / "persistence", RUN_DPI)
        return files + [write_csv(out / "persistence.csv", diagrams)]


# ---------------------------------------------------------------------------------------------
# Curves


class RunCurves:
    """Accuracy, acc_x, acc_y with the ceiling; R² x, y, mean with the step-0 baseline; the
    steps where the phase changed as dotted lines marked with the new phase. A colour means the
    same in both panels (overall, x, y), so one legend serves both: legends and tick labels are
    most of what this figure costs to draw."""

    def __init__(self) -> None:
        self.fig, axes = new_figure(TWO_COLUMNS, 2.2, 1, 2, margins=(0.45, 0.1, 0.35, 0.38), wspace=0.22)
        self.axes = axes[0]
        self.lines = {m: ax.plot([], [], color=f"C{i}", marker="o", ms=2)[0]
                      for ax, panel in zip(self.axes, CURVE_PANELS) for i, m in enumerate(panel)}
        self.ceiling = self.axes[0].plot([], [], color="k", ls="--", lw=0.8)[0]
        self.baseline = self.axes[1].plot([], [], color="k", ls="--", lw=0.8)[0]
        for ax, ylabel in zip(self.axes, ("accuracy", "R² of the UMAP-3D embedding")):
            ax.set_xlabel("training step")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(6))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            ax.xaxis.set_major_formatter(STEP_TICKS)
        keys = [Line2D([], [], color=f"C{i}", marker="o", ms=2, label=label)
                for i, label in enumerate(("accuracy / R² mean", "x", "y"))]
        keys.append(Line2D([], [], color="k", ls="--", lw=0.8, label="ceiling / step-0 R²"))
        self.fig.legend(handles=keys, loc="upper right", ncols=4, borderaxespad=0.2)
        self.title = self.fig.text(0.01, 0.99, "", fontsize=7, ha="left", va="top")
        self.marks: list = []  # the phase changes of the run drawn last

    def draw(self, view: RunView, title: str) -> Figure:
        """The figure, filled with ``view``'s evals."""
        evals = view.evals
        steps = [e.step for e in evals]
        for metric, line in self.lines.items():
            line.set_data(steps, [getattr(e, metric) for e in evals])
        self.ceiling.set_data(steps, [e.ceiling for e in evals])
        base = view.baseline_r2
        self.baseline.set_data(*(([steps[0], steps[-1]], [base, base]) if base is not None else ([], [])))
        for artist in self.marks:
            artist.remove()
        self.marks = []
        for i in range(1, len(evals)):
            if evals[i].phase != evals[i - 1].phase:
                for ax in self.axes:
                    self.marks += [ax.axvline(steps[i], color="0.6", ls=":", lw=0.6),
                                   ax.text(steps[i], 1.0, evals[i].phase, transform=ax.get_xaxis_transform(),
                                           fontsize=6, ha="center", va="bottom", color="0.4")]
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
        self.title.set_text(title)
        return self.fig


# ---------------------------------------------------------------------------------------------
# Samples grid (Fig. 3)


def phase_change_evals(view: RunView) -> list[int]:
    """Indices of the evals the samples grid shows: the first, each where the phase changed
    from the eval before, and the last (at most GRID_ROWS: the first changes are kept)."""
    evals = view.evals
    picks = [0] + [i for i in range(1, len(evals)) if evals[i].phase != evals[i - 1].phase]
    return sorted(set(picks[:GRID_ROWS - 1] + [len(evals) - 1]))


def read_eval(run_dir: Path, e) -> Samples | str:
    """The samples of eval ``e``, or one line saying why they cannot be read."""
    path = run_dir / e.samples_path if e.samples_path else samples_path(run_dir, e.step)
    try:
        return read_samples(path, e.step)
    except FileNotFoundError:
        return f"{run_dir.name}: no samples file for step {e.step:,} ({path.name})"
    except (OSError, ValueError) as exc:
        return f"{run_dir.name}: samples of step {e.step:,} unreadable ({exc})"


def grid_rows(view: RunView, run_dir: Path) -> tuple[list[Samples], list[str], list[str]]:
    """(the samples of the grid's rows, their phase letters, notes on rows left out)."""
    rows, phases, notes = [], [], []
    for i in phase_change_evals(view):
        s = read_eval(run_dir, view.evals[i])
        if isinstance(s, Samples):
            rows.append(s)
            phases.append(view.evals[i].phase)
        else:
            notes.append(f"{s}: left out of its samples grid")
    return rows, phases, notes


def grid_columns(s: Samples, n: int = GRID_COLUMNS) -> np.ndarray:
    """Target labels (n, 2) for the grid's columns: in-distribution labels spread over the
    canvas in reading order, and two in-hole labels last when the eval has a hole."""
    ood = s.ood if s.ood is not None else np.zeros(len(s), dtype=bool)
    n_ood = min(2, int(ood.sum()))
    picked: list[int] = []
    for mask, k in ((~ood, n - n_ood), (ood, n_ood)):
        idx = np.flatnonzero(mask)
        if len(idx) and k:
            idx = idx[np.lexsort((s.labels[idx, 0], s.labels[idx, 1]))]  # by y, then x: reading order
            picked += list(idx[np.linspace(0, len(idx) - 1, min(k, len(idx))).round().astype(int)])
    return s.labels[picked]


def mosaic(rows: Sequence[Samples], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The grid as one image (NaN between tiles), the targets' (x, y) in it, and the tile pitch.
    Each row shows, per target, its sample whose label is nearest (the same label: an eval's
    labels are drawn from ``eval.seed``, so every eval of a run has them)."""
    h, w = rows[0].images.shape[1:]
    pitch = h + max(1, h // 16)
    image = np.full((len(rows) * pitch - pitch + h, len(targets) * pitch - pitch + w), np.nan, dtype=np.float32)
    marks = []
    for r, s in enumerate(rows):
        for c, t in enumerate(targets):
            i = int(np.argmin(((s.labels - t) ** 2).sum(axis=1)))
            image[r * pitch:r * pitch + h, c * pitch:c * pitch + w] = s.images[i]
            marks.append((c * pitch + t[0], r * pitch + t[1]))  # canvas (x, y) = (column, row), DESIGN §5
    return image, np.array(marks), pitch


class RunSamples(Mosaic):
    """Fig. 3 as one image (``figures.base.Mosaic``)."""

    def __init__(self) -> None:
        super().__init__(ONE_COLUMN, GRID_MARGINS)
        self.ax.set_xlabel("target (x, y), marked +", fontsize=6)

    def draw(self, rows: Sequence[Samples], phases: Sequence[str], title: str) -> Figure:
        """The grid of ``rows`` (one eval each, ``phases`` their phase letters)."""
        targets = grid_columns(rows[-1])
        image, marks, pitch = mosaic(rows, targets)
        self.show(image, marks)
        half = rows[0].images.shape[1] / 2
        self.ax.set_xticks([c * pitch + half for c in range(len(targets))],
                           [f"({x:g}, {y:g})" for x, y in targets], rotation=90, fontsize=5)
        self.ax.set_yticks([r * pitch + half for r in range(len(rows))],
                           [f"step {s.step:,} ({p})" for s, p in zip(rows, phases)], fontsize=5)
        self.title.set_text(title)
        return self.fig


# ---------------------------------------------------------------------------------------------
# UMAP embedding


class RunUmap:
    """The last eval's layer-4 embedding in two projections, coloured by the target x (top) and
    y (bottom): an ordered manifold shows smooth gradients in both (phase C)."""

    def __init__(self) -> None:
        self.fig, axes = new_figure(ONE_COLUMN, 3.3, 2, 2, margins=(0.3, 0.05, 0.3, 0.25), wspace=0.25,
                                    hspace=0.35)
        self.axes = axes
        self.dots = [[ax.scatter([0.0], [0.0], c=[0.0], cmap="viridis", s=3, lw=0, rasterized=True)
                      for ax in row] for row in axes]  # rasterized: 500 dots are one image in the PDF
        for r, name in enumerate(("x", "y")):
            self.fig.colorbar(self.dots[r][0], ax=axes[r].tolist(), label=f"target {name}", shrink=0.9,
                              ticks=MaxNLocator(4))
            for ax in axes[r]:
                ax.set_xticks([])
                ax.set_yticks([])
        self.title = self.fig.suptitle("", fontsize=6)

    def draw(self, s: Samples, title: str) -> Figure:
        """The figure, filled with ``s``'s embedding (``s.embedding`` is not None)."""
        e = s.embedding
        pairs = ((0, 1), (0, 2) if e.shape[1] > 2 else (1, 0))
        for r in range(2):
            values = s.labels[:, r]
            for c, (i, j) in enumerate(pairs):
                dots, ax = self.dots[r][c], self.axes[r, c]
                dots.set_offsets(e[:, [i, j]])
                dots.set_array(values)
                dots.set_clim(values.min(), values.max())
                ax.set_xlim(*_padded(e[:, i]))
                ax.set_ylim(*_padded(e[:, j]))
                ax.set_xlabel(f"UMAP {i + 1}")
                ax.set_ylabel(f"UMAP {j + 1}")
        self.title.set_text(f"{title}: layer 4 at step {s.step:,}")
        return self.fig


def _padded(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (hi - lo) or 0.5
    return lo - pad, hi + pad
