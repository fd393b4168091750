"""The side panel's sweep list: each sweep's preset, its runs by status, and its age.

An ``OptionList`` whose option ids are the sweep dirs, so a refresh keeps the highlighted entry.
It only renders what the sidebar hands it (``set_sweeps``).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from labconsole.app.state import format_age
from labconsole.app.widgets.runs import _replace, short_id

if TYPE_CHECKING:  # annotations only: sweeps are reached through the backend
    from labconsole.app.backend import SweepInfo

# Runs of a sweep, grouped for one glance: a glyph and a colour per group (legible without colour).
GROUPS = (
    ("completed", "✓", "cyan", ("completed",)),
    ("running", "●", "green", ("running", "stalled", "waiting", "starting")),
    ("failed", "✗", "red", ("failed", "crashed")),
    ("stopped", "■", "yellow", ("stopped",)),
    ("planned", "·", "dim", ("planned", "unknown")),
)


def counts_text(statuses: Iterable[str] | Counter) -> Text:
    """``✓2 ●1 ✗1`` (completed, running, failed/crashed, stopped, not started): the non-empty groups."""
    counts = statuses if isinstance(statuses, Counter) else Counter(statuses)
    text = Text()
    for name, glyph, colour, members in GROUPS:
        n = sum(counts.get(s, 0) for s in members)
        if n:
            text.append(f"{glyph}{n} ", style=colour)
    text.rstrip()
    return text


def sweep_prompt(sweep: SweepInfo, now: float | None = None) -> Text:
    """``quick · 4 runs  ✓2 ●2  5m`` over the sweep id (or the error, in red)."""
    if sweep.error:
        return Text.assemble((short_id(sweep.id), "bold red"), "\n", (sweep.error, "red"))
    age = format_age((now or time.time()) - sweep.created) if sweep.created else ""
    text = Text.assemble((sweep.preset, "bold"), f" · {sweep.n_runs} run{'s' * (sweep.n_runs != 1)}  ")
    text.append_text(counts_text(Counter(dict(sweep.counts))))
    text.append(f"  {age}")
    text.append(f"\n{short_id(sweep.id)}", style="dim")
    return text


class SweepList(OptionList):
    """Sweeps, newest first; option ids are the sweep dirs."""

    def set_sweeps(self, sweeps: Sequence[SweepInfo]) -> None:
        now = time.time()
        _replace(self, [Option(sweep_prompt(s, now), id=str(s.path)) for s in sweeps])
