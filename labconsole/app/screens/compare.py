"""Compare: pick 2-4 runs and overlay their accuracy and mean-R² curves (e.g. a sweep's runs).

Each picked run is folded into a view by the console's backend, in a thread worker; running runs
are re-read every few seconds while the screen is open.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, SelectionList
from textual.widgets.selection_list import Selection

from labconsole.app.backend import Backend
from labconsole.app.charts import RUN_COLOURS, compare_chart
from labconsole.app.widgets.curves import ChartPlot
from labconsole.runview import RunView

if TYPE_CHECKING:  # annotations only: presets and run dirs are reached through the backend
    from labconsole.rundir import RunInfo

MAX_RUNS = len(RUN_COLOURS)
RELOAD_S = 5.0


@dataclass
class ViewsLoaded(Message):
    views: dict[str, RunView]  # run id -> folded view


def run_label(run: RunInfo) -> str:
    """The run id and what varies in it (its sweep label), for the pick list."""
    return f"{run.id} {run.label}".strip()


class CompareScreen(Screen):
    """Overlay 2-4 runs; ``escape`` goes back to the console."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, runs: Sequence[RunInfo], backend: Backend, selected: Sequence[str] = ()) -> None:
        super().__init__()
        self.backend = backend
        self.runs = {r.id: r for r in runs}
        self.initial = [s for s in selected if s in self.runs][:MAX_RUNS]
        self.views: dict[str, RunView] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-body"):
            with Vertical(id="compare-side"):
                yield Label(f"Pick 2–{MAX_RUNS} runs (space)", classes="section-title")
                yield SelectionList(
                    *(Selection(run_label(r), rid, rid in self.initial) for rid, r in self.runs.items()),
                    id="compare-runs",
                )
            with Vertical(id="compare-main"):
                yield ChartPlot(id="compare-acc")
                yield ChartPlot(id="compare-r2")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(RELOAD_S, self._reload_running)
        self._reload()

    @property
    def selected(self) -> list[str]:
        return list(self.query_one("#compare-runs", SelectionList).selected)

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        chosen = self.selected
        if len(chosen) > MAX_RUNS:
            self.notify(f"compare takes at most {MAX_RUNS} runs", severity="warning")
            event.selection_list.deselect(chosen[-1])
            return
        self._reload()

    def _reload(self) -> None:
        self._load({rid: self.runs[rid].path for rid in self.selected})

    def _reload_running(self) -> None:
        if any(self.runs[rid].status == "running" for rid in self.selected):
            self._reload()

    @work(thread=True, exclusive=True, group="compare-load")
    def _load(self, paths: dict[str, Path]) -> None:
        self.post_message(ViewsLoaded({rid: self.backend.run_view(path) for rid, path in paths.items()}))

    def on_views_loaded(self, message: ViewsLoaded) -> None:
        self.views.update(message.views)
        picked = [(rid, self.views[rid]) for rid in self.selected if rid in self.views]
        self.query_one("#compare-acc", ChartPlot).chart = compare_chart(picked, "accuracy")
        self.query_one("#compare-r2", ChartPlot).chart = compare_chart(picked, "r2_mean")
