"""The overlap table of App. A.5 / Fig. 7b: how much neighbouring bumps overlap, per sigma and
increment. No training; ``labconsole --batch presets/overlap.toml`` prints it."""
from __future__ import annotations

from rich.table import Table

from labconsole.presets import OverlapConfig
from model.data import neighbour_overlap


def overlap_table(cfg: OverlapConfig, title: str = "") -> Table:
    """Rows: increments; columns: sigmas; cells: the normalised overlap of two neighbours."""
    table = Table(title=f"neighbour overlap (App. A.5{', ' + title if title else ''})")
    table.add_column("increment")
    for sigma in cfg.sigmas:
        table.add_column(f"sigma {sigma:g}", justify="right")
    for inc in cfg.increments:
        cells = [f"{neighbour_overlap(s, inc, cfg.size, cfg.centre):.3f}" for s in cfg.sigmas]
        table.add_row(f"{inc:g}", *cells)
    return table
