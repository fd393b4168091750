"""The lab console: pick a preset, run it, and watch one run's curves, bumps, manifold and phase.

The app composes the screen, binds the keys and routes messages; it never trains, samples or
computes a metric. Two widgets hold the behaviour: the ``Sidebar`` lists presets, runs and sweeps,
the ``RunMonitor`` watches the attached run (its events, stderr and samples, the redraws). The app
hands them what to show and reads what is highlighted; they post up what happened. Starting,
stopping and resuming workers block, so they run in thread workers that talk back only through
``post_message``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from labconsole.app.backend import Backend
from labconsole.app.messages import PresetsListed, ProblemReported, RunLaunched, RunsListed
from labconsole.app.screens.compare import CompareScreen
from labconsole.app.screens.quit import CANCEL, STOP, QuitScreen
from labconsole.app.screens.run_form import ALL_RUNS, RunForm, RunRequest
from labconsole.app.screens.sweep import SweepScreen
from labconsole.app.widgets.monitor import PANELS, RunMonitor
from labconsole.app.widgets.sidebar import Sidebar

MAIN_ACTIONS = {  # actions that only make sense on the console's own screen
    "run_preset", "stop_run", "attach", "compare", "toggle_colour", "next_view", "show_view",
    "toggle_sidebar", "refresh", "resume_run", "dismiss_problem", "step_samples", "open_sweep",
}
COMMANDS = (  # the command palette (ctrl+p) on the console's own screen: title, help, action
    ("Run preset", "Run the highlighted preset, with overrides", "run_preset"),
    ("Stop run", "Stop the attached run gracefully", "stop_run"),
    ("Resume run", "Continue a stopped or crashed run from its checkpoint", "resume_run"),
    ("Attach to run", "Show the highlighted run (history, then live)", "attach"),
    ("Compare runs", "Overlay the curves of 2-4 runs", "compare"),
    ("Open sweep", "The highlighted sweep: settings over seeds, live, and its figure", "open_sweep"),
    ("Toggle manifold colour", "Colour the UMAP scatter by x or by y", "toggle_colour"),
    ("Next view", "Show the next panel", "next_view"),
    ("Older samples", "Show the previous eval's samples ([)", "step_samples('previous')"),
    ("Newer samples", "Show the next eval's samples (])", "step_samples('next')"),
    ("First samples", "Show the first eval's samples ({)", "step_samples('first')"),
    ("Latest samples", "Show the latest eval's samples and follow new ones (})", "step_samples('latest')"),
    ("Toggle sidebar", "Hide or show presets and runs", "toggle_sidebar"),
    ("Refresh lists", "Re-read presets and runs", "refresh"),
    *((f"Show {p}", f"Show the {p} panel", f"show_view('{p}')") for p in PANELS),
)


class LabConsole(App):
    """The Textual app. Build it with ``make_app``; the CLI and the tests share that factory."""

    CSS_PATH = "app.tcss"
    TITLE = "labconsole"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("r", "run_preset", "Run", tooltip="Run the highlighted preset (with overrides)"),
        Binding("s", "stop_run", "Stop", tooltip="Stop the run gracefully (checkpoint, then exit)"),
        Binding("a", "attach", "Attach", tooltip="Attach to the highlighted run"),
        Binding("c", "compare", "Compare", tooltip="Overlay the curves of 2-4 runs"),
        Binding("w", "open_sweep", "Sweep", tooltip="Open the highlighted sweep (settings over seeds)"),
        Binding("m", "toggle_colour", "Colour x/y", tooltip="Colour the manifold by x or by y"),
        Binding("v", "next_view", "View", tooltip="Next panel (small terminals show one at a time)"),
        Binding("p", "toggle_pca", "R²/PCA", show=False, tooltip="Curves: UMAP R² or the PCA effective dimension"),
        # Samples of past evals. Not home / end: the focused preset and run lists use those.
        Binding("left_square_bracket", "step_samples('previous')", "Older", show=False),
        Binding("right_square_bracket", "step_samples('next')", "Newer", show=False),
        Binding("left_curly_bracket", "step_samples('first')", "First", show=False),
        Binding("right_curly_bracket", "step_samples('latest')", "Live", show=False),
        Binding("R", "resume_run", "Resume", show=False, tooltip="Resume a stopped or crashed run"),
        Binding("b", "toggle_sidebar", "Sidebar", show=False),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("1", "show_view('curves')", "Curves", show=False),
        Binding("2", "show_view('bumps')", "Bumps", show=False),
        Binding("3", "show_view('manifold')", "Manifold", show=False),
        Binding("4", "show_view('log')", "Log", show=False),
        Binding("escape", "dismiss_problem", "Dismiss", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, runs_dir: Path, presets_dir: Path, *, backend: Backend | None = None) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.presets_dir = Path(presets_dir)
        self.backend = backend or Backend()
        self.sidebar = Sidebar(self.backend, self.presets_dir, self.runs_dir, id="sidebar")  # presets, runs
        self.monitor = RunMonitor(self.backend, id="monitor")  # the attached run, watched
        self._runs_listed = False

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield self.sidebar
            with Vertical(id="main"):
                yield Static("", id="problem")
                yield self.monitor
        yield Footer(compact=True)

    # -- presets and runs ----------------------------------------------------------------------

    def on_presets_listed(self, message: PresetsListed) -> None:
        broken = [p for p in message.presets if p.error]
        if broken:
            self.report(f"{len(broken)} preset(s) cannot be loaded: " + "; ".join(p.error for p in broken))

    def on_runs_listed(self, message: RunsListed) -> None:
        if not self._runs_listed:
            self._runs_listed = True
            running = [r for r in message.runs if r.status in ("running", "stalled")]
            if self.monitor.attached is None and running:
                self.monitor.attach(running[0].path)  # back after an SSH drop: show what trains

    # -- running and stopping ------------------------------------------------------------------

    def action_run_preset(self) -> None:
        """Open the overrides form for the highlighted preset; Run starts it."""
        preset = self.sidebar.highlighted_preset()
        if preset is None:
            self.report("no preset selected (presets dir: %s)" % self.presets_dir)
            return
        if preset.error:
            return self.report(f"cannot run {preset.path}: {preset.error}")
        if preset.kind != "train":  # overlap, percolation: no runs, a table in seconds from the batch
            figure = f"; labconsole report {preset.path} --out DIR draws it" if preset.kind == "percolation" else ""
            return self.report(f"{preset.name} trains nothing: labconsole --batch {preset.path} prints its table{figure}")
        form = RunForm(preset, cost=lambda: self.backend.cost_lines(preset), gpus=self.backend.gpus())  # cost: a paper preset
        self.push_screen(form, lambda request: request and self._launch(request))

    @work(thread=True, group="launch", exit_on_error=False)
    def _launch(self, request: RunRequest) -> None:
        try:
            preset = self.backend.load_preset(request.preset_path, request.overrides)
        except ValueError as exc:  # PresetError: one clear line, shown in the app
            self.post_message(ProblemReported(str(exc)))
            return
        specs = preset.runs if request.run_index == ALL_RUNS else [preset.runs[request.run_index]]
        dirs = [self.backend.start(spec, preset.name, self.runs_dir, request.gpu) for spec in specs]
        self.post_message(RunLaunched(dirs))

    def on_run_launched(self, message: RunLaunched) -> None:
        self.notify(f"started {', '.join(d.name for d in message.run_dirs)}", title="run")
        self.monitor.attach(message.run_dirs[0])
        self.sidebar.list_runs()

    def action_stop_run(self) -> None:
        """Stop a run gracefully: the highlighted one when the runs list has focus, else the attached."""
        run_dir = self._target_run()
        if run_dir is None:
            self.report("no run to stop")
            return
        watched = run_dir == self.monitor.attached  # the monitor knows better than the last listing
        status = self.monitor.view.status if watched else self.sidebar.listed_status(run_dir)
        if status not in ("running", "stalled"):
            self.notify(f"{run_dir.name} is not running ({status})", severity="warning")
            return
        self.notify(f"stopping {run_dir.name} (finishing the step, checkpointing)")
        self._stop_runs([run_dir], quit_after=False)

    @work(thread=True, group="stop", exit_on_error=False)
    def _stop_runs(self, run_dirs: list[Path], quit_after: bool) -> None:
        for run_dir in run_dirs:
            if not self.backend.stop(run_dir):
                self.post_message(ProblemReported(f"{run_dir.name} was not running"))
        if quit_after:
            self.call_from_thread(self.exit)
        else:
            self.call_from_thread(self.sidebar.list_runs)

    def _target_run(self) -> Path | None:
        """The run a run-level key acts on: the attached one, or the highlighted one when the runs list
        has focus or no run is attached."""
        run = self.sidebar.highlighted_run()
        if self.monitor.attached is not None and not self.sidebar.runs_focused:
            return self.monitor.attached
        return run.path if run is not None else None

    def action_resume_run(self) -> None:
        """Continue a stopped, failed or crashed run from its latest checkpoint."""
        run_dir = self._target_run()
        if run_dir is None:
            self.report("no run to resume")
            return
        self._resume(run_dir)

    @work(thread=True, group="launch", exit_on_error=False)
    def _resume(self, run_dir: Path) -> None:
        try:
            self.backend.resume(run_dir)
        except ValueError as exc:  # still running, or not a run dir (the text names the dir)
            self.post_message(ProblemReported(str(exc)))
            return
        except RuntimeError as exc:  # the new worker died at start: its stderr's last line
            self.post_message(ProblemReported(f"cannot resume {run_dir.name}: {exc}"))
            return
        self.post_message(RunLaunched([run_dir]))

    async def action_quit(self) -> None:
        """Quit; while runs are running, ask whether to leave them running (default) or stop them."""
        if isinstance(self.screen, QuitScreen):
            return
        running = [r.path for r in self.sidebar.runs if r.status in ("running", "stalled")]
        if not running:
            self.exit()
            return

        def chosen(choice: str | None) -> None:
            if choice == STOP:
                self._stop_runs(running, quit_after=True)
            elif choice != CANCEL:
                self.exit()

        self.push_screen(QuitScreen(len(running)), chosen)

    # -- views ---------------------------------------------------------------------------------

    def action_attach(self) -> None:
        """Attach to the highlighted run: its history replays, then it follows live."""
        run = self.sidebar.highlighted_run()
        if run is None:
            return self.report("no run selected")
        self.monitor.attach(run.path)

    def action_compare(self) -> None:
        """Pick 2-4 runs and overlay their curves."""
        if not self.sidebar.runs:
            self.report("no runs to compare yet")
            return
        attached = self.monitor.attached
        self.push_screen(CompareScreen(self.sidebar.runs, self.backend, [attached.name] if attached else []))

    def action_open_sweep(self) -> None:
        """Open the highlighted sweep; a run picked there is attached here."""
        sweep = self.sidebar.highlighted_sweep()
        if sweep is None or sweep.error:
            return self.report(sweep.error if sweep is not None else "no sweep yet (labconsole --batch PRESET makes one)")
        self.push_screen(SweepScreen(sweep.path, self.backend), lambda run: run and self.monitor.attach(run))

    def action_toggle_colour(self) -> None:
        self.monitor.toggle_colour()

    def action_toggle_pca(self) -> None:
        self.monitor.toggle_second_chart()

    def action_step_samples(self, where: str) -> None:
        self.monitor.step_samples(where)

    def action_show_view(self, name: str) -> None:
        self.monitor.show_panel(name)

    def action_next_view(self) -> None:
        self.monitor.show_panel(PANELS[(PANELS.index(self.monitor.panel) + 1) % len(PANELS)])

    def action_toggle_sidebar(self) -> None:
        self.sidebar.toggle_class("-hidden")

    def action_refresh(self) -> None:
        self.sidebar.list_presets()
        self.sidebar.list_runs()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The console's keys do nothing (and hide) under a dialog, Compare or a sweep.
        return not (action in MAIN_ACTIONS and self.screen is not self.screen_stack[0])

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if screen is self.screen_stack[0]:  # Compare and the dialogs keep to their own commands
            for title, help_text, action in COMMANDS:
                yield SystemCommand(title, help_text, partial(self.run_action, action))

    # -- problems ------------------------------------------------------------------------------

    def report(self, text: str) -> None:
        """Show a problem: a notification, and a line above the panels until the next one."""
        problem = self.query_one("#problem", Static)
        problem.update(text)
        problem.add_class("-shown")
        self.notify(text, severity="error", timeout=8)

    def action_dismiss_problem(self) -> None:
        """Hide the problem line (escape)."""
        self.query_one("#problem", Static).remove_class("-shown")

    def on_problem_reported(self, message: ProblemReported) -> None:
        self.report(message.text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.report(ProblemReported.from_worker(event.worker).text)


def make_app(runs_dir: Path, presets_dir: Path, *, backend: Backend | None = None) -> LabConsole:
    """The console app, for the CLI (``labconsole`` with no arguments) and the tests.

    Args:
        runs_dir: where run directories live (created by the runner when needed).
        presets_dir: the ``*.toml`` presets to offer.
        backend: the presets/runs/runner seam; tests may pass a fake.
    """
    return LabConsole(Path(runs_dir), Path(presets_dir), backend=backend)
