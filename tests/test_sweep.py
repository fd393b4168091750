"""Sweeps: the manifest (round trip, one-run presets, bad files), the sweep list, and what a resume
plans from the run dirs — on real presets and crafted run dirs (no training here: the real sweep,
interrupted and resumed, is in test_report.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time

import pytest

from labconsole import runner
from labconsole import sweep as sweeps
from labconsole.cli import main
from labconsole.events import RunFinished, RunStarted
from labconsole.presets import load_preset
from labconsole.rundir import EventLog, list_runs, process_start_time, read_meta, write_meta
from runs_helpers import PRESETS
from test_app_helpers import make_eval

SIGMA = ["sweep.data.dx,data.dy=[[0.5,0.5],[1.0,1.0]]", "train.steps=100"]


def test_the_manifest_round_trips_and_rebuilds_each_planned_run(tmp_path):
    preset = load_preset(PRESETS / "sigma.toml", SIGMA)
    made = sweeps.create(preset, SIGMA, tmp_path / "runs")
    assert made.dir.parent == tmp_path / "runs" / "sweeps" and made.dir.name.split("-")[1] == "sigma"
    m = sweeps.load(made.dir).manifest
    assert m == made.manifest == sweeps.load(made.dir / "sweep.json").manifest
    assert m.swept == ("data.dx", "data.dy", "data.sigma") and m.overrides == tuple(SIGMA)
    assert [s.label for s in m.grid][:2] == ["dx=dy=0.5 sigma=0.5", "dx=dy=0.5 sigma=1.0"]
    assert len(m.grid) == 2 * 4 and len(m.runs) == 2 * 4 * 3 and [r.seed for r in m.runs[:4]] == [0, 1, 2, 0]
    assert m.grid[1].values == {"data.dx": 0.5, "data.dy": 0.5, "data.sigma": 1.0}
    for run, spec in zip(m.runs, preset.runs):  # what --resume does for a run never started
        (rebuilt,) = load_preset(m.preset_path, m.planned_overrides(run)).runs
        assert rebuilt.config == spec.config and run.label == spec.label and run.setting == spec.setting


def test_recording_a_run_dir_rewrites_the_manifest(tmp_path):
    preset = load_preset(PRESETS / "quick.toml", ["sweep.seeds=[0,1]"])
    made = sweeps.create(preset, ["sweep.seeds=[0,1]"], tmp_path)
    run_dir = runner.create_run(preset.runs[1], preset.name, tmp_path)
    made.record(1, run_dir)
    again = sweeps.load(made.dir)
    assert [r.run_dir for r in again.manifest.runs] == ["", run_dir.name]
    assert again.run_path(1) == run_dir and again.run_path(0) is None
    assert [p.name for p in made.dir.iterdir()] == ["sweep.json"]  # no temp file left behind
    assert [r.id for r in list_runs(tmp_path)] == [run_dir.name]  # sweeps/ is not a run


def test_a_preset_without_a_sweep_is_a_sweep_of_one_run(tmp_path):
    m = sweeps.create(load_preset(PRESETS / "quick.toml"), [], tmp_path).manifest
    assert m.swept == () and m.grid == (sweeps.Setting("", {}),)
    assert [(r.label, r.setting, r.seed, r.params) for r in m.runs] == [("", "", 0, {})]


BAD = {
    "not json": ("{", "not JSON"),
    "newer schema": ('{"version": 99}', "schema version 99"),
    "missing key": ('{"version": 1, "id": "x"}', "preset: missing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_manifest_is_one_line_naming_the_file(case, tmp_path):
    text, named = BAD[case]
    (tmp_path / "sweep.json").write_text(text)
    with pytest.raises(sweeps.SweepError) as err:
        sweeps.load(tmp_path)
    assert named in str(err.value) and "sweep.json" in str(err.value) and "\n" not in str(err.value)


def test_a_wrong_type_deep_in_the_manifest_is_named(tmp_path):
    made = sweeps.create(load_preset(PRESETS / "quick.toml"), [], tmp_path)
    data = json.loads((made.dir / "sweep.json").read_text())
    data["runs"][0]["seed"] = "zero"
    (made.dir / "sweep.json").write_text(json.dumps(data))
    with pytest.raises(sweeps.SweepError, match=r"runs\[0\]\.seed: expected int, got 'zero'"):
        sweeps.load(made.dir)
    with pytest.raises(sweeps.SweepError, match="no such file"):
        sweeps.load(tmp_path / "nope")
    with pytest.raises(sweeps.SweepError, match="not a sweep"):
        sweeps.load(tmp_path)


def test_list_sweeps_lists_broken_ones_with_their_error(tmp_path):
    assert sweeps.list_sweeps(tmp_path) == []
    good = sweeps.create(load_preset(PRESETS / "quick.toml"), [], tmp_path)
    broken = tmp_path / "sweeps" / "0-broken"
    broken.mkdir()
    listed = sweeps.list_sweeps(tmp_path)
    assert [(s.id, s.sweep is not None) for s in listed] == [("0-broken", False), (good.dir.name, True)]
    assert "not a sweep" in listed[0].error


# -- what a resume plans ----------------------------------------------------------------------


def fake_run(made: sweeps.Sweep, index: int, status: str | None, *, live: bool = False) -> None:
    """A run dir for planned run ``index`` with an eval; ``status`` None: died without finishing."""
    m = made.manifest
    spec = load_preset(m.preset_path, m.planned_overrides(m.runs[index])).runs[0]
    run_dir = runner.create_run(spec, m.preset, made.runs_dir)
    made.record(index, run_dir)
    with EventLog(run_dir / "events.jsonl") as log:
        log.append(RunStarted(run_id=run_dir.name, preset=m.preset, config={}, device="cpu", n_params=1))
        log.append(make_eval(0, 0.1, "A"))
        if status:
            log.append(RunFinished(status=status, step=0))
    pid = os.getpid() if live else 0
    meta = dataclasses.replace(read_meta(run_dir), status=status or "running", pid=pid, host=socket.gethostname(),
                               pid_start=process_start_time(pid) if live else None, heartbeat=time.time() - 600)
    write_meta(run_dir, meta)


def test_resume_plans_skip_resume_and_start_from_the_run_dirs(tmp_path):
    preset = load_preset(PRESETS / "quick.toml", ["sweep.seeds=[0,1,2,3]"])
    made = sweeps.create(preset, ["sweep.seeds=[0,1,2,3]"], tmp_path)
    fake_run(made, 0, "completed")
    fake_run(made, 1, "stopped")
    fake_run(made, 2, None)  # its worker is gone: crashed
    views = sweeps.read_views(made)
    assert sweeps.statuses(views) == ["completed", "stopped", "crashed", "planned"]
    assert sweeps.plan_resume(made, views) == ["skip", "resume", "resume", "start"]


def test_resume_refuses_a_live_run_and_a_finished_sweep_with_one_line(tmp_path, capsys):
    made = sweeps.create(load_preset(PRESETS / "quick.toml", ["sweep.seeds=[0,1]"]), [], tmp_path)
    fake_run(made, 0, "completed")
    fake_run(made, 1, None, live=True)  # this very process plays the worker
    assert main(["--batch", "--resume", str(made.dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is still running" in err[0] and made.dir.name in err[0]

    done = sweeps.create(load_preset(PRESETS / "quick.toml"), [], tmp_path)
    fake_run(done, 0, "completed")
    assert main(["--batch", "--resume", str(done.dir), "--jobs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every run of the sweep already completed" in err[0]
    assert main(["--batch", "--resume", str(done.dir), "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_a_run_dir_gone_since_is_started_again(tmp_path):
    made = sweeps.create(load_preset(PRESETS / "quick.toml", ["sweep.seeds=[0,1]"]), [], tmp_path)
    fake_run(made, 0, "completed")
    fake_run(made, 1, "stopped")
    shutil.rmtree(made.run_path(1))
    assert sweeps.plan_resume(made) == ["skip", "start"]
