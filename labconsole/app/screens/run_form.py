"""The small form shown before running a preset: the common overrides, then Run.

It returns a ``RunRequest`` (or None on cancel); the app turns it into ``load_preset(path,
overrides)`` and ``runner.start`` off the UI thread. Empty fields keep the preset's value, shown
as the placeholder.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from model.config import DEVICES  # torch-free: the console never imports torch

if TYPE_CHECKING:  # annotations only: presets and run dirs are reached through the backend
    from labconsole.presets import Preset

ALL_RUNS = -1  # the "which run" choice that starts every run of a sweep

FIELDS = (  # (input id, config key, label)
    ("steps", "train.steps", "steps"),
    ("seed", "train.seed", "seed"),
    ("eval_every", "train.eval_every", "eval every"),
)


@dataclass(frozen=True)
class RunRequest:
    """What the form asks for: a preset file, ``--set``-style overrides, and which of its runs."""

    preset_path: Path
    overrides: tuple[str, ...]
    run_index: int = 0  # index into Preset.runs, or ALL_RUNS
    gpu: str | None = None  # a GPU id, "auto" (the least busy), or None (a box without GPUs)


def build_overrides(values: dict[str, str], device: str | None, extra: str) -> tuple[str, ...]:
    """``key=value`` overrides from the form's fields; blank fields are left out.

    Raises:
        ValueError: a numeric field is not an integer, or an extra override has no ``=``.
    """
    out = []
    for field_id, key, label in FIELDS:
        raw = values.get(field_id, "").strip()
        if not raw:
            continue
        if not raw.lstrip("-").isdigit():
            raise ValueError(f"{label} must be a whole number, got {raw!r}")
        out.append(f"{key}={int(raw)}")
    if device:
        out.append(f"train.device={device}")
    for item in shlex.split(extra.replace(",", " ")):
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (e.g. model.size=tiny)")
        out.append(item)
    return tuple(out)


def placeholders(preset: Preset) -> dict[str, str]:
    """The preset's own values of the form's fields (its first run's), keyed by input id; empty
    for a preset without runs."""
    if not preset.runs:
        return {}
    train = preset.runs[0].config.train
    return {"steps": str(train.steps), "seed": str(train.seed), "eval_every": str(train.eval_every),
            "device": train.device}


class RunForm(ModalScreen[RunRequest | None]):
    """Overrides for one preset: steps, seed, device, eval every, free ``key=value`` pairs.

    A paper preset (one that names its CPU miniature) also shows what it would cost on this
    machine, from ``cost`` (a blocking probe, run in a thread while the form is open): the cost is
    said before Run is pressed. On a box with ``gpus``, a GPU row picks the one each run gets
    (default: the least busy, counting the live runs of every batch and console).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, preset: Preset, cost: Callable[[], list[str]] | None = None, gpus: list[str] = ()) -> None:
        super().__init__()
        self.preset = preset
        self.cost = cost if preset.mini else None
        self.gpus = list(gpus)

    def compose(self) -> ComposeResult:
        preset, values = self.preset, placeholders(self.preset)
        with Vertical(id="form"):
            yield Label(f"Run preset [b]{preset.name}[/b]  {preset.title}", id="form-title")
            if preset.description.strip():
                yield Static(preset.description.strip(), id="form-description")
            for field_id, _, label in FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(placeholder=values.get(field_id, ""), id=field_id, type="integer", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("device", classes="form-label")
                current = values.get("device", "preset")
                yield Select([(d, d) for d in DEVICES], prompt=f"{current} (preset)", id="device", compact=True)
            if self.gpus:
                with Horizontal(classes="form-row"):
                    yield Label("GPU", classes="form-label")
                    options = [("auto: the least busy", "auto")] + [(f"GPU {g}", g) for g in self.gpus]
                    yield Select(options, value="auto", allow_blank=False, id="gpu", compact=True)
            runs = preset.runs
            if len(runs) > 1:
                with Horizontal(classes="form-row"):
                    yield Label("which run", classes="form-label")
                    options = [(r.label or f"run {i}", i) for i, r in enumerate(runs)]
                    options.append((f"all {len(runs)} runs", ALL_RUNS))
                    yield Select(options, value=0, allow_blank=False, id="which", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("overrides", classes="form-label")
                yield Input(placeholder="key=value ... e.g. model.size=tiny", id="extra", compact=True)
            if self.cost is not None:
                yield Static("cost here: measuring this machine (a few seconds) ...", id="form-cost")
            yield Static("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Run ▶", variant="success", id="form-run", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#steps", Input).focus()
        if self.cost is not None:
            self._measure_cost()

    @work(thread=True, exit_on_error=False)
    def _measure_cost(self) -> None:
        lines = self.cost()
        self.app.call_from_thread(self._show_cost, lines)

    def _show_cost(self, lines: list[str]) -> None:
        if self.is_attached:
            self.query_one("#form-cost", Static).update("\n".join(lines))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "form-run":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        values = {fid: self.query_one(f"#{fid}", Input).value for fid, _, _ in FIELDS}
        device = self.query_one("#device", Select).value
        extra = self.query_one("#extra", Input).value
        try:
            overrides = build_overrides(values, device if isinstance(device, str) else None, extra)
        except ValueError as exc:
            self.query_one("#form-error", Static).update(f"[red]{exc}[/red]")
            return
        which, gpu = self.query("#which"), self.query("#gpu")
        index = which.first(Select).value if which else 0
        self.dismiss(RunRequest(Path(self.preset.path), overrides, int(index), gpu.first(Select).value if gpu else None))
