"""The percolation figure (the follow-up's Figs. 6c, 14b): the share of the data in the largest
cluster against lambda, one line per sigma with its ± std band over the draws, one panel per
overlap threshold. Takes a ``labconsole.percolation.PercolationTable``.

Ours: lambda on a log axis (the grid is dense at small lambda, where wide bumps percolate); the
band is ± one standard deviation over the draws, clipped to [0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from labconsole.figures.base import ONE_COLUMN, TWO_COLUMNS, colors, new_figure, save, style

PAPER_PANELS = {0.005: "Fig. 6c", 0.05: "Fig. 14b"}  # the follow-up's figure of each threshold


def percolation_figure(table) -> Figure:
    """One panel per threshold, one line per sigma: the mean share against lambda, ± std band."""
    cfg, shares = table.cfg, table.shares  # shares: (S, T, L, D)
    n_panels = len(cfg.thresholds)
    width = ONE_COLUMN if n_panels == 1 else min(TWO_COLUMNS, 2.4 * n_panels)
    fig, axes = new_figure(width, 2.5, 1, n_panels, sharey=True)
    lams = np.asarray(cfg.lambdas)
    palette = colors(len(cfg.sigmas))
    for ti, (ax, t) in enumerate(zip(axes[0], cfg.thresholds)):
        for si, (sigma, color) in enumerate(zip(cfg.sigmas, palette)):
            mean, std = shares[si, ti].mean(axis=1), shares[si, ti].std(axis=1)
            ax.plot(lams, mean, color=color, marker="o", ms=2, label=f"σ = {sigma:g}")
            ax.fill_between(lams, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=color, alpha=0.2, lw=0)
        paper = PAPER_PANELS.get(t)
        ax.set_title(f"overlap > {t:g}" + (f" ({paper})" if paper else ""))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.01, 0.1, 1: not 10^-2
        ax.set_xlabel("λ, the fraction of sites kept")
        ax.set_ylim(0, 1.03)
    of = "kept sites" if cfg.denominator == "kept" else "all sites"
    axes[0][0].set_ylabel(f"largest cluster / {of}")
    axes[0][0].legend(loc="lower right")
    fig.suptitle(f"d = {cfg.d:g} ({table.n_sites:,} sites), overlap from {cfg.overlap}, "
                 f"mean ± std over {cfg.draws} draws", fontsize=6)
    return fig


def write_percolation_figure(table, base: Path) -> list[Path]:
    """Draw ``percolation_figure`` in the report style and save it as ``base.png`` and ``base.pdf``."""
    with style():
        return save(percolation_figure(table), base)
