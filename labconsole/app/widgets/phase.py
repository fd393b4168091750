"""The phase badge (A / B / C with its reason and history) and the run's one-glance summary."""
from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from labconsole.app.state import RunView, format_step

# Background colours chosen from the 256-colour cube so they read the same over SSH.
PHASE_STYLES = {
    "A": "bold #000000 on #ff5f5f",
    "B": "bold #000000 on #ffd75f",
    "C": "bold #000000 on #5fd75f",
    "": "bold on #585858",
}
PHASE_MEANING = {
    "A": "no structure / several bumps",
    "B": "one bump, wrong place",
    "C": "right place, ordered manifold",
    "": "no eval yet",
}
STATUS_STYLES = {
    "running": "bold green",
    "completed": "bold cyan",
    "stopped": "bold yellow",
    "failed": "bold red",
    "crashed": "bold magenta",
}


def phase_text(view: RunView) -> Group:
    """Badge line, reason line, and the history (``A -> B at step 1,200; B -> C at ...``)."""
    phase = view.phase
    badge = Text.assemble(
        (f" {phase or '?'} ", PHASE_STYLES.get(phase, PHASE_STYLES[""])),
        " ",
        (PHASE_MEANING.get(phase, ""), "bold"),
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


def summary_text(view: RunView) -> Group:
    """Run id, status, step / total, loss, throughput, device, last eval's numbers."""
    if not view.run_id:
        return Group(Text("no run attached — pick one in Runs (enter) or run a preset (r)", style="dim"))
    total = f" / {format_step(view.total_steps)}" if view.total_steps else ""
    head = Text.assemble(
        (view.status, STATUS_STYLES.get(view.status, "bold")), "  ",
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
    return Group(*_one_line_each(lines))


class PhaseBadge(Static):
    """Shows ``view``'s phase; set ``view`` to update."""

    def set_view(self, view: RunView) -> None:
        self.update(phase_text(view))


class RunSummary(Static):
    """Shows ``view``'s identity and progress; set ``view`` to update."""

    def set_view(self, view: RunView) -> None:
        self.update(summary_text(view))
