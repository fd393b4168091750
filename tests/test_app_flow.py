"""The console's real flow, with real workers (issue 5, "Must show").

Choose the quick preset with a tiny override in the run form, run -> a real worker starts, eval
events arrive, the curves have points, the bump grid shows bumps, the phase badge shows a phase;
stop works; attaching to the finished run replays it; a SIGKILLed worker shows as crashed, and R
resumes it from its checkpoint.
Each worker here trains a tiny UNet for a few steps on the CPU: expect ~30-60 s per test on a
loaded 2-core box (most of it the worker's torch import and first UMAP).
"""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from labconsole.app import make_app
from labconsole.app.screens.run_form import RunForm
from labconsole.app.widgets.bumps import BumpGrid
from labconsole.app.widgets.curves import ChartPlot
from labconsole.app.widgets.phase import phase_meaning
from labconsole.app.widgets.runs import PresetList, RunList
from labconsole.rundir import read_meta
from model.checkpoint import checkpoint_step, latest_checkpoint
from test_app_helpers import screen_text, wait_for

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "presets" / "quick.toml"
# What the form's free "overrides" field gets: a tiny UNet, few short evals (DDIM-5 of 16 labels).
TINY = ("model.size=tiny diffusion.T=50 train.batch_size=8 train.log_every=1 train.eval_at=[] "
        "train.checkpoint_every=5 train.warmup_steps=0 eval.n_samples=16 eval.sampler=ddim eval.ddim_steps=5")
WORKER_TIMEOUT = 150.0  # seconds for a worker to start, train a few steps and evaluate, under load


@pytest.fixture
def dirs(runs_dir):
    """(runs dir, presets dir holding the quick preset); workers left alive are killed at the end."""
    if not QUICK.exists():
        pytest.fail(f"{QUICK} does not exist (the quick preset is part of the presets issue)")
    runs, presets = runs_dir / "runs", runs_dir / "presets"
    presets.mkdir()
    shutil.copy(QUICK, presets / QUICK.name)
    return runs, presets


async def run_from_form(app, pilot, presets: Path, *, steps: int, eval_every: int) -> None:
    """Pick the quick preset, fill the form (steps, eval every, device, tiny overrides), Run."""
    await wait_for(pilot, lambda: app.query_one(PresetList).option_count == 1, what="the preset listed")
    preset_list = app.query_one(PresetList)
    preset_list.focus()
    preset_list.highlighted = 0
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the run form")
    await pilot.press(*str(steps))  # the steps field has focus
    form = app.screen
    form.query_one("#eval_every").value = str(eval_every)
    form.query_one("#device").value = "cpu"
    form.query_one("#extra").value = TINY
    await pilot.click("#form-run")
    await wait_for(pilot, lambda: app.monitor.attached is not None, timeout=30, what="the run to start")


async def test_run_watch_stop_and_replay(dirs):
    runs, presets = dirs
    app = make_app(runs, presets)
    sidebar = app.sidebar  # the presets and runs listed
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(160, 48)) as pilot:
        await run_from_form(app, pilot, presets, steps=5000, eval_every=5)
        run_dir = monitor.attached
        assert run_dir.parent == runs
        await wait_for(pilot, lambda: monitor.view.status == "running", timeout=WORKER_TIMEOUT, what="RunStarted")
        assert read_meta(run_dir).pid > 0
        await wait_for(pilot, lambda: len(monitor.view.evals) >= 2, timeout=WORKER_TIMEOUT, what="two evals")
        await wait_for(pilot, lambda: app.query_one(BumpGrid).shown > 0, timeout=10, what="bumps")
        await wait_for(pilot, lambda: app.query_one("#acc", ChartPlot).points_drawn >= 6, timeout=5,
                       what="accuracy curves with points")
        assert app.query_one("#r2", ChartPlot).points_drawn >= 6
        assert monitor.view.phase in ("A", "B", "C")
        assert monitor.view.total_steps == 5000
        text = screen_text(app)
        assert "running" in text and "+ target x predicted" in text
        assert f" {monitor.view.phase}  {phase_meaning(monitor.view.phase)}" in text  # the badge (a bump run)
        await wait_for(pilot, lambda: any(r.id == run_dir.name and r.status == "running" for r in sidebar.runs),
                       what="the run listed as running")

        await pilot.press("s")  # stop: SIGTERM, the worker finishes the step and checkpoints
        await wait_for(pilot, lambda: monitor.view.status == "stopped", timeout=60, what="stopped")
        assert 0 < monitor.view.step < 5000
        await wait_for(pilot, lambda: read_meta(run_dir).status == "stopped", timeout=10, what="meta.json stopped")
        assert (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        seen = [e.step for e in monitor.view.evals]

        # Attach to it again from the runs list: the finished run replays.
        await wait_for(pilot, lambda: any(r.id == run_dir.name and r.status == "stopped" for r in sidebar.runs),
                       what="the run listed as stopped")
        run_list = app.query_one(RunList)
        run_list.highlighted = [o.id for o in run_list.options].index(run_dir.name)
        run_list.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: monitor.generation >= 2 and monitor.view.status == "stopped", timeout=30,
                       what="the replay")
        assert [e.step for e in monitor.view.evals] == seen
        await wait_for(pilot, lambda: app.query_one(BumpGrid).shown > 0, timeout=10, what="bumps after replay")
        await pilot.press("q")  # nothing running: quits without asking
        await wait_for(pilot, lambda: app.return_code == 0, what="the app to exit")


async def test_a_killed_worker_shows_as_crashed(dirs):
    runs, presets = dirs
    app = make_app(runs, presets)
    monitor = app.monitor  # the attached run, watched
    async with app.run_test(size=(120, 40)) as pilot:
        await run_from_form(app, pilot, presets, steps=5000, eval_every=1000)
        run_dir = monitor.attached
        await wait_for(pilot, lambda: monitor.view.status == "running", timeout=WORKER_TIMEOUT, what="RunStarted")
        # Kill it once a checkpoint exists (TINY checkpoints every 5 steps), as a crash would.
        await wait_for(pilot, lambda: latest_checkpoint(run_dir / "checkpoints") is not None,
                       timeout=WORKER_TIMEOUT, what="a checkpoint")
        os.kill(read_meta(run_dir).pid, signal.SIGKILL)
        await wait_for(pilot, lambda: monitor.view.status == "crashed", timeout=30, what="crashed in the view")
        await wait_for(pilot, lambda: any(r.id == run_dir.name and r.status == "crashed" for r in app.sidebar.runs),
                       timeout=10, what="crashed in the runs list")
        assert "crashed" in screen_text(app)

        # R resumes the attached run: a new segment from its latest checkpoint, live in the view.
        resume_from = checkpoint_step(latest_checkpoint(run_dir / "checkpoints"))
        await pilot.press("R")
        await wait_for(pilot, lambda: monitor.view.status == "running" and monitor.view.segment == 1,
                       timeout=WORKER_TIMEOUT, what="the resumed segment running")
        assert monitor.view.start_step == resume_from > 0
        assert read_meta(run_dir).segment == 1
        await wait_for(pilot, lambda: monitor.view.step > resume_from, timeout=WORKER_TIMEOUT, what="training past it")
        await pilot.press("s")
        await wait_for(pilot, lambda: monitor.view.status == "stopped", timeout=60, what="the resumed run stopped")
