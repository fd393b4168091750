"""The run monitor: the attached run's phase, summary, curves, bumps, manifold and log, kept live.

Everything about watching one run lives here (as toolong's log view owns its file): the follow
thread worker (replay ``events.jsonl``, then the live socket), the stderr tail, loading the shown
eval's samples, the generation counter, the folded ``RunView`` and loss curve, and the redraw
timer. The app hands it a run (``attach``), a panel to show and the eval to step to
(``step_samples``); it never lists, starts or stops runs.

The samples shown are the latest eval's, following the run, until the user steps back to an older
eval (``labconsole.app.stepper``); a file that is missing or unreadable is one line in the panels.

Thread workers reach the widget only through ``post_message``; messages about the attached run
carry the generation they were started under, and attaching again bumps it, so whatever an older
follower still had in flight is dropped. Events are folded into the view as they arrive; the
panels are redrawn at most ``REDRAW_HZ`` times a second, however fast events come. Problems go
up to the app as ``ProblemReported``.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.worker import Worker, WorkerState

from labconsole.app.backend import Backend, stderr_tail
from labconsole.app.charts import accuracy_chart, loss_chart, pca_chart, r2_chart
from labconsole.app.loss import LossCurve, fold
from labconsole.app.messages import (
    ProblemReported,
    RunEvent,
    SamplesLoaded,
    StderrTail,
    StreamEnded,
    TrainEvent,
)
from labconsole.app.samples import Samples, load_samples
from labconsole.app.stepper import move, sample_steps, samples_title, selected_index
from labconsole.runview import RunView, apply, with_status
from labconsole.app.widgets.bumps import BumpGrid
from labconsole.app.widgets.curves import ChartPlot
from labconsole.app.widgets.eval_detail import EvalDetail
from labconsole.app.widgets.failure_strip import FailureStrip
from labconsole.app.widgets.logtail import LogTail
from labconsole.app.widgets.manifold import ManifoldView
from labconsole.app.widgets.phase import PhaseBadge, RunSummary, quiet_for
from labconsole.events import Train

REDRAW_HZ = 4  # panel updates per second at most
STDERR_POLL_S = 1.0
REFOLLOW_S = 0.5  # a run that is "running" but not serving: follow again after this, doubling
REFOLLOW_MAX_S = 4.0  # ... up to this
STARTING_GRACE_S = 60.0  # a run dir without meta.json counts as starting for this long, then unknown
PANELS = ("curves", "bumps", "manifold", "log")  # small terminals show one at a time (keys 1-4)
PANEL_TITLES = {  # the bumps and manifold titles also name the eval shown (_draw_titles)
    "curves": "curves · 1",
    "bumps": "samples · 2",
    "manifold": "UMAP layer 4 · 3",
    "log": "warnings & errors · 4",
}
# What read_samples raises on a missing or unreadable samples file (it turns np.load's own errors
# for an empty, truncated or non-zip file into ValueError).
UNREADABLE = (OSError, ValueError)


class RunMonitor(Vertical):
    """One run, watched: ``attach`` it, read ``view`` / ``loss`` / ``samples``; ``show_panel``
    picks the panel a small terminal shows, ``step_samples`` the eval whose samples are shown."""

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(id=id, classes=f"-show-{PANELS[0]}")
        self.backend = backend
        self.view = RunView()  # the attached run, folded from its events
        self.loss = LossCurve()  # its Train events' losses, folded by the follower
        self.attached: Path | None = None
        self.samples: Samples | None = None  # the shown eval's samples, once loaded
        self.pinned: int | None = None  # the eval step the user stepped to; None: follow the latest
        self.generation = 0  # bumped per attach; older workers' messages are dropped
        self._stop_follow: threading.Event | None = None
        self._stderr: tuple[str, ...] = ()
        self._dirty = False  # the view changed since the panels were last drawn
        self._quiet_drawn = 0.0  # monotonic time the quiet clock was last redrawn
        self._drawn_evals: tuple | None = None
        self._drawn_loss: LossCurve | None = None
        self._samples_requested: Path | None = None
        self._attached_at = 0.0
        self._refollows = 0  # follow attempts of the attached run that found it not serving
        self.source = ""  # how the run is followed, when not live: e.g. its events file, its worker elsewhere
        self.second_chart = "r2"  # what the middle curve plot shows: "r2" (UMAP R²) or "pca" (PCA PR, n90)

    def compose(self) -> ComposeResult:
        with Horizontal(id="head"):
            yield PhaseBadge(id="phase")
            yield RunSummary(id="summary")
        yield FailureStrip(id="failures")  # no bump / one / several per eval, under the phase they decide
        yield EvalDetail(id="detail")  # the latest eval's PCA spectrum and held-out regions, when it has them
        with Horizontal(id="curves", classes="panel"):
            yield ChartPlot(id="acc")
            yield ChartPlot(id="r2")
            yield ChartPlot(id="loss")
        with Horizontal(id="samples"):
            yield BumpGrid(id="bumps", classes="panel")
            yield ManifoldView(id="manifold", classes="panel")
        yield LogTail(id="log", classes="panel")

    def on_mount(self) -> None:
        for panel, title in PANEL_TITLES.items():
            self.query_one(f"#{panel}").border_title = title
        self._draw()
        self.set_interval(1 / REDRAW_HZ, self._tick)

    def on_unmount(self) -> None:
        if self._stop_follow is not None:
            self._stop_follow.set()  # lets the follower threads end, so the process can exit

    # -- panels --------------------------------------------------------------------------------

    def show_panel(self, name: str) -> None:
        """Show panel ``name`` (one of PANELS) where the terminal shows one at a time."""
        if name not in PANELS:
            raise ValueError(f"unknown view {name!r}; expected one of: {', '.join(PANELS)}")
        for panel in PANELS:
            self.set_class(panel == name, f"-show-{panel}")

    @property
    def panel(self) -> str:
        """The panel a small terminal shows now."""
        return next((p for p in PANELS if self.has_class(f"-show-{p}")), PANELS[0])

    def step_samples(self, where: str) -> None:
        """Show the samples of the ``first`` / ``previous`` / ``next`` / ``latest`` eval; landing
        on the latest (or ``latest`` itself) follows new evals again.

        Raises:
            ValueError: ``where`` is not one of those four.
        """
        self.pinned = move(sample_steps(self.view.evals), self.pinned, where)
        self._draw_titles()
        self._request_samples()

    def toggle_second_chart(self) -> None:
        """The middle curve plot: UMAP R² <-> layer 4's PCA effective dimension (PR and n90)."""
        self.second_chart = "pca" if self.second_chart == "r2" else "r2"
        self._draw_second_chart()

    def _draw_second_chart(self) -> None:
        make = pca_chart if self.second_chart == "pca" else r2_chart
        self.query_one("#r2", ChartPlot).chart = make(self.view)

    def toggle_colour(self) -> None:
        """Colour the manifold by the other coordinate (x <-> y)."""
        manifold = self.query_one(ManifoldView)
        manifold.colour_by = "y" if manifold.colour_by == "x" else "x"

    # -- handing state down --------------------------------------------------------------------

    def _tick(self) -> None:
        if self._dirty:
            self._dirty = False
            self._draw()
        elif quiet_for(self.view) and time.monotonic() - self._quiet_drawn >= 1.0:
            # Nothing new, but the "no event for ..." clock in the summary moves once a second.
            self._quiet_drawn = time.monotonic()
            self.query_one(RunSummary).set_view(self.view, self.source)
        self._request_samples()

    def _draw(self) -> None:
        view = self.view
        self.query_one(PhaseBadge).set_view(view)
        self.query_one(RunSummary).set_view(view, self.source)
        self.query_one(LogTail).set_logs(view.logs, self._stderr)
        if view.evals is not self._drawn_evals:  # Train events alone leave these curves as they are
            self._drawn_evals = view.evals
            self.query_one(FailureStrip).set_evals(view.evals)
            self.query_one(EvalDetail).set_eval(view.latest)
            self.query_one("#acc", ChartPlot).chart = accuracy_chart(view)
            self._draw_second_chart()
            self._draw_titles()
        if self.loss is not self._drawn_loss:
            self._drawn_loss = self.loss
            self.query_one("#loss", ChartPlot).chart = loss_chart(self.loss)

    def _draw_titles(self) -> None:
        steps = sample_steps(self.view.evals)
        index = selected_index(steps, self.pinned)
        at = f" @ step {steps[index]:,}" if index is not None else ""
        self.query_one(BumpGrid).border_title = f"{samples_title(steps, self.pinned)} · 2"
        self.query_one(ManifoldView).border_title = f"UMAP layer 4{at} · 3"

    def _show_samples(self, samples: Samples | None, note: str = "") -> None:
        self.samples = samples
        for widget in (self.query_one(BumpGrid), self.query_one(ManifoldView)):
            widget.samples, widget.note = samples, note

    def _request_samples(self) -> None:
        """Load the shown eval's samples file, unless it is the one last asked for."""
        evals = [e for e in self.view.evals if e.samples_path]
        index = selected_index([e.step for e in evals], self.pinned)
        if self.attached is None or index is None:
            return
        shown = evals[index]
        path = self.attached / shown.samples_path
        if path != self._samples_requested:
            self._samples_requested = path
            self._load_samples(path, shown.step, self.generation)

    # -- attaching -----------------------------------------------------------------------------

    def attach(self, run_dir: Path) -> None:
        """Show ``run_dir``: replay its history, then follow it live (in thread workers)."""
        if self._stop_follow is not None:
            self._stop_follow.set()
        self.generation += 1
        self._stop_follow = stop = threading.Event()
        self.attached = Path(run_dir)
        self._attached_at = time.monotonic()
        self._refollows = 0
        self.source = ""
        self.view = RunView(run_id=self.attached.name)
        self.loss, self.pinned = LossCurve(), None
        self._stderr, self._samples_requested = (), None
        self._show_samples(None)
        self._dirty = True
        self._follow(self.attached, self.generation, stop)
        self._tail_stderr(self.attached, self.generation, stop)

    @work(thread=True, group="follow", exit_on_error=False)
    def _follow(self, run_dir: Path, generation: int, stop: threading.Event, skip: int = 0) -> None:
        """Post every event of the run after the first ``skip`` (already shown), then StreamEnded.

        The loss curve is folded here, off the UI thread, and travels with each Train message:
        queued Train messages replace each other, and the newest still carries every point."""
        seen, loss = 0, LossCurve()
        for event in self.backend.follow(run_dir, stop):
            if stop.is_set():
                return
            seen += 1
            loss = fold(loss, event)
            if seen <= skip:
                continue  # follow() always starts from the first event; these are on screen
            if isinstance(event, Train):
                self.post_message(TrainEvent(generation, event, loss))
            else:
                self.post_message(RunEvent(generation, event))
        if not stop.is_set():
            status, host = self.backend.status(run_dir), self.backend.worker_host(run_dir)
            self.post_message(StreamEnded(generation, status, max(seen, skip), host))

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
        except FileNotFoundError:
            self.post_message(SamplesLoaded(generation, path, step, None, f"step {step:,}: {path.name} is missing"))
            return
        except UNREADABLE as exc:  # one line in the panels; stepping on shows the other evals
            error = f"step {step:,}: cannot read {path.name}: {type(exc).__name__}: {exc}"
            self.post_message(SamplesLoaded(generation, path, step, None, " ".join(error.split())))
            return
        self.post_message(SamplesLoaded(generation, path, step, samples))

    # -- messages from the workers -------------------------------------------------------------

    @on(RunEvent)
    def _on_run_event(self, message: RunEvent) -> None:
        if message.generation == self.generation:
            self.view = apply(self.view, message.event)
            if isinstance(message, TrainEvent) and message.loss is not None:
                self.loss = message.loss
            self._dirty = True

    def on_stream_ended(self, message: StreamEnded) -> None:
        if message.generation != self.generation or self.attached is None:
            return
        starting = message.status == "starting" and time.monotonic() - self._attached_at < STARTING_GRACE_S
        if message.status in ("running", "stalled") or starting:
            # Live but not serving (its worker is still starting, or runs on another host):
            # follow again soon, backing off, without replaying what is already shown.
            if message.host:
                self.source = f"following events.jsonl · worker on {message.host} (its live socket is there)"
                self._dirty = True
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
        if generation == self.generation and not stop.is_set():
            self._follow(run_dir, generation, stop, skip)

    def on_stderr_tail(self, message: StderrTail) -> None:
        if message.generation == self.generation:
            self._stderr = message.lines
            self._dirty = True

    def on_samples_loaded(self, message: SamplesLoaded) -> None:
        # A load the user has stepped past since (or of an older attach) is dropped.
        if message.generation == self.generation and message.path == self._samples_requested:
            self._show_samples(message.samples, message.error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: a follower that raised is reported from here.
        if event.state == WorkerState.ERROR:
            self.post_message(ProblemReported.from_worker(event.worker))
