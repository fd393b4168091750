"""The tail of a run's warnings and errors: its ``Log`` events, then the last lines of stderr.log."""
from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget

from labconsole.events import Log

LEVEL_STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}


def log_lines(logs: tuple[Log, ...], stderr: tuple[str, ...]) -> list[Text]:
    """All lines the tail could show, oldest first: warnings and errors first, stderr after."""
    lines = [
        Text.assemble((f"{log.level:<7} ", LEVEL_STYLES.get(log.level, "")), log.message)
        for log in logs
        if log.level != "info"
    ]
    lines += [Text.assemble(("stderr  ", "magenta"), line) for line in stderr]
    return lines


class LogTail(Widget):
    """Shows as many of the newest lines as fit; the run monitor sets ``logs`` and ``stderr``."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._logs: tuple[Log, ...] = ()
        self._stderr: tuple[str, ...] = ()

    def set_logs(self, logs: tuple[Log, ...], stderr: tuple[str, ...]) -> None:
        if logs is not self._logs or stderr != self._stderr:
            self._logs, self._stderr = logs, stderr
            self.refresh()

    @property
    def lines(self) -> list[Text]:
        return log_lines(self._logs, self._stderr)

    def render(self) -> RenderResult:
        lines = self.lines
        if not lines:
            return Text("no warnings or errors", style="dim")
        tail = lines[-max(1, self.size.height):]
        for line in tail:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return Text("\n").join(tail)
