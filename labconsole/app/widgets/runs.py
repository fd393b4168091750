"""The side panel's lists: presets (name, paper figure, what varies) and runs (status, phase, ...).

Both are ``OptionList``s whose option ids are the preset path / run id, so a refresh keeps the
highlighted entry. They only render what the sidebar hands them (``set_presets`` / ``set_runs``).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from labconsole.app.state import format_age

if TYPE_CHECKING:  # annotations only: presets and run dirs are reached through the backend
    from labconsole.presets import Preset
    from labconsole.rundir import RunInfo

STATUS_MARKS = {  # a glyph *and* a word: legible without colour
    "running": ("●", "green"),
    "stalled": ("◌", "dark_orange"),  # the worker lives, its loop has not moved for train.stall_after
    "completed": ("✓", "cyan"),
    "stopped": ("■", "yellow"),
    "failed": ("✗", "red"),
    "crashed": ("✗", "magenta"),
}


def short_id(run_id: str) -> str:
    """``quick-3fa2c1`` from ``20240612T153012Z-quick-3fa2c1``: the age column already says when."""
    stamp, sep, rest = run_id.partition("-")
    return rest if sep and stamp.endswith("Z") and stamp[:8].isdigit() else run_id


def preset_prompt(preset: Preset) -> Text:
    """Two lines: ``name  title`` and the description's first line (or the error, in red)."""
    error = preset.error
    text = Text.assemble((preset.name, "bold red" if error else "bold"), "  ", (preset.title, "italic"))
    detail = error or next(iter(preset.description.strip().splitlines()), "")
    if detail:
        text.append("\n" + detail, style="red" if error else "dim")
    if len(preset.runs) > 1:
        text.append(f"\n{len(preset.runs)} runs · sweeps {', '.join(preset.sweep)}", style="dim italic")
    return text


def run_prompt(run: RunInfo, now: float | None = None) -> Text:
    """``● running  B 0.31  5m`` over the run id."""
    mark, colour = STATUS_MARKS.get(run.status, ("?", "white"))
    # started is None without meta.json and 0.0 when it holds no start time: no age, not 56 years.
    age = format_age((now or time.time()) - run.started) if run.started else ""
    text = Text.assemble(
        (f"{mark} {run.status:<9}", colour), f" {run.phase or '-'} ",
        f"{run.accuracy:.2f}" if run.accuracy is not None else " -- ",
        f"  {age}",
    )
    text.append(f"\n{short_id(run.id)}" + (f" {run.label}" if run.label else ""), style="dim")
    return text


class PresetList(OptionList):
    """Presets; option ids are the preset file paths."""

    def set_presets(self, presets: Sequence[Preset]) -> None:
        _replace(self, [Option(preset_prompt(p), id=str(p.path)) for p in presets])


class RunList(OptionList):
    """Runs, newest first; option ids are run ids."""

    def set_runs(self, runs: Sequence[RunInfo]) -> None:
        now = time.time()
        _replace(self, [Option(run_prompt(r, now), id=r.id) for r in runs])


def _replace(widget: OptionList, options: list[Option]) -> None:
    """Swap the options, keeping the highlight on the same id; no-op when nothing changed."""
    old = [(o.id, str(o.prompt)) for o in widget.options]
    if old == [(o.id, str(o.prompt)) for o in options]:
        return
    highlighted = widget.highlighted_option.id if widget.highlighted_option is not None else None
    widget.clear_options()
    widget.add_options(options)
    ids = [o.id for o in options]
    if highlighted in ids:
        widget.highlighted = ids.index(highlighted)
    elif options:
        widget.highlighted = 0
