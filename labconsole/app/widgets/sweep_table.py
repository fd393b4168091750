"""The sweep view's settings table: one row per setting of the grid, its numbers over seeds.

The cells are formatted here from ``labconsole.aggregate``'s results (``setting_row``), so what
the table says is what the batch summary and the report compute. Steps to a phase read
``mean [min-max]`` over the seeds that got there, then the censored ones as ``> S ×n`` (not
reached by step S, their last eval; counted, never dropped).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from textual.widgets import DataTable

if TYPE_CHECKING:  # annotations only: the console imports aggregate on first use
    from labconsole.aggregate import SettingAggregate, Spread, StepsTo
    from labconsole.runview import RunView

LIVE = ("running", "stalled", "waiting")  # statuses of a seed still training
BROKEN = ("failed", "crashed", "stopped")
BASE_COLUMNS = ("setting", "seeds ✓/●/all", "step", "steps to B", "steps to C", "acc / ceiling",
                "acc x", "acc y", "R² mean")
OOD_COLUMN = "acc OOD"
BEST_COLUMN = "best seed"


def steps_text(steps: StepsTo) -> str:
    """``600 [550-650]`` over the runs that reached the phase (``600`` when they agree), then the
    censored ones, ``> 900 ×1`` (the earliest last eval among them); ``-`` without evals."""
    parts = []
    r = steps.reached
    if r is not None:
        parts.append(f"{r.mean:,.0f}" if r.min == r.max else f"{r.mean:,.0f} [{r.min:,.0f}-{r.max:,.0f}]")
    censored = steps.censored
    if censored:
        parts.append(f"> {min(c.by for c in censored):,} ×{len(censored)}")
    return ", ".join(parts) or "-"


def mean_text(spread: Spread | None, digits: int = 2) -> str:
    """The mean of a spread over seeds, or ``-`` when no seed has the number."""
    return f"{spread.mean:.{digits}f}" if spread is not None else "-"


def seeds_text(statuses: Sequence[str]) -> str:
    """``done/training/all`` (e.g. ``1/1/3``), plus ``✗n`` for seeds that failed, crashed or stopped."""
    done = sum(s == "completed" for s in statuses)
    live = sum(s in LIVE for s in statuses)
    broken = sum(s in BROKEN for s in statuses)
    return f"{done}/{live}/{len(statuses)}" + (f" ✗{broken}" if broken else "")


def step_text(views: Sequence[RunView | None]) -> str:
    """How far the setting's seeds are: ``600/900`` (``300-600/900`` when they differ)."""
    known = [v for v in views if v is not None]
    if not known:
        return "-"
    lo, hi = min(v.step for v in known), max(v.step for v in known)
    total = max(v.total_steps for v in known)
    text = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    return text + (f"/{total:,}" if total else "")


def columns_for(aggregates: Sequence[SettingAggregate]) -> tuple[str, ...]:
    """The table's columns: the OOD one only when some run reports in-hole accuracy."""
    ood = any("accuracy_ood" in a.terminal for a in aggregates)
    return BASE_COLUMNS + ((OOD_COLUMN,) if ood else ()) + (BEST_COLUMN,)


def setting_row(agg: SettingAggregate, statuses: Sequence[str], ood: bool) -> tuple[str, ...]:
    """The cells of one setting, in ``columns_for``'s order (``ood``: with the OOD column).

    Args:
        agg: the setting's aggregate over its seeds.
        statuses: the liveness of each of its planned runs ("planned" for one never created).
        ood: whether the table has the OOD column.
    """
    t = agg.terminal
    acc = f"{mean_text(t.get('accuracy'))} / {mean_text(t.get('ceiling'))}" if "accuracy" in t else "-"
    best = f"s{agg.best.seed} {agg.best.accuracy:.2f}" if agg.best is not None else "-"
    cells = (agg.setting.label or "(the preset)", seeds_text(statuses), step_text([m.view for m in agg.members]),
             steps_text(agg.first_b), steps_text(agg.first_c), acc, mean_text(t.get("accuracy_x")),
             mean_text(t.get("accuracy_y")), mean_text(t.get("r2_mean")))
    return cells + ((mean_text(t.get("accuracy_ood")),) if ood else ()) + (best,)


class SettingsTable(DataTable):
    """One row per setting (row keys: the setting labels); a refresh keeps the cursor's row."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.shown_columns: tuple[str, ...] = ()

    def set_rows(self, columns: tuple[str, ...], rows: Sequence[tuple[str, tuple[str, ...]]]) -> None:
        """Show ``rows`` (setting label, cells) under ``columns``, changing only the cells that differ."""
        keys = [key for key, _ in rows]
        if columns != self.shown_columns or keys != [k.value for k in self.rows]:
            cursor = self.cursor_row
            self.clear(columns=True)
            self.add_columns(*columns)
            for key, cells in rows:
                self.add_row(*cells, key=key)
            self.shown_columns = columns
            self.move_cursor(row=min(cursor, len(rows) - 1) if rows else 0)
            return
        for key, cells in rows:
            for column, (old, new) in enumerate(zip(self.get_row(key), cells)):
                if old != new:
                    self.update_cell_at((self.get_row_index(key), column), new)

    def row_values(self) -> list[tuple[str, ...]]:
        """Every row's cells as shown, in order (for tests and the picker)."""
        return [tuple(str(c) for c in self.get_row_at(i)) for i in range(self.row_count)]

    @property
    def highlighted_setting(self) -> str | None:
        """The setting label of the row under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
