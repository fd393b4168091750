"""A run's PCA spectrum of layer 4 over training (issue 16; follow-up paper, Figs. 2-3), into
``<report>/runs/<run id>/pca.*``:

    left   the variance share of the top 4 PCs and the participation ratio (the effective
           dimension, ours: ``metrics.spectrum``) against the training step; n90 in the legend
    right  the top-15 explained-variance ratios at the run's last eval with a spectrum, log scale

A painter like ``figures.run``'s: made once, refilled for every run. Drawn for runs whose evals
carry the spectrum (``Eval.pca_top4``, written since issue 16).
"""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labconsole.figures.base import STEP_TICKS, TWO_COLUMNS, new_figure
from labconsole.runview import RunView


def has_spectrum(view: RunView) -> bool:
    """Whether any eval of the run carries a PCA spectrum."""
    return any(e.pca_top4 is not None for e in view.evals)


class RunSpectrum:
    """Top-4 share and participation ratio over steps; the top-15 ratios at the last eval."""

    def __init__(self) -> None:
        self.fig, axes = new_figure(TWO_COLUMNS, 2.2, 1, 2, margins=(0.45, 0.45, 0.35, 0.3), wspace=0.45)
        self.steps_ax, self.ratios_ax = axes[0]
        self.pr_ax = self.steps_ax.twinx()  # the PR is a dimension (1 .. N - 1), the share a fraction
        self.top4 = self.steps_ax.plot([], [], color="C0", marker="o", ms=2, label="top-4 share")[0]
        self.pr = self.pr_ax.plot([], [], color="C1", marker="s", ms=2, label="participation ratio")[0]
        self.steps_ax.set_xlabel("training step")
        self.steps_ax.set_ylabel("variance share of the top 4 PCs", color="C0")
        self.pr_ax.set_ylabel("participation ratio", color="C1")
        self.steps_ax.set_ylim(0, 1.02)
        self.steps_ax.xaxis.set_major_locator(MaxNLocator(6))
        self.steps_ax.xaxis.set_major_formatter(STEP_TICKS)
        self.ratios_ax.set_xlabel("principal component")
        self.ratios_ax.set_ylabel("explained variance ratio")
        self.ratios_ax.set_yscale("log")
        self.ratios_ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        self.bars = None
        self.legend = None
        self.title = self.fig.text(0.01, 0.99, "", fontsize=7, ha="left", va="top")

    def draw(self, view: RunView, title: str) -> Figure:
        """The figure, filled with ``view``'s evals (``has_spectrum(view)``)."""
        evals = [e for e in view.evals if e.pca_top4 is not None]
        steps = [e.step for e in evals]
        self.top4.set_data(steps, [e.pca_top4 for e in evals])
        self.pr.set_data(steps, [e.pca_pr for e in evals])
        for ax in (self.steps_ax, self.pr_ax):
            ax.relim()
            ax.autoscale_view(scaley=ax is self.pr_ax)
        last = evals[-1]
        if self.legend is not None:
            self.legend.remove()
        self.top4.set_label(f"top-4 share (n90 {last.pca_n90} at the end)")
        # Above the axes, not inside: the two curves share the panel on two scales, and the PR
        # falling to a few lands wherever a legend inside would sit (it covered it at lower right).
        self.legend = self.steps_ax.legend(handles=[self.top4, self.pr], loc="lower left", bbox_to_anchor=(0, 1.0),
                                           ncol=2, fontsize=6, frameon=False, borderaxespad=0.2)
        if self.bars is not None:
            self.bars.remove()
        ratios = last.pca_ratios or []
        self.bars = self.ratios_ax.bar(range(1, len(ratios) + 1), ratios, color="C0")
        self.ratios_ax.relim()
        self.ratios_ax.autoscale_view()
        self.ratios_ax.set_title(f"at step {last.step:,}", fontsize=7)
        self.title.set_text(title)
        return self.fig
