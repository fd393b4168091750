"""``labconsole --batch`` through the real CLI: shrunk paper presets end to end, bad input, Ctrl-C."""
from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from labconsole import events as ev
from labconsole.cli import main as cli_main
from labconsole.presets import load_preset
from runs_helpers import PRESETS, events_of, labconsole, popen_labconsole, set_args, tiny, wait_for

ALL_PRESETS = sorted(PRESETS.glob("*.toml"))


def run_dirs(runs: Path) -> list[Path]:
    """The run dirs under ``runs`` (``sweeps/`` holds the sweep manifests, not a run)."""
    return sorted(p for p in runs.iterdir() if p.is_dir() and p.name != "sweeps") if runs.exists() else []


@pytest.mark.parametrize("preset", ALL_PRESETS, ids=lambda p: p.stem)
def test_every_preset_dry_runs_and_lists_its_runs(preset, tmp_path, capsys):
    # --no-cost: the probe (a few steps of each distinct UNet) is tests/test_cost.py's; here ~20-50 s a preset.
    # In this process (the CLI's main): a subprocess a preset cost ~2 s each, for 30-odd presets; the
    # subprocess path of --dry-run is tests/test_cost.py's.
    code = cli_main(["--batch", str(preset), "--dry-run", "--no-cost", "--runs-dir", str(tmp_path / "runs")])
    result = SimpleNamespace(returncode=code, **dict(zip(("stdout", "stderr"), capsys.readouterr())))
    assert result.returncode == 0, result.stderr
    loaded = load_preset(preset)
    if loaded.kind == "overlap":
        assert "neighbour overlap" in result.stdout and "sigma" in result.stdout
    elif loaded.kind == "percolation":
        assert "largest-cluster share" in result.stdout and "sigma" in result.stdout
    else:
        assert f"{len(loaded.runs)} run(s)" in result.stdout
    assert not (tmp_path / "runs").exists()  # a dry run creates nothing


# Shrunk versions of paper presets: one setting each (sigma: two, one seed each), tiny model, a
# dozen steps. The imbalance, increments and other paper presets' data paths run end to end as their
# CPU miniatures (tests/test_mini_presets.py); every preset's every run is validated by the dry run.
SHRUNK = {
    "hole": ["data.dx=1.0", "data.dy=1.0"],
    "sigma": ["sweep.data.dx,data.dy=[[1.0,1.0]]", "sweep.data.sigma=[1.0,2.0]"],
}


@pytest.mark.parametrize("name", sorted(SHRUNK))
def test_shrunk_paper_presets_run_end_to_end(name, runs_dir):
    args = set_args(tiny(*SHRUNK[name]))
    result = labconsole("--batch", str(PRESETS / f"{name}.toml"), *args, "--runs-dir", str(runs_dir), "--jobs", "2",
                        "--no-figures", "--no-cost", cwd=runs_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "summary" in result.stdout and "completed" in result.stdout
    dirs = run_dirs(runs_dir)
    assert len(dirs) == len(load_preset(PRESETS / f"{name}.toml", tiny(*SHRUNK[name])).runs)
    for run_dir in dirs:
        evals = [e for e in events_of(run_dir) if isinstance(e, ev.Eval)]
        assert [e.step for e in evals] == [0, 6, 12]
        assert all((run_dir / e.samples_path).exists() for e in evals)
        assert (run_dir / "checkpoints" / "step-0000012.pt").exists()
        if name == "hole":  # in-hole (OOD) accuracy reported beside its ceiling
            assert all(e.accuracy_ood is not None and e.ceiling_ood is not None for e in evals)
    if name == "sigma":
        assert "best seed" not in result.stdout  # one seed per setting: nothing to pick
    (sweep,) = (runs_dir / "sweeps").iterdir()  # one --batch, one sweep, its report beside it
    assert f"report: {sweep / 'report'}" in result.stdout and (sweep / "report" / "summary.csv").is_file()


def test_seeds_of_a_setting_report_the_best_one(runs_dir):
    args = set_args(tiny(seeds=False) + ["sweep.seeds=[0,1]", "train.steps=6", "train.eval_every=6"])
    result = labconsole("--batch", str(PRESETS / "quick.toml"), *args, "--runs-dir", str(runs_dir), "--no-figures",
                        cwd=runs_dir)
    assert result.returncode == 0, result.stderr
    assert "best seed of the preset: seed=" in result.stdout


BAD_FLAGS = [
    (["--batch"], "needs a PRESET"),
    (["--batch", "presets/missing.toml"], "missing.toml"),
    (["--batch", "presets/quick.toml", "--set", "train.stepz=5"], "train.stepz"),
    (["--batch", "presets/quick.toml", "--set", "train.steps=-5"], "train.steps"),
    (["--batch", "presets/quick.toml", "--set", "train.steps=many"], "train.steps"),
    (["--batch", "presets/quick.toml", "--set", "diffusion.prediction=z"], "eps, x0, v"),
    (["--batch", "presets/quick.toml", "--set", "nonsense"], "nonsense"),
    (["--batch", "presets/quick.toml", "--jobs", "0"], "--jobs"),
    (["--batch", "presets/quick.toml", "--jobs", "two"], "--jobs"),
    (["--batch", "--resume", "no/such/run"], "no/such/run"),
    (["presets/quick.toml"], "need --batch"),
    (["--no-figures"], "need --batch"),  # not a console opened with the flag ignored
    (["--frobnicate"], "--frobnicate"),
]


@pytest.mark.parametrize("argv,named", BAD_FLAGS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_flags_give_one_line_exit_2_and_no_run_dir(argv, named, tmp_path):
    (tmp_path / "presets").symlink_to(PRESETS)
    result = labconsole(*argv, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


BAD_PRESETS = {
    "syntax": ("[train]\nsteps = = 3\n", "syntax.toml"),
    "unknown section": ("[trian]\nsteps = 3\n", "trian"),
    "wrong type": ('[train]\nsteps = "many"\n', "train.steps"),
    "out of range": ("[data]\nsigma = -1.0\n", "data.sigma"),
    "bad sweep": ('[sweep]\n"train.nope" = [1, 2]\n', "train.nope"),
}


@pytest.mark.parametrize("case", sorted(BAD_PRESETS))
def test_bad_preset_files_are_named_with_key_and_exit_2(case, tmp_path):
    text, named = BAD_PRESETS[case]
    preset = tmp_path / "syntax.toml"
    preset.write_text(text)
    result = labconsole("--batch", str(preset), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "syntax.toml" in lines[0] and named in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="signals to a process group")
def test_ctrl_c_stops_runs_with_a_checkpoint_and_exits_130(runs_dir):
    args = set_args(tiny(steps=100000, eval_every=100000, checkpoint_every=100000))
    proc = popen_labconsole("--batch", str(PRESETS / "quick.toml"), *args, "--runs-dir", str(runs_dir), "--no-figures",
                            cwd=runs_dir)
    run_dir = wait_for(lambda: (run_dirs(runs_dir) or [None])[0], what="the run dir")
    wait_for(lambda: any(isinstance(e, ev.Train) for e in events_of(run_dir)), what="training to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    events = events_of(run_dir)
    finished = events[-1]
    assert isinstance(finished, ev.RunFinished) and finished.status == "stopped", (events[-4:], out[-2000:], err[-2000:])
    assert (run_dir / "checkpoints" / f"step-{finished.step:07d}.pt").exists()
    assert "stopped" in out


def test_the_dry_run_table_shows_the_data_kind_canvas_and_keep(tmp_path):
    sets = ["data.kind=sos", "data.canvas=44", "data.keep=0.5"]
    result = labconsole("--batch", str(PRESETS / "quick.toml"), *set_args(sets), "--dry-run", "--no-cost",
                        "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sos canvas 44 keep 0.5" in " ".join(result.stdout.split())
