"""Pilot tests of the console shell on synthetic run dirs (no worker, no torch in the run).

The run dirs are written from the event dataclasses (test_app_helpers.write_run); the real
backend replays them through labconsole.stream.follow, as it would a finished run.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labconsole.app import make_app
from labconsole.app.backend import Backend
from labconsole.app.messages import RunEvent, TrainEvent
from labconsole.app.screens.compare import CompareScreen
from labconsole.app.screens.quit import QuitScreen
from labconsole.app.screens.run_form import RunForm, build_overrides
from labconsole.app.widgets.bumps import BumpGrid
from labconsole.app.widgets.curves import ChartPlot
from labconsole.app.widgets.logtail import LogTail
from labconsole.app.widgets.manifold import ManifoldView
from labconsole.app.widgets.runs import PresetList, RunList
from labconsole.events import Train
from labconsole.rundir import Meta, process_start_time, write_meta
from test_app_helpers import make_eval, screen_text, wait_for, write_run

GOOD_PRESET = """
name = "mini"
title = "Fig. 0"
description = "a tiny preset for the console tests"
[train]
steps = 100
"""
BROKEN_PRESET = """
name = "broken"
[train]
stepz = 100
"""


@pytest.fixture
def dirs(tmp_path):
    runs, presets = tmp_path / "runs", tmp_path / "presets"
    runs.mkdir()
    presets.mkdir()
    return runs, presets


def shown_panels(app) -> list[str]:
    return [p for p in ("#curves", "#bumps", "#manifold", "#log")
            if app.query_one(p).display and app.query_one(p).parent.display]


def select_option(app, widget_type, option_id: str) -> None:
    widget = app.query_one(widget_type)
    widget.highlighted = [o.id for o in widget.options].index(option_id)


async def test_attaching_to_a_finished_run_replays_it(dirs):
    runs, presets = dirs
    run_dir = write_run(runs, evals=5, stderr="Traceback (most recent call last):\nValueError: boom\n")
    app = make_app(runs, presets)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.query_one(RunList).option_count == 1, what="the run listed")
        assert monitor.attached is None  # nothing running: nothing attached on its own
        select_option(app, RunList, run_dir.name)
        await pilot.press("a")
        await wait_for(pilot, lambda: monitor.view.status == "completed", what="replay to the end")
        await wait_for(pilot, lambda: app.query_one(BumpGrid).shown > 0, what="bumps drawn")
        await wait_for(pilot, lambda: "ValueError: boom" in str(app.query_one(LogTail).lines), what="stderr tail")
        await wait_for(pilot, lambda: "B -> C at step 400" in screen_text(app), what="the phase history drawn")
        assert [e.step for e in monitor.view.evals] == [0, 100, 200, 300, 400]
        assert app.query_one("#acc", ChartPlot).points_drawn == 15  # 3 curves x 5 evals
        assert app.query_one("#r2", ChartPlot).points_drawn == 15
        assert app.query_one(BumpGrid).shown >= 2 and app.query_one(ManifoldView).points == 12
        text = screen_text(app)
        for expected in ("completed", "A -> B at step 200", "B -> C at step 400", "ceiling 0.90",
                         "step-0 baseline", "+ target x predicted", "coloured by x", "umap: n_neighbors",
                         "ValueError: boom"):
            assert expected in text, expected
        assert " C " in text  # the badge
        await pilot.press("m")
        assert app.query_one(ManifoldView).colour_by == "y"
        await wait_for(pilot, lambda: "coloured by y" in screen_text(app), what="the manifold recoloured")


async def test_usable_at_80x24_one_panel_at_a_time(dirs):
    runs, presets = dirs
    (presets / "mini.toml").write_text(GOOD_PRESET)
    run_dir = write_run(runs, evals=3)
    app = make_app(runs, presets)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.query_one(RunList).option_count == 1, what="runs")
        await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 1, what="presets")
        assert app.screen.has_class("-narrow")
        select_option(app, RunList, run_dir.name)
        await pilot.press("a")
        await wait_for(pilot, lambda: monitor.samples is not None, what="samples")
        await wait_for(pilot, lambda: "completed" in screen_text(app), what="the run drawn")
        text = screen_text(app)
        assert "q Quit" in text and "r Run" in text and "s Stop" in text  # the footer
        assert "mini" in text and "Fig. 0" in text  # the preset: name and figure
        assert "completed" in text
        assert app.query_one("#curves").display and not app.query_one("#bumps").display
        for key, panel in (("2", "#bumps"), ("3", "#manifold"), ("4", "#log"), ("v", "#curves")):
            await pilot.press(key)
            await wait_for(pilot, lambda: shown_panels(app) == [panel], what=f"only {panel} after {key!r}")
        await pilot.press("2")
        await wait_for(pilot, lambda: "2x downsampled" in screen_text(app), what="halved bumps")
        assert app.query_one(BumpGrid).shown >= 2  # halved bumps fit
        await pilot.press("b")
        await wait_for(pilot, lambda: not app.query_one("#sidebar").display, what="the sidebar hidden")


async def test_every_action_is_in_the_command_palette(dirs):
    runs, presets = dirs
    app = make_app(runs, presets)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ("Run preset", "Stop run", "Attach to run", "Compare runs", "Toggle manifold colour",
                      "Next view", "Toggle sidebar", "Refresh lists", "Show curves", "Show log", "Quit"):
            assert title in titles, title
        await pilot.press("ctrl+p")
        await pilot.press(*"compare")
        await wait_for(pilot, lambda: "Compare runs" in screen_text(app), what="the palette's match")


async def test_a_broken_preset_shows_its_error_and_the_app_stays_up(dirs):
    runs, presets = dirs
    (presets / "broken.toml").write_text(BROKEN_PRESET)
    (presets / "mini.toml").write_text(GOOD_PRESET)
    app = make_app(runs, presets)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 2, what="presets")
        # Listed, with its one-line error, and reported above the panels.
        await wait_for(pilot, lambda: "stepz" in screen_text(app), what="the preset's error")
        await wait_for(pilot, lambda: app.query_one("#problem").display, what="the problem line")
        select_option(app, PresetList, str(presets / "broken.toml"))
        await pilot.press("r")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, RunForm)  # no form for a preset that does not load
        assert "cannot run" in str(app.query_one("#problem").render())
        # A good preset with a bad override: the form submits, load_preset refuses, the app says why.
        select_option(app, PresetList, str(presets / "mini.toml"))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the run form")
        app.screen.query_one("#extra").value = "train.steps=-5"
        await pilot.click("#form-run")
        await wait_for(pilot, lambda: "train.steps" in str(app.query_one("#problem").render()), what="error")
        assert not isinstance(app.screen, RunForm)
        assert not any(runs.iterdir())  # nothing was started
        assert app.is_running
        await pilot.press("escape")
        assert not app.query_one("#problem").display


async def test_the_form_rejects_a_non_integer_before_submitting(dirs):
    runs, presets = dirs
    (presets / "mini.toml").write_text(GOOD_PRESET)
    app = make_app(runs, presets)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 1, what="presets")
        await pilot.click("#run-button")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the run form")
        assert app.screen.query_one("#steps").placeholder == "100"  # the preset's value
        app.screen.query_one("#extra").value = "model.size"
        await pilot.click("#form-run")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunForm)
        assert "not key=value" in str(app.screen.query_one("#form-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, RunForm)


def test_build_overrides():
    assert build_overrides({"steps": "200", "seed": "", "eval_every": "50"}, "cpu", "model.size=tiny, eval.n_samples=16") == (
        "train.steps=200", "train.eval_every=50", "train.device=cpu", "model.size=tiny", "eval.n_samples=16")
    with pytest.raises(ValueError, match="whole number"):
        build_overrides({"steps": "2e3"}, None, "")


class RecordingBackend(Backend):
    """The real backend, except that stop() records instead of signalling (the 'running' run
    of these tests is the test process itself)."""

    def __init__(self):
        self.stopped: list[Path] = []

    def stop(self, run_dir: Path) -> bool:
        self.stopped.append(Path(run_dir))
        return True


def make_running(runs: Path, name: str) -> Path:
    """A run whose meta.json says running, owned by a live process (this one)."""
    run_dir = write_run(runs, name, evals=2, status="completed")
    pid = os.getpid()
    write_meta(run_dir, Meta(run_id=name, status="running", preset="quick", pid=pid, pid_start=process_start_time(pid),
                             host=socket.gethostname(), started=0.0, heartbeat=0.0))
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    (run_dir / "events.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # no RunFinished yet
    return run_dir


@pytest.mark.parametrize("choice, stops, exits", [("escape", False, False), ("l", False, True), ("s", True, True)])
async def test_quit_asks_about_running_runs(dirs, choice, stops, exits):
    runs, presets = dirs
    run_dir = make_running(runs, "20240101T000000Z-quick-run001")
    backend = RecordingBackend()
    app = make_app(runs, presets, backend=backend)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: monitor.attached == run_dir, what="auto-attach to the running run")
        await wait_for(pilot, lambda: len(monitor.view.evals) == 2, what="its history")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the quit question")
        assert "still running" in screen_text(app)
        assert app.screen.focused.id == "leave"  # Enter leaves them running
        await pilot.press(choice)
        if exits:
            await wait_for(pilot, lambda: app.return_code is not None, what="the app to exit")
        else:
            await pilot.pause(0.3)  # give a wrong exit the time to happen
        assert (backend.stopped == [run_dir]) == stops
        assert (app.return_code is not None) == exits


async def test_quit_without_running_runs_just_quits(dirs):
    runs, presets = dirs
    write_run(runs, evals=2)
    app = make_app(runs, presets)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.sidebar.runs, what="runs")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code == 0, what="the app to exit")
        assert not isinstance(app.screen, QuitScreen)


async def test_a_dead_worker_shows_as_crashed(dirs):
    runs, presets = dirs
    run_dir = make_running(runs, "20240101T000000Z-quick-dead01")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    meta = Meta(run_id=run_dir.name, status="running", preset="quick", pid=dead.pid, host=socket.gethostname())
    write_meta(run_dir, meta)
    app = make_app(runs, presets)
    sidebar = app.sidebar  # the presets and runs listed
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: sidebar.runs and sidebar.runs[0].status == "crashed", what="crashed in the list")
        select_option(app, RunList, run_dir.name)
        await pilot.press("a")
        await wait_for(pilot, lambda: monitor.view.status == "crashed", what="crashed in the view")
        await wait_for(pilot, lambda: "crashed  step" in screen_text(app), what="crashed in the summary")


async def test_train_events_coalesce_and_redraws_are_throttled(dirs, monkeypatch):
    """A burst of 3,000 Train and 200 Eval events costs far fewer updates than events."""
    runs, presets = dirs
    import labconsole.app.widgets.monitor as monitor_module

    applied = {"train": 0}
    real_apply = monitor_module.apply

    def counting_apply(view, event):
        applied["train"] += isinstance(event, Train)
        return real_apply(view, event)

    monkeypatch.setattr(monitor_module, "apply", counting_apply)
    renders = {"n": 0}
    real_render = ChartPlot.render

    def counting_render(self):
        renders["n"] += self.id == "acc"
        return real_render(self)

    monkeypatch.setattr(ChartPlot, "render", counting_render)
    app = make_app(runs, presets)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        renders["n"] = 0
        generation = monitor.generation

        def burst():
            for k in range(3000):
                monitor.post_message(TrainEvent(generation, Train(step=k, loss=1.0, lr=1e-3, images_per_s=1.0)))
                if k % 15 == 0:
                    monitor.post_message(RunEvent(generation, make_eval(k, 0.5, "B")))

        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        await wait_for(pilot, lambda: monitor.view.step == 2999, what="the last train event")
        await pilot.pause(0.6)
        assert len(monitor.view.evals) == 200
        assert applied["train"] <= 400  # queued Train messages replace each other (~1 per Eval gap)
        assert renders["n"] <= 8  # a few redraws, not one per eval


class ViewRecordingBackend(Backend):
    """The real backend, recording which run dirs were folded into a view through it."""

    def __init__(self):
        self.viewed: list[str] = []

    def run_view(self, run_dir: Path):
        self.viewed.append(Path(run_dir).name)
        return super().run_view(run_dir)


async def test_compare_overlays_two_runs(dirs):
    runs, presets = dirs
    first = write_run(runs, "20240101T000000Z-quick-aaaaaa", evals=3)
    second = write_run(runs, "20240101T000001Z-quick-bbbbbb", evals=5)
    backend = ViewRecordingBackend()
    app = make_app(runs, presets, backend=backend)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: len(app.sidebar.runs) == 2, what="runs")
        select_option(app, RunList, first.name)
        await pilot.press("a")
        await wait_for(pilot, lambda: monitor.view.status == "completed", what="attach")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        screen = app.screen
        screen.query_one("#compare-runs").select(second.name)
        acc = screen.query_one("#compare-acc", ChartPlot)
        await wait_for(pilot, lambda: len(acc.chart.curves) == 2, what="two curves")
        assert [len(c.steps) for c in acc.chart.curves] == [3, 5]  # the attached run came preselected
        await wait_for(pilot, lambda: acc.points_drawn == 8, what="both runs drawn")
        assert "aaaaaa" in screen_text(app) and "bbbbbb" in screen_text(app)
        assert {first.name, second.name} <= set(backend.viewed)  # read through the app's backend
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)


def test_the_backend_folds_a_run_dir_into_a_view(tmp_path):
    run_dir = write_run(tmp_path, evals=3)
    view = Backend().run_view(run_dir)
    assert view.status == "completed" and [e.step for e in view.evals] == [0, 100, 200]
    assert Backend().run_view(tmp_path / "not-a-run").evals == ()  # no events.jsonl yet: an empty view


SWEEP_PRESET = """
name = "sweepy"
title = "Fig. 9"
description = "three seeds"
[train]
steps = 100
[sweep]
seeds = [0, 1, 2]
"""


class StartRecordingBackend(Backend):
    """The real backend, except that start() records its specs and writes a synthetic run."""

    def __init__(self, runs: Path, gpus: list[str] = ()):
        self.runs, self.started, self.gpus_given, self._gpus = runs, [], [], list(gpus)

    def start(self, spec, preset_name: str, runs_dir: Path, gpu: str | None = None) -> Path:
        self.started.append(spec)
        self.gpus_given.append(gpu)
        return write_run(runs_dir, f"20240101T00000{len(self.started)}Z-{preset_name}-{len(self.started):06d}", evals=2)


@pytest.mark.parametrize("which, expected_seeds", [(1, [1]), (-1, [0, 1, 2])])
async def test_the_form_starts_one_run_of_a_sweep_or_all(dirs, which, expected_seeds):
    runs, presets = dirs
    (presets / "sweepy.toml").write_text(SWEEP_PRESET)
    backend = StartRecordingBackend(runs)
    app = make_app(runs, presets, backend=backend)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 1, what="presets")
        assert "3 runs · sweeps seeds" in screen_text(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the run form")
        assert "which run" in screen_text(app)
        app.screen.query_one("#which").value = which
        app.screen.query_one("#steps").value = "7"
        await pilot.click("#form-run")
        await wait_for(pilot, lambda: len(backend.started) == len(expected_seeds), what="starts")
        assert [s.config.train.seed for s in backend.started] == expected_seeds
        assert all(s.config.train.steps == 7 for s in backend.started)
        await wait_for(pilot, lambda: monitor.view.status == "completed", what="attached to the first")


@pytest.mark.parametrize("gpus, choice, given", [([], None, None), (["0", "1"], None, "auto"), (["0", "1"], "1", "1")])
async def test_the_form_offers_the_gpus_of_the_box(dirs, gpus, choice, given):
    # On a GPU box the form has a GPU row (default: the least busy); on a CPU box none.
    runs, presets = dirs
    (presets / "sweepy.toml").write_text(SWEEP_PRESET)
    backend = StartRecordingBackend(runs, gpus)
    app = make_app(runs, presets, backend=backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 1, what="presets")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the run form")
        assert ("auto: the least busy" in screen_text(app)) == bool(gpus)
        if choice is not None:
            app.screen.query_one("#gpu").value = choice
        await pilot.click("#form-run")
        await wait_for(pilot, lambda: len(backend.started) == 1, what="the start")
        assert backend.gpus_given == [given]
