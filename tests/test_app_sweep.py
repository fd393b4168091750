"""The sweep view (issue 13, "Console"): sweeps listed beside runs; a sweep's settings table, live
while its runs train, equal to ``labconsole.aggregate``'s on the same views; a censored setting;
Enter on a setting opens its runs; the preset's figure; 80x24 and 160x48 in Pilot and in tmux.

One real tiny sweep (2 settings x 2 seeds, ``labconsole --batch`` with --jobs 4) is shared by the
module and watched live by its first test. Its second setting sets eval.phase_r2_min = 1.0, which
no UMAP R² reaches: phase C is censored there by construction; the first reaches C at step 0.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from labconsole import sweep as sweeps
from labconsole.aggregate import Member, aggregate
from labconsole.app import make_app
from labconsole.app.backend import Backend, SweepFollower
from labconsole.app.charts import CENSORED_MARKER, SEED_MARKER, steps_chart
from labconsole.app.screens.sweep import RunPicker, SweepScreen
from labconsole.app.widgets.sweep_plot import SweepPlot
from labconsole.app.widgets.sweep_table import SettingsTable, columns_for, setting_row
from labconsole.events import encode
from labconsole.eventlog import read_events
from labconsole.presets import load_preset
from labconsole.rundir import pid_alive, read_meta
from labconsole.runview import replay
from runs_helpers import UMAP_EVAL, PRESETS, ROOT, popen_labconsole, set_args, tiny, wait_for as wait_until
from test_app_helpers import make_eval, screen_text, story, wait_for

SETS = tiny(UMAP_EVAL, "eval.phase_single_min=0.0", "eval.phase_accuracy_frac=0.0",
            "sweep.data.sigma,eval.phase_r2_min=[[1.0,0.0],[2.0,1.0]]", "sweep.seeds=[0,1]", seeds=False)
OPEN, CENSORED = "sigma=1.0 phase_r2_min=0.0", "sigma=2.0 phase_r2_min=1.0"
SCRIPT = ROOT / "scripts" / "tmux_console.sh"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep, started (not finished): ``proc`` is its batch; workers are killed at the end."""
    runs = tmp_path_factory.mktemp("sweep") / "runs"
    runs.mkdir()
    proc = popen_labconsole("--batch", str(PRESETS / "quick.toml"), *set_args(SETS), "--runs-dir", str(runs),
                            "--jobs", "4", "--no-figures", cwd=runs)
    try:
        path = wait_until(lambda: next((runs / "sweeps").glob("*/sweep.json"), None), what="the manifest").parent
        yield SimpleNamespace(runs=runs, path=path, proc=proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        for meta_file in runs.rglob("meta.json"):
            meta = read_meta(meta_file.parent)
            if meta.pid > 0 and pid_alive(meta.pid, meta.pid_start):
                os.killpg(meta.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def finished(sweep):
    """The sweep once its batch has ended (exit 0)."""
    out, err = sweep.proc.communicate(timeout=240)
    assert sweep.proc.returncode == 0, out[-2000:] + err[-2000:]
    return sweep


def expected_rows(path: Path) -> list[tuple[str, ...]]:
    """The table as labconsole.aggregate computes it from the run dirs (read whole, once)."""
    made = sweeps.load(path)
    views = sweeps.read_views(made)
    m = made.manifest
    aggs = aggregate(m.grid, [Member(r.setting, r.seed, r.run_dir, v, r.label) for r, v in zip(m.runs, views)])
    statuses = sweeps.statuses(views)
    ood = "acc OOD" in columns_for(aggs)
    return [setting_row(a, [s for r, s in zip(m.runs, statuses) if r.setting == a.setting.label], ood) for a in aggs]


async def open_sweep(app, pilot, sweep_id: str) -> SweepScreen:
    """Wait until the sidebar lists the sweep, press w, wait for the view's first snapshot."""
    await wait_for(pilot, lambda: any(s.id == sweep_id for s in app.sidebar.sweeps), timeout=30, what="the sweep listed")
    await pilot.pause(0.1)
    assert "Sweeps" in screen_text(app) and "quick · 4 runs" in screen_text(app)
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.snapshot is not None,
                   timeout=30, what="the sweep view")
    return app.screen


async def test_the_sweep_view_follows_a_real_sweep_live_and_ends_equal_to_aggregate(sweep):
    app = make_app(sweep.runs, PRESETS)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_sweep(app, pilot, sweep.path.name)
        seen: list[Counter] = []

        def done() -> bool:
            seen.append(Counter(screen.snapshot.statuses))
            return sweep.proc.poll() is not None and set(screen.snapshot.statuses) == {"completed"}

        await wait_for(pilot, done, timeout=240, what="every run completed in the view")
        assert any(set(c) != {"completed"} for c in seen), f"never saw the sweep unfinished: {seen[:3]}"
        await wait_for(pilot, lambda: screen.query_one(SettingsTable).row_values() == expected_rows(sweep.path),
                       timeout=10, what="the table equal to aggregate's")
        rows = {r[0]: r for r in screen.query_one(SettingsTable).row_values()}
        assert set(rows) == {OPEN, CENSORED}
        assert rows[OPEN][1] == rows[CENSORED][1] == "2/0/2" and rows[OPEN][2] == "12/12"
        assert rows[OPEN][4] == "0" and rows[CENSORED][4] == "> 12 ×2"  # steps to C: reached at 0 / censored
        text = screen_text(app)
        for expected in ("steps to C", f"{SEED_MARKER} seed {CENSORED_MARKER} censored", "> 12 ×2",
                         "accuracy · mean", "R² mean · mean", "PCA PR (effective dim) · mean", "esc Back", "o Runs"):
            assert expected in text, expected


def test_the_steps_chart_marks_censored_seeds_at_their_last_eval(finished):
    views = sweeps.read_views(sweeps.load(finished.path))
    m = sweeps.load(finished.path).manifest
    aggs = aggregate(m.grid, [Member(r.setting, r.seed, r.run_dir, v) for r, v in zip(m.runs, views)])
    chart = steps_chart(aggs, m.swept)
    points = {(c.marker, x, y) for c in chart.curves if c.points for x, y in zip(c.steps, c.values)}
    assert points == {(SEED_MARKER, 1.0, 0.0), (CENSORED_MARKER, 2.0, 12.0)}  # two seeds each, same spots
    assert chart.xlabel == "sigma, phase_r2_min" and chart.xticks == ((1.0, "1.0"), (2.0, "2.0"))


async def test_enter_on_a_setting_lists_its_runs_and_attaches_the_picked_one(finished):
    app = make_app(finished.runs, PRESETS)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_sweep(app, pilot, finished.path.name)
        table = screen.query_one(SettingsTable)
        table.focus()
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker), what="the run picker")
        assert app.screen.setting == CENSORED and len(app.screen.runs) == 2
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.monitor.attached is not None, what="a run attached")
        made = sweeps.load(finished.path)
        second_seed = [made.run_path(i) for i, r in enumerate(made.manifest.runs) if r.setting == CENSORED][1]
        assert app.monitor.attached == second_seed and app.screen is app.screen_stack[0]
        await wait_for(pilot, lambda: app.monitor.view.status == "completed", what="the attached run replayed")


async def test_at_80x24_the_view_shows_the_table_or_the_figure(finished):
    app = make_app(finished.runs, PRESETS)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sweep(app, pilot, finished.path.name)
        await wait_for(pilot, lambda: screen.query(SweepPlot).first().chart.n_points > 0, what="the figure drawn")
        shown = lambda: [w.id for w in (screen.query_one("#sweep-table"), screen.query_one("#sweep-figure"),
                                        screen.query_one("#sweep-curves")) if w.display]
        assert shown() == ["sweep-table"] and "> 12 ×2" in screen_text(app)
        await pilot.press("v")
        assert shown() == ["sweep-figure"]
        await pilot.pause(0.2)
        assert "steps to C" in screen_text(app) and CENSORED_MARKER in screen_text(app)
        await pilot.press("v")
        assert shown() == ["sweep-curves"] and screen.query_one("#sweep-pca").display  # the runs have a spectrum
        await pilot.pause(0.2)
        assert "PCA PR" in screen_text(app)
        await pilot.press("v")
        assert shown() == ["sweep-table"]  # the quick sweep's figure and curves, then the table again
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("size", ["160x48", "80x24"])
def test_the_sweep_view_draws_in_tmux(finished, size):
    wide = size == "160x48"
    waits = ["> 12 ×2"] + (["steps to C · •"] if wide else [])
    proc = subprocess.run(
        [str(SCRIPT), "--runs", str(finished.runs), "--presets", str(PRESETS), "--size", size,
         "--ready", "quick · 4 runs", "--keys", "w", *(a for w in waits for a in ("--wait", w)), "--timeout", "60"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    screen = proc.stdout.splitlines()
    cols, rows = map(int, size.split("x"))
    assert len(screen) == rows and max(len(line) for line in screen) <= cols
    for expected in (finished.path.name, "seeds ✓/●/all", "steps to C", OPEN[:20], "esc Back"):
        assert expected in proc.stdout, expected


# -- the follower and the sweep list on crafted run dirs (no training) ---------------------------


def test_the_follower_reads_only_what_each_events_file_gained(tmp_path):
    preset = load_preset(PRESETS / "quick.toml", ["sweep.seeds=[0,1]"])
    made = sweeps.create(preset, ["sweep.seeds=[0,1]"], tmp_path)
    run_dir = tmp_path / "20240101T000000Z-quick-aaaaaa"
    run_dir.mkdir()
    made.record(0, run_dir)
    events = story(None, run_dir.name, evals=3, finished=None)
    lines = [encode(e) + "\n" for e in events]
    (run_dir / "events.jsonl").write_text("".join(lines[:-4]))  # up to the last eval (step 200), excluded
    follower = Backend().follow_sweep(made.dir)
    first = follower.poll()
    assert first.statuses == ("running", "planned") and follower.poll() is first  # nothing new: same snapshot
    assert first.aggregates[0].terminal["step"].mean == 100
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write("".join(lines[-4:]) + encode(make_eval(900, 0.9, "C"))[:40])  # and a torn last line
    second = follower.poll()
    assert second.version == first.version + 1 and second.views[0] == replay(read_events(run_dir / "events.jsonl"))
    assert second.aggregates[0].terminal["step"].mean == 200  # the torn eval at 900 is not read yet
    assert follower._tails[0].offset == sum(len(x.encode()) for x in lines)  # the file was never re-read
    infos = Backend().list_sweeps(tmp_path, Backend().list_runs(tmp_path))
    assert [(i.id, i.n_runs, i.count("planned"), i.error) for i in infos] == [(made.dir.name, 2, 1, "")]


def test_a_broken_manifest_is_listed_with_its_error(tmp_path):
    broken = tmp_path / "sweeps" / "20240101T000000Z-quick-bad000"
    broken.mkdir(parents=True)
    (broken / "sweep.json").write_text("{")
    (info,) = Backend().list_sweeps(tmp_path, [])
    assert "not JSON" in info.error and str(broken / "sweep.json") in info.error
    with pytest.raises(ValueError, match="not JSON"):
        SweepFollower(broken)
