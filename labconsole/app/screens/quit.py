"""Asked on quit while runs are running: leave them running (the default) or stop them."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

LEAVE, STOP, CANCEL = "leave", "stop", "cancel"


class QuitScreen(ModalScreen[str]):
    """Dismisses with ``leave``, ``stop`` or ``cancel``; Enter leaves the runs running."""

    BINDINGS = [
        Binding("escape", "choose('cancel')", "Cancel"),
        Binding("l", "choose('leave')", "Leave running"),
        Binding("s", "choose('stop')", "Stop them"),
    ]

    def __init__(self, n_running: int) -> None:
        super().__init__()
        self.n_running = n_running

    def compose(self) -> ComposeResult:
        runs = "1 run is" if self.n_running == 1 else f"{self.n_running} runs are"
        with Vertical(id="quit-dialog"):
            yield Label(f"{runs} still running. They keep training after the console quits;\n"
                        "re-attach later with `labconsole`.")
            with Horizontal(id="quit-buttons"):
                yield Button("Leave running (l)", variant="primary", id=LEAVE)
                yield Button("Stop them (s)", variant="error", id=STOP)
                yield Button("Cancel (esc)", id=CANCEL)

    def on_mount(self) -> None:
        self.query_one(f"#{LEAVE}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
