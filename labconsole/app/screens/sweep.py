"""The sweep view: a sweep's settings table, live, and the preset's own figure (DESIGN §7).

A thread worker follows the sweep through the backend (``SweepFollower``: every run's events file
read incrementally, folded by the one reducer, re-aggregated when an eval or a status changed) and
posts an immutable ``SweepSnapshot`` at most once per ``POLL_S``; the screen only draws it. The
table is ``SettingsTable``; the figure is the paper's for this preset (``charts.FIGURES``), and
every sweep also gets accuracy and R² per setting with their seed band (and layer 4's PCA
participation ratio, when its runs have one: issue 16).

Enter (or o) on a setting lists its runs; picking one closes the view with that run dir, and the
console attaches its monitor to it. Where the terminal is small (80x24) one panel shows at a time:
the table, the figure or the curves (v, or 1-3).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from labconsole.app.backend import Backend
from labconsole.app.charts import FIGURES, figure_kind, sweep_axes, sweep_curves, sweep_figure
from labconsole.app.messages import ProblemReported, SweepUpdated
from labconsole.app.widgets.runs import STATUS_MARKS
from labconsole.app.widgets.sweep_plot import SweepPlot
from labconsole.app.widgets.sweep_table import OOD_COLUMN, SettingsTable, columns_for, setting_row
from labconsole.app.widgets.sweeps import counts_text

if TYPE_CHECKING:  # annotations only: sweeps are reached through the backend
    from labconsole.app.backend import SweepSnapshot
    from labconsole.runview import RunView

POLL_S = 1.0  # the sweep is re-read (and redrawn, when it changed) at most this often
PANELS = ("table", "figure", "curves")  # one at a time on a small terminal (v, or 1-3)


class SweepScreen(Screen[Path | None]):
    """One sweep, followed live; dismissed with the run dir to attach to, or None (escape)."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("o", "open_setting", "Runs (⏎)", tooltip="List the highlighted setting's runs"),
        Binding("v", "next_panel", "Table/figure", tooltip="Next panel (small terminals show one)"),
        Binding("1", "show_panel('table')", "Table", show=False),
        Binding("2", "show_panel('figure')", "Figure", show=False),
        Binding("3", "show_panel('curves')", "Curves", show=False),
    ]

    def __init__(self, sweep_dir: Path, backend: Backend) -> None:
        super().__init__()
        self.sweep_dir = Path(sweep_dir)
        self.backend = backend
        self.snapshot: SweepSnapshot | None = None
        self.kind = ""  # the figure drawn (charts.FIGURES); "" before the first snapshot
        self._stop = threading.Event()
        self._drawn_aggregates: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"sweep {self.sweep_dir.name} · reading…", id="sweep-head")
        yield Static("", id="sweep-problem")
        with Vertical(id="sweep-body", classes="-show-table"):
            yield SettingsTable(id="sweep-table")
            yield Horizontal(id="sweep-figure", classes="sweep-panel")
            with Horizontal(id="sweep-curves", classes="sweep-panel"):
                yield SweepPlot(id="sweep-acc")
                yield SweepPlot(id="sweep-r2")
                yield SweepPlot(id="sweep-pca", classes="-none")  # shown once a run has a PCA spectrum
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._follow(self._stop)

    def on_unmount(self) -> None:
        self._stop.set()  # ends the follower thread within POLL_S

    # -- following -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sweep-follow", exit_on_error=False)
    def _follow(self, stop: threading.Event) -> None:
        """Poll the sweep until the screen closes; post each snapshot that differs from the last."""
        try:
            follower = self.backend.follow_sweep(self.sweep_dir)
        except ValueError as exc:  # SweepError: one line naming the path
            self.post_message(ProblemReported(str(exc)))
            return
        version = -1
        while not stop.is_set():
            snapshot = follower.poll()
            if snapshot.version != version:
                version = snapshot.version
                self.post_message(SweepUpdated(snapshot))
            stop.wait(POLL_S)

    def on_sweep_updated(self, message: SweepUpdated) -> None:
        snap = self.snapshot = message.snapshot
        aggregates = snap.aggregates
        if aggregates is not self._drawn_aggregates:  # charts change with evals only, not with steps
            self._drawn_aggregates = aggregates
            self._draw_charts(snap)
        self.query_one("#sweep-head", Static).update(head_text(snap, self.kind))
        columns = columns_for(aggregates)
        ood = OOD_COLUMN in columns
        rows = [(a.setting.label, setting_row(a, [snap.statuses[i] for i in snap.runs_of(a.setting.label)], ood))
                for a in aggregates]
        self.query_one(SettingsTable).set_rows(columns, rows)

    def _draw_charts(self, snap: SweepSnapshot) -> None:
        m, aggregates = snap.manifest, snap.aggregates
        kind = figure_kind(m.preset, m.swept, aggregates)
        charts = sweep_figure(kind, aggregates, m.swept)
        figure = self.query_one("#sweep-figure", Horizontal)
        if kind != self.kind:  # new plots: a plotext plot keeps its x ticks once set
            self.kind = kind
            figure.remove_children()
            figure.mount(*(SweepPlot(c) for c in charts))
            figure.set_class(not charts, "-none")
            if not charts and self.panel == "figure":
                self.show_panel("curves")
        else:
            for plot, chart in zip(figure.query(SweepPlot), charts):
                plot.chart = chart
        acc, r2, pca = sweep_curves(aggregates)
        self.query_one("#sweep-acc", SweepPlot).chart = acc
        self.query_one("#sweep-r2", SweepPlot).chart = r2
        pca_plot = self.query_one("#sweep-pca", SweepPlot)
        pca_plot.chart = pca
        pca_plot.set_class(not pca.n_points, "-none")

    def on_problem_reported(self, message: ProblemReported) -> None:
        message.stop()  # shown here: the console's problem line is under this screen
        problem = self.query_one("#sweep-problem", Static)
        problem.update(message.text)
        problem.add_class("-shown")
        self.notify(message.text, severity="error", timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.post_message(ProblemReported.from_worker(event.worker))

    # -- panels and runs -----------------------------------------------------------------------

    @property
    def panel(self) -> str:
        """The panel a small terminal shows now."""
        body = self.query_one("#sweep-body")
        return next((p for p in PANELS if body.has_class(f"-show-{p}")), PANELS[0])

    def show_panel(self, name: str) -> None:
        """Show panel ``name`` (one of PANELS) where the terminal shows one at a time.

        Raises:
            ValueError: ``name`` is not one of PANELS.
        """
        if name not in PANELS:
            raise ValueError(f"unknown panel {name!r}; expected one of: {', '.join(PANELS)}")
        body = self.query_one("#sweep-body")
        for panel in PANELS:
            body.set_class(panel == name, f"-show-{panel}")

    def action_show_panel(self, name: str) -> None:
        self.show_panel(name)

    def action_next_panel(self) -> None:
        shown = [p for p in PANELS if p != "figure" or not self.query_one("#sweep-figure").has_class("-none")]
        self.show_panel(shown[(shown.index(self.panel) + 1) % len(shown)] if self.panel in shown else shown[0])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_setting()

    def action_open_setting(self) -> None:
        """List the highlighted setting's runs; the one picked is attached in the console."""
        setting, snap = self.query_one(SettingsTable).highlighted_setting, self.snapshot
        if setting is None or snap is None:
            self.notify("no setting to open yet", severity="warning")
            return
        runs = [(snap.paths[i], run_prompt(snap.manifest.runs[i].seed, snap.statuses[i], snap.views[i],
                                           snap.paths[i])) for i in snap.runs_of(setting)]
        self.app.push_screen(RunPicker(setting or "(the preset)", runs), self._picked)

    def _picked(self, run_dir: Path | None) -> None:
        if run_dir is not None:
            self.dismiss(run_dir)


def head_text(snap: SweepSnapshot, kind: str) -> Text:
    """Two lines: the sweep, its preset and what is swept; its runs by status and the figure."""
    m = snap.manifest
    axes = ", ".join(a.name for a in sweep_axes(m.grid, m.swept)) or "seeds only"
    text = Text.assemble(("sweep ", "dim"), (m.id, "bold"), f" · {m.preset} {m.title} · swept: {axes} · ",
                         f"{len(m.grid)} setting(s), {len(m.runs)} runs")
    text.append(f"\n{counts_text(snap.statuses)}")
    if kind:
        text.append(f" · figure: {FIGURES[kind]}", style="dim")
    return text


def run_prompt(seed: int, status: str, view: RunView | None, path: Path | None) -> Text:
    """``● running  seed 1  B  acc 0.31  step 600`` over the run dir's name."""
    mark, colour = STATUS_MARKS.get(status, ("·", "white"))
    text = Text.assemble((f"{mark} {status:<9}", colour), f" seed {seed}")
    if view is not None:
        acc = f"{view.latest.accuracy:.2f}" if view.latest is not None else "--"
        text.append(f"  {view.phase or '-'}  acc {acc}  step {view.step:,}")
    text.append(f"\n{path.name if path is not None else 'not started yet'}", style="dim")
    return text


class RunPicker(ModalScreen[Path | None]):
    """A setting's runs; Enter picks one (a run never started cannot be picked), escape goes back."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back")]

    def __init__(self, setting: str, runs: Sequence[tuple[Path | None, Text]]) -> None:
        super().__init__()
        self.setting = setting
        self.runs = list(runs)

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Runs of {self.setting} — Enter attaches", classes="section-title")
            yield OptionList(*(Option(prompt, id=str(path) if path else None, disabled=path is None)
                               for path, prompt in self.runs), id="picker-runs")
        yield Footer(compact=True)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.dismiss(Path(event.option.id))
