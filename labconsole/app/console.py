"""The lab console: pick a preset, run it, and watch one run's curves, bumps, manifold and phase.

The app routes messages and hands state down; it never trains, samples or computes a metric.
Everything that blocks (listing presets and runs, starting and stopping workers, following a
run's events, reading its samples) runs in thread workers that talk back only through
``post_message``. The attached run's events are folded into an immutable ``RunView``
(``state.apply``); a timer hands the newest view to the widgets at most ``REDRAW_HZ`` times a
second, however fast events arrive.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, OptionList, Static
from textual.worker import Worker, WorkerState

from labconsole.app.backend import Backend, stderr_tail
from labconsole.app.charts import accuracy_chart, r2_chart
from labconsole.app.messages import (
    PresetsListed,
    ProblemReported,
    RunEvent,
    RunLaunched,
    RunsListed,
    SamplesLoaded,
    StderrTail,
    StreamEnded,
    TrainEvent,
)
from labconsole.app.samples import load_samples
from labconsole.app.screens.compare import CompareScreen
from labconsole.app.screens.quit import CANCEL, STOP, QuitScreen
from labconsole.app.screens.run_form import ALL_RUNS, RunForm, RunRequest
from labconsole.app.state import RunView, apply, with_status
from labconsole.app.widgets.bumps import BumpGrid
from labconsole.app.widgets.curves import ChartPlot
from labconsole.app.widgets.logtail import LogTail
from labconsole.app.widgets.manifold import ManifoldView
from labconsole.app.widgets.phase import PhaseBadge, RunSummary, quiet_for
from labconsole.app.widgets.runs import PresetList, RunList
from labconsole.events import Train

REDRAW_HZ = 4  # widget updates per second at most
RUNS_POLL_S = 2.0  # how often the runs list is re-read
STDERR_POLL_S = 1.0
REFOLLOW_S = 0.5  # a run that is "running" but not serving: follow again after this, doubling
REFOLLOW_MAX_S = 4.0  # ... up to this
STARTING_GRACE_S = 60.0  # a run dir without meta.json counts as starting for this long, then unknown
VIEWS = ("curves", "bumps", "manifold", "log")
MAIN_ACTIONS = {  # actions that only make sense on the console's own screen
    "run_preset", "stop_run", "attach", "compare", "toggle_colour", "next_view", "show_view",
    "toggle_sidebar", "refresh", "resume_run", "dismiss_problem",
}


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
        Binding("m", "toggle_colour", "Colour x/y", tooltip="Colour the manifold by x or by y"),
        Binding("v", "next_view", "View", tooltip="Next panel (small terminals show one at a time)"),
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
        self.presets: list[Any] = []
        self.runs: list[Any] = []
        self.view = RunView()  # the attached run, folded from its events
        self.attached: Path | None = None
        self.samples = None  # the latest eval's Samples, once loaded
        self._generation = 0  # bumped per attach; older workers' messages are dropped
        self._stop_follow: threading.Event | None = None
        self._stderr: tuple[str, ...] = ()
        self._dirty = False
        self._quiet_drawn = 0.0  # monotonic time the quiet clock was last redrawn
        self._drawn_evals: tuple | None = None
        self._samples_requested: Path | None = None
        self._runs_listed = False
        self._attached_at = 0.0
        self._refollows = 0  # follow attempts of the attached run that found it not serving

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield Label("Presets", classes="section-title")
                yield PresetList(id="presets")
                with Horizontal(classes="buttons"):
                    yield Button("Run ▶", id="run-button", variant="success", compact=True)
                yield Label("Runs", classes="section-title")
                yield RunList(id="runs")
                with Horizontal(classes="buttons"):
                    yield Button("Stop ■", id="stop-button", variant="warning", compact=True)
                    yield Button("Compare", id="compare-button", compact=True)
            with Vertical(id="main", classes="-show-curves"):
                yield Static("", id="problem")
                with Horizontal(id="head"):
                    yield PhaseBadge(id="phase")
                    yield RunSummary(id="summary")
                with Horizontal(id="curves", classes="panel"):
                    yield ChartPlot(id="acc")
                    yield ChartPlot(id="r2")
                with Horizontal(id="samples"):
                    yield BumpGrid(id="bumps", classes="panel")
                    yield ManifoldView(id="manifold", classes="panel")
                yield LogTail(id="log", classes="panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#curves").border_title = "curves · 1"
        self.query_one("#bumps").border_title = "latest samples · 2"
        self.query_one("#manifold").border_title = "UMAP layer 4 · 3"
        self.query_one("#log").border_title = "warnings & errors · 4"
        self._push_view()
        self.set_interval(1 / REDRAW_HZ, self._tick)
        self.set_interval(RUNS_POLL_S, self._list_runs)
        self._list_presets()
        self._list_runs()

    def on_unmount(self) -> None:
        if self._stop_follow is not None:
            self._stop_follow.set()  # lets the follower threads end, so the process can exit

    # -- handing state down --------------------------------------------------------------------

    def _tick(self) -> None:
        if self._dirty:
            self._dirty = False
            self._push_view()
        elif quiet_for(self.view) and time.monotonic() - self._quiet_drawn >= 1.0:
            # Nothing new, but the "no event for ..." clock in the summary moves once a second.
            self._quiet_drawn = time.monotonic()
            self.query_one(RunSummary).set_view(self.view)
        self._request_samples()

    def _push_view(self) -> None:
        view = self.view
        self.query_one(PhaseBadge).set_view(view)
        self.query_one(RunSummary).set_view(view)
        self.query_one(LogTail).set_logs(view.logs, self._stderr)
        if view.evals is not self._drawn_evals:  # Train events alone leave the curves as they are
            self._drawn_evals = view.evals
            self.query_one("#acc", ChartPlot).chart = accuracy_chart(view)
            self.query_one("#r2", ChartPlot).chart = r2_chart(view)

    def _request_samples(self) -> None:
        latest = self.view.latest
        if self.attached is None or latest is None or not latest.samples_path:
            return
        path = self.attached / latest.samples_path
        if path != self._samples_requested and path.exists():
            self._samples_requested = path
            self._load_samples(path, latest.step, self._generation)

    # -- attaching -----------------------------------------------------------------------------

    def attach(self, run_dir: Path) -> None:
        """Show ``run_dir``: replay its history, then follow it live (in thread workers)."""
        if self._stop_follow is not None:
            self._stop_follow.set()
        self._generation += 1
        self._stop_follow = stop = threading.Event()
        self.attached = Path(run_dir)
        self._attached_at = time.monotonic()
        self._refollows = 0
        self.view = RunView(run_id=self.attached.name)
        self._stderr, self._samples_requested, self.samples = (), None, None
        self.query_one(BumpGrid).samples = None
        self.query_one(ManifoldView).samples = None
        self._dirty = True
        self._follow(self.attached, self._generation, stop)
        self._tail_stderr(self.attached, self._generation, stop)

    @work(thread=True, group="follow", exit_on_error=False)
    def _follow(self, run_dir: Path, generation: int, stop: threading.Event, skip: int = 0) -> None:
        """Post every event of the run after the first ``skip`` (already shown), then StreamEnded."""
        seen = 0
        for event in self.backend.follow(run_dir, stop):
            if stop.is_set():
                return
            seen += 1
            if seen <= skip:
                continue  # follow() always starts from the first event; these are on screen
            kind = TrainEvent if isinstance(event, Train) else RunEvent
            self.post_message(kind(generation, event))
        if not stop.is_set():
            self.post_message(StreamEnded(generation, self.backend.status(run_dir), max(seen, skip)))

    @work(thread=True, group="stderr", exit_on_error=False)
    def _tail_stderr(self, run_dir: Path, generation: int, stop: threading.Event) -> None:
        last: tuple[str, ...] = ()
        while True:
            lines = stderr_tail(run_dir)
            if lines != last:
                last = lines
                self.post_message(StderrTail(generation, lines))
            if stop.wait(STDERR_POLL_S):
                return

    @work(thread=True, exclusive=True, group="samples", exit_on_error=False)
    def _load_samples(self, path: Path, step: int, generation: int) -> None:
        try:
            samples = load_samples(path, step)
        except (OSError, ValueError) as exc:
            self.post_message(ProblemReported(f"cannot read samples {path.name}: {exc}"))
            return
        self.post_message(SamplesLoaded(generation, samples))

    @on(RunEvent)
    def _on_run_event(self, message: RunEvent) -> None:
        if message.generation == self._generation:
            self.view = apply(self.view, message.event)
            self._dirty = True

    def on_stream_ended(self, message: StreamEnded) -> None:
        if message.generation != self._generation or self.attached is None:
            return
        starting = message.status == "starting" and time.monotonic() - self._attached_at < STARTING_GRACE_S
        if message.status == "running" or starting:
            # Live but not serving (its worker is still starting, or runs on another host):
            # follow again soon, backing off, without replaying what is already shown.
            delay = min(REFOLLOW_S * 2 ** self._refollows, REFOLLOW_MAX_S)
            self._refollows += 1
            run_dir, stop, skip = self.attached, self._stop_follow, message.events
            self.set_timer(delay, lambda: self._refollow(run_dir, message.generation, stop, skip))
            return
        if self.view.status in ("waiting", "running"):
            # Ended without RunFinished: the run dir decides (e.g. crashed: the worker is gone).
            self.view = with_status(self.view, message.status)
            self._dirty = True

    def _refollow(self, run_dir: Path, generation: int, stop: threading.Event, skip: int) -> None:
        if generation == self._generation and not stop.is_set():
            self._follow(run_dir, generation, stop, skip)

    def on_stderr_tail(self, message: StderrTail) -> None:
        if message.generation == self._generation:
            self._stderr = message.lines
            self._dirty = True

    def on_samples_loaded(self, message: SamplesLoaded) -> None:
        if message.generation == self._generation:
            self.samples = message.samples
            self.query_one(BumpGrid).samples = message.samples
            self.query_one(ManifoldView).samples = message.samples

    # -- presets and runs ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="presets", exit_on_error=False)
    def _list_presets(self) -> None:
        self.post_message(PresetsListed(self.backend.list_presets(self.presets_dir)))

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def _list_runs(self) -> None:
        self.post_message(RunsListed(self.backend.list_runs(self.runs_dir)))

    def on_presets_listed(self, message: PresetsListed) -> None:
        self.presets = message.presets
        self.query_one(PresetList).set_presets(self.presets)
        broken = [p for p in self.presets if getattr(p, "error", "")]
        if broken:
            self.report(f"{len(broken)} preset(s) cannot be loaded: " + "; ".join(p.error for p in broken))

    def on_runs_listed(self, message: RunsListed) -> None:
        self.runs = message.runs
        self.query_one(RunList).set_runs(self.runs)
        if not self._runs_listed:
            self._runs_listed = True
            running = [r for r in self.runs if r.status == "running"]
            if self.attached is None and running:
                self.attach(Path(running[0].path))  # back after an SSH drop: show what trains

    def _highlighted(self, widget_type: type[OptionList], items: list[Any], key: str) -> Any:
        option = self.query_one(widget_type).highlighted_option
        if option is None:
            return None
        return next((item for item in items if str(getattr(item, key)) == option.id), None)

    def highlighted_preset(self) -> Any:
        return self._highlighted(PresetList, self.presets, "path")

    def highlighted_run(self) -> Any:
        return self._highlighted(RunList, self.runs, "id")

    @on(OptionList.OptionSelected, "#presets")
    def _preset_chosen(self) -> None:
        self.action_run_preset()

    @on(OptionList.OptionSelected, "#runs")
    def _run_chosen(self) -> None:
        self.action_attach()

    @on(Button.Pressed, "#run-button")
    def _run_pressed(self) -> None:
        self.action_run_preset()

    @on(Button.Pressed, "#stop-button")
    def _stop_pressed(self) -> None:
        self.action_stop_run()

    @on(Button.Pressed, "#compare-button")
    def _compare_pressed(self) -> None:
        self.action_compare()

    # -- running and stopping ------------------------------------------------------------------

    def action_run_preset(self) -> None:
        """Open the overrides form for the highlighted preset; Run starts it."""
        preset = self.highlighted_preset()
        if preset is None:
            self.report("no preset selected (presets dir: %s)" % self.presets_dir)
            return
        if getattr(preset, "error", ""):
            self.report(f"cannot run {preset.path}: {preset.error}")
            return
        self.push_screen(RunForm(preset), self._form_done)

    def _form_done(self, request: RunRequest | None) -> None:
        if request is not None:
            self._launch(request)

    @work(thread=True, group="launch", exit_on_error=False)
    def _launch(self, request: RunRequest) -> None:
        try:
            preset = self.backend.load_preset(request.preset_path, request.overrides)
        except ValueError as exc:  # PresetError: one clear line, shown in the app
            self.post_message(ProblemReported(str(exc)))
            return
        specs = preset.runs if request.run_index == ALL_RUNS else [preset.runs[request.run_index]]
        dirs = [self.backend.start(spec, preset.name, self.runs_dir) for spec in specs]
        self.post_message(RunLaunched(dirs))

    def on_run_launched(self, message: RunLaunched) -> None:
        names = ", ".join(d.name for d in message.run_dirs)
        self.notify(f"started {names}", title="run")
        self.attach(message.run_dirs[0])
        self._list_runs()

    def action_stop_run(self) -> None:
        """Stop a run gracefully: the highlighted one when the runs list has focus, else the attached."""
        run_dir = self._target_run()
        if run_dir is None:
            self.report("no run to stop")
            return
        status = self.view.status if run_dir == self.attached else self._listed_status(run_dir)
        if status != "running":
            self.notify(f"{run_dir.name} is not running ({status})", severity="warning")
            return
        self.notify(f"stopping {run_dir.name} (finishing the step, checkpointing)")
        self._stop_runs([run_dir], quit_after=False)

    def _listed_status(self, run_dir: Path) -> str:
        run = next((r for r in self.runs if Path(r.path) == run_dir), None)
        return run.status if run is not None else "unknown"

    @work(thread=True, group="stop", exit_on_error=False)
    def _stop_runs(self, run_dirs: list[Path], quit_after: bool) -> None:
        for run_dir in run_dirs:
            if not self.backend.stop(run_dir):
                self.post_message(ProblemReported(f"{run_dir.name} was not running"))
        if quit_after:
            self.call_from_thread(self.exit)
        else:
            self.call_from_thread(self._list_runs)

    def _target_run(self) -> Path | None:
        """The run a run-level key acts on: the highlighted one when the runs list has focus,
        else the attached one (else the highlighted one)."""
        run = self.highlighted_run()
        if self.attached is not None and not self.query_one(RunList).has_focus:
            return self.attached
        return Path(run.path) if run is not None else None

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
        running = [Path(r.path) for r in self.runs if r.status == "running"]
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
        run = self.highlighted_run()
        if run is None:
            self.report("no run selected")
            return
        self.attach(Path(run.path))

    def action_compare(self) -> None:
        """Pick 2-4 runs and overlay their curves."""
        if not self.runs:
            self.report("no runs to compare yet")
            return
        selected = [self.attached.name] if self.attached is not None else []
        self.push_screen(CompareScreen(self.runs, selected))

    def action_toggle_colour(self) -> None:
        manifold = self.query_one(ManifoldView)
        manifold.colour_by = "y" if manifold.colour_by == "x" else "x"

    def action_show_view(self, name: str) -> None:
        if name not in VIEWS:
            raise ValueError(f"unknown view {name!r}; expected one of: {', '.join(VIEWS)}")
        main = self.query_one("#main")
        for view in VIEWS:
            main.set_class(view == name, f"-show-{view}")

    @property
    def current_view(self) -> str:
        main = self.query_one("#main")
        return next((v for v in VIEWS if main.has_class(f"-show-{v}")), VIEWS[0])

    def action_next_view(self) -> None:
        self.action_show_view(VIEWS[(VIEWS.index(self.current_view) + 1) % len(VIEWS)])

    def action_toggle_sidebar(self) -> None:
        self.query_one("#sidebar").toggle_class("-hidden")

    def action_refresh(self) -> None:
        self._list_presets()
        self._list_runs()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_ACTIONS and self.screen is not self.screen_stack[0]:
            return False  # the console's keys do nothing (and hide) under a dialog or Compare
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Run preset", "Run the highlighted preset, with overrides", self.action_run_preset),
            ("Stop run", "Stop the attached run gracefully", self.action_stop_run),
            ("Resume run", "Continue a stopped or crashed run from its checkpoint", self.action_resume_run),
            ("Attach to run", "Show the highlighted run (history, then live)", self.action_attach),
            ("Compare runs", "Overlay the curves of 2-4 runs", self.action_compare),
            ("Toggle manifold colour", "Colour the UMAP scatter by x or by y", self.action_toggle_colour),
            ("Next view", "Show the next panel", self.action_next_view),
            ("Toggle sidebar", "Hide or show presets and runs", self.action_toggle_sidebar),
            ("Refresh lists", "Re-read presets and runs", self.action_refresh),
        ]
        commands += [
            (f"Show {v}", f"Show the {v} panel", lambda v=v: self.action_show_view(v)) for v in VIEWS
        ]
        if screen is self.screen_stack[0]:
            for title, help_text, callback in commands:
                yield SystemCommand(title, help_text, callback)

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
            error = event.worker.error
            self.report(f"{event.worker.group}: {type(error).__name__}: {error}")


def make_app(runs_dir: Path, presets_dir: Path, *, backend: Backend | None = None) -> LabConsole:
    """The console app, for the CLI (``labconsole`` with no arguments) and the tests.

    Args:
        runs_dir: where run directories live (created by the runner when needed).
        presets_dir: the ``*.toml`` presets to offer.
        backend: the presets/runs/runner seam; tests may pass a fake.
    """
    return LabConsole(Path(runs_dir), Path(presets_dir), backend=backend)
