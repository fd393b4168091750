"""The side panel's lists: presets (name, paper figure, what varies) and runs (status, phase, ...).

Both are ``OptionList``s whose option ids are the preset path / run id, so a refresh keeps the
highlighted entry. They only render what the app hands them (``set_presets`` / ``set_runs``).
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from labconsole.app.state import format_age

STATUS_MARKS = {  # a glyph *and* a word: legible without colour
    "running": ("●", "green"),
    "completed": ("✓", "cyan"),
    "stopped": ("■", "yellow"),
    "failed": ("✗", "red"),
    "crashed": ("✗", "magenta"),
}


def started_seconds(started: Any) -> float | None:
    """Unix seconds from a run's ``started`` (float seconds or an ISO-8601 string), or None."""
    if isinstance(started, (int, float)):
        return float(started)
    if isinstance(started, str) and started:
        try:
            return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def short_id(run_id: str) -> str:
    """``quick-3fa2c1`` from ``20240612T153012Z-quick-3fa2c1``: the age column already says when."""
    stamp, sep, rest = run_id.partition("-")
    return rest if sep and stamp.endswith("Z") and stamp[:8].isdigit() else run_id


def preset_prompt(preset: Any) -> Text:
    """Two lines: ``name  title`` and the description's first line (or the error, in red)."""
    error = getattr(preset, "error", "") or ""
    name = getattr(preset, "name", "") or str(getattr(preset, "path", "?"))
    title = getattr(preset, "title", "") or ""
    text = Text.assemble((name, "bold red" if error else "bold"), "  ", (title, "italic"))
    detail = error or (getattr(preset, "description", "") or "").strip().splitlines()[:1]
    detail = detail if isinstance(detail, str) else (detail[0] if detail else "")
    if detail:
        text.append("\n" + detail, style="red" if error else "dim")
    runs, sweep = getattr(preset, "runs", None) or [], getattr(preset, "sweep", ()) or ()
    if len(runs) > 1:
        text.append(f"\n{len(runs)} runs · sweeps {', '.join(sweep)}", style="dim italic")
    return text


def run_prompt(run: Any, now: float | None = None) -> Text:
    """``● running  B 0.31  5m`` over the run id."""
    status = getattr(run, "status", "") or "?"
    mark, colour = STATUS_MARKS.get(status, ("?", "white"))
    phase = getattr(run, "phase", "") or "-"
    acc = getattr(run, "accuracy", None)
    started = started_seconds(getattr(run, "started", None))
    age = format_age((now or time.time()) - started) if started else ""
    text = Text.assemble(
        (f"{mark} {status:<9}", colour), f" {phase} ",
        f"{acc:.2f}" if isinstance(acc, (int, float)) else " -- ",
        f"  {age}",
    )
    label = getattr(run, "label", "") or ""
    text.append(f"\n{short_id(str(getattr(run, 'id', '?')))}" + (f" {label}" if label else ""), style="dim")
    return text


class PresetList(OptionList):
    """Presets; option ids are the preset file paths."""

    def set_presets(self, presets: Sequence[Any]) -> None:
        _replace(self, [Option(preset_prompt(p), id=str(p.path)) for p in presets])


class RunList(OptionList):
    """Runs, newest first; option ids are run ids."""

    def set_runs(self, runs: Sequence[Any]) -> None:
        now = time.time()
        _replace(self, [Option(run_prompt(r, now), id=str(r.id)) for r in runs])


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
