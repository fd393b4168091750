"""The side panel: the presets to run, the runs to watch, with their buttons, and the sweeps.

It lists them through the backend in thread workers (the runs and sweeps again every
``RUNS_POLL_S``), shows them, and lets ``PresetsListed`` / ``RunsListed`` / ``SweepsListed`` go on
up to the app, which reports broken presets and, on the first listing, attaches to a run still
training. Its buttons and its lists' Enter run the app's actions; the app reads what is
highlighted. The sweeps section shows only once there is a sweep.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, OptionList
from textual.worker import Worker, WorkerState

from labconsole.app.backend import Backend, SweepInfo
from labconsole.app.messages import PresetsListed, ProblemReported, RunsListed, SweepsListed
from labconsole.app.widgets.runs import PresetList, RunList
from labconsole.app.widgets.sweeps import SweepList

if TYPE_CHECKING:  # annotations only: presets and run dirs are reached through the backend
    from labconsole.presets import Preset
    from labconsole.rundir import RunInfo

RUNS_POLL_S = 2.0  # how often the runs and sweeps lists are re-read
ACTIONS = {"presets": "app.run_preset", "runs": "app.attach", "sweeps": "app.open_sweep"}  # Enter on a list
Item = TypeVar("Item")


class Sidebar(Vertical):
    """Presets above, runs below (newest first); ``presets`` and ``runs`` hold the last listing."""

    def __init__(self, backend: Backend, presets_dir: Path, runs_dir: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.backend = backend
        self.presets_dir = presets_dir
        self.runs_dir = runs_dir
        self.presets: list[Preset] = []
        self.runs: list[RunInfo] = []
        self.sweeps: list[SweepInfo] = []

    def compose(self) -> ComposeResult:
        yield Label("Presets", classes="section-title")
        yield PresetList(id="presets")
        with Horizontal(classes="buttons"):
            yield Button("Run ▶", id="run-button", variant="success", compact=True, action="app.run_preset")
        yield Label("Runs", classes="section-title")
        yield RunList(id="runs")
        with Horizontal(classes="buttons"):
            yield Button("Stop ■", id="stop-button", variant="warning", compact=True, action="app.stop_run")
            yield Button("Compare", id="compare-button", compact=True, action="app.compare")
        with Vertical(id="sweeps-section", classes="-empty"):
            yield Label("Sweeps", classes="section-title")
            yield SweepList(id="sweeps")

    def on_mount(self) -> None:
        self.set_interval(RUNS_POLL_S, self.list_runs)
        self.list_presets()
        self.list_runs()

    @work(thread=True, exclusive=True, group="presets", exit_on_error=False)
    def list_presets(self) -> None:
        """Re-read the presets directory (in a thread worker)."""
        self.post_message(PresetsListed(self.backend.list_presets(self.presets_dir)))

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def list_runs(self) -> None:
        """Re-read the runs directory, then its sweeps (in a thread worker)."""
        runs = self.backend.list_runs(self.runs_dir)
        self.post_message(RunsListed(runs))
        self.post_message(SweepsListed(self.backend.list_sweeps(self.runs_dir, runs)))

    def on_presets_listed(self, message: PresetsListed) -> None:
        self.presets = message.presets
        self.query_one(PresetList).set_presets(self.presets)

    def on_runs_listed(self, message: RunsListed) -> None:
        self.runs = message.runs
        self.query_one(RunList).set_runs(self.runs)

    def on_sweeps_listed(self, message: SweepsListed) -> None:
        self.sweeps = message.sweeps
        self.query_one(SweepList).set_sweeps(self.sweeps)
        self.query_one("#sweeps-section").set_class(not self.sweeps, "-empty")

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        # Enter on a preset opens its run form; on a run, attaches to it; on a sweep, opens it.
        await self.run_action(ACTIONS[event.option_list.id])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: a listing that raised is reported from here.
        if event.state == WorkerState.ERROR:
            self.post_message(ProblemReported.from_worker(event.worker))

    # -- what the app reads --------------------------------------------------------------------

    def highlighted_preset(self) -> Preset | None:
        """The preset under the presets list's cursor, if any."""
        return _highlighted(self.query_one(PresetList), self.presets, lambda p: str(p.path))

    def highlighted_run(self) -> RunInfo | None:
        """The run under the runs list's cursor, if any."""
        return _highlighted(self.query_one(RunList), self.runs, lambda r: r.id)

    def highlighted_sweep(self) -> SweepInfo | None:
        """The sweep under the sweeps list's cursor, if any."""
        return _highlighted(self.query_one(SweepList), self.sweeps, lambda s: str(s.path))

    @property
    def runs_focused(self) -> bool:
        """Whether the runs list has the keyboard focus (run keys then act on its highlighted run)."""
        return self.query_one(RunList).has_focus

    def listed_status(self, run_dir: Path) -> str:
        """The status of ``run_dir`` in the last listing ("unknown" when not listed)."""
        run = next((r for r in self.runs if r.path == run_dir), None)
        return run.status if run is not None else "unknown"


def _highlighted(widget: OptionList, items: Sequence[Item], key: Callable[[Item], str]) -> Item | None:
    """The item whose ``key`` is the id of the option under ``widget``'s cursor."""
    option = widget.highlighted_option
    if option is None:
        return None
    return next((item for item in items if key(item) == option.id), None)
