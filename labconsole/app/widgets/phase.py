"""The phase badge (A / B / C with its reason and history) and the run's one-glance summary."""
from __future__ import annotations

import time

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from labconsole.app.state import format_step
from labconsole.events import mark_noun
from labconsole.runview import RunView

# Background colours chosen from the 256-colour cube so they read the same over SSH.
PHASE_STYLES = {
    "A": "bold #000000 on #ff5f5f",
    "B": "bold #000000 on #ffd75f",
    "C": "bold #000000 on #5fd75f",
    "": "bold on #585858",
}
PHASE_MEANING = {  # "{mark}": what the failure modes count (events.mark_noun: "bump", or "mark" for stripes)
    "A": "no structure / several {mark}s",
    "B": "one {mark}, wrong place",
    "C": "right place, ordered manifold",
    "": "no eval yet",
}
# A running run that has emitted nothing for this long says so in its summary line: train events
# come every train.log_every steps, so a minute of silence is an eval (or a hung worker).
QUIET_AFTER_S = 60.0
STATUS_STYLES = {
    "running": "bold green",
    "stalled": "bold dark_orange",
    "completed": "bold cyan",
    "stopped": "bold yellow",
    "failed": "bold red",
    "crashed": "bold magenta",
}


def phase_meaning(phase: str, reader: str = "") -> str:
    """What ``phase`` means, in the words of the samples' reader (``Eval.reader``): e.g. B "one bump,
    wrong place", or "one mark, wrong place" for stripes read per axis; "" for an unknown phase."""
    return PHASE_MEANING.get(phase, "").format(mark=mark_noun(reader))


def phase_text(view: RunView) -> Group:
    """Badge line, reason line, and the history (``A -> B at step 1,200; B -> C at ...``)."""
    phase = view.phase
    badge = Text.assemble(
        (f" {phase or '?'} ", PHASE_STYLES.get(phase, PHASE_STYLES[""])),
        " ",
        (phase_meaning(phase, view.latest.reader if view.latest is not None else ""), "bold"),
    )
    lines = [badge]
    if view.phase_reason:
        lines.append(Text(view.phase_reason, style="italic"))
    if view.phase_history:
        lines.append(Text("; ".join(p.describe() for p in view.phase_history), style="dim"))
    return Group(*_one_line_each(lines))


def _one_line_each(lines: list[Text]) -> list[Text]:
    """Lines cut with an ellipsis rather than wrapped: the header keeps its height at 80 columns."""
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return lines


def quiet_for(view: RunView, now: float | None = None) -> float:
    """Seconds since a running run's last event (0 when not running, or quiet under QUIET_AFTER_S)."""
    if view.status != "running" or not view.last_event:
        return 0.0
    quiet = (time.time() if now is None else now) - view.last_event
    return quiet if quiet >= QUIET_AFTER_S else 0.0


def summary_text(view: RunView, now: float | None = None, source: str = "") -> Group:
    """Run id, status, step / total, loss, throughput, device, last eval's numbers; for a running
    run that has been silent a while, how long (a long eval, or a hung worker: the user judges);
    ``source``: how a run that is not served here is followed (its events file)."""
    if not view.run_id:
        return Group(Text("no run attached — pick one in Runs (enter) or run a preset (r)", style="dim"))
    total = f" / {format_step(view.total_steps)}" if view.total_steps else ""
    quiet = quiet_for(view, now)
    # What a live loop does, when it tells something: a long eval, or where a stalled loop stopped.
    doing = view.activity if view.status == "stalled" or (view.status, view.activity) == ("running", "evaluating") else ""
    head = Text.assemble(
        (view.status, STATUS_STYLES.get(view.status, "bold")),
        (f" · {doing}", "dim") if doing else "",
        (f" · no event for {format_quiet(quiet)}", "yellow") if quiet else "", "  ",
        f"step {format_step(view.step)}{total}  ", (view.run_id, "bold"),
    )
    parts = []
    if view.loss is not None:
        parts.append(f"loss {view.loss:.4f}")
    if view.images_per_s:
        parts.append(f"{view.images_per_s:,.0f} img/s")
    if view.device:
        parts.append(view.device)
    lines = [head, Text("  ".join(parts))] if parts else [head]
    latest = view.latest
    if latest is not None:
        lines.append(Text(
            f"eval @{format_step(latest.step)} ({latest.sampler}): acc {latest.accuracy:.2f}/{latest.ceiling:.2f} "
            f"R² {latest.r2_mean:.2f} (step-0 {view.baseline_r2:.2f}, shuffled {latest.r2_shuffled:.2f})",
            style="dim",
        ))
    if view.error:
        lines.append(Text(view.error, style="bold red"))
    if source and view.status in ("running", "stalled"):
        lines.insert(1, Text(source, style="dim"))  # under the status it qualifies
    return Group(*_one_line_each(lines))


def format_quiet(seconds: float) -> str:
    """90 -> "1m 30s"; 4000 -> "1h 06m"."""
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class PhaseBadge(Static):
    """Shows ``view``'s phase; set ``view`` to update."""

    def set_view(self, view: RunView) -> None:
        self.update(phase_text(view))


class RunSummary(Static):
    """Shows ``view``'s identity and progress; set ``view`` to update."""

    def set_view(self, view: RunView, source: str = "") -> None:
        self.update(summary_text(view, source=source))
