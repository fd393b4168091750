"""Every CPU miniature of a paper finding stays runnable (issue 14): each ``presets/*-mini.toml``
and ``presets/target.toml`` runs end to end as a real batch — every setting of its sweep, one seed,
a few steps, small evals — and leaves a sweep whose report has a row per setting.

The full sweeps (the numbers of docs/findings.md) take 10-60 minutes each; this checks the files,
the workers, the evals and the report of each. Every setting of every sweep is validated by the
dry-run test (tests/test_batch.py); here one preset (``GRID``) runs its whole grid and the others
their first setting (each sweep entry cut to its first value): what a worker does with a preset's
data kind, holes and canvas shows in one run, and each further run cost ~10 s of the suite.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from labconsole.presets import load_preset

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "presets"
MINIS = sorted(PRESETS.glob("*-mini.toml")) + [PRESETS / "target.toml"]
GRID = "increments-mini"  # the one miniature run over its whole sweep grid (4 settings)
SHRINK = ["eval.umap_seeds=1", "train.steps=2", "train.eval_every=2", "train.eval_at=[]", "train.checkpoint_every=2", "train.log_every=1",
          "eval.n_samples=16", "eval.n_ood=16", "eval.ddim_steps=3", "eval.umap_neighbors=5", "sweep.seeds=[0]"]


def test_there_is_a_miniature_for_every_finding():
    names = {p.stem for p in MINIS}
    expected = {"phases", "increments", "imbalance-strong", "imbalance-weak", "sigma", "hole", "hole-big"}
    assert {f"{n}-mini" for n in expected} <= names


@pytest.mark.parametrize("path", MINIS, ids=[p.stem for p in MINIS])
def test_a_miniature_runs_end_to_end_shrunk(path, tmp_path):
    full = load_preset(path)
    assert all(r.config.model.size != "paper" for r in full.runs), "a miniature trains a CPU-sized UNet"
    cut = [] if path.stem == GRID else first_setting(path)
    settings = {r.setting for r in load_preset(path, cut).runs}
    assert path.stem != GRID or len(settings) > 1
    sets = [a for s in SHRINK + cut for a in ("--set", s)]
    runs_dir = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "labconsole.cli", "--batch", str(path), *sets, "--jobs", "2",
                           "--runs-dir", str(runs_dir)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cost here" not in done.stdout, "a miniature is CPU-sized: no probe before it starts"
    (sweep_dir,) = (runs_dir / "sweeps").iterdir()
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert len(manifest["runs"]) == len(settings)
    for run in manifest["runs"]:
        meta = json.loads((runs_dir / Path(run["run_dir"]).name / "meta.json").read_text())
        assert meta["status"] == "completed", run
    with open(sweep_dir / "report" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(settings), rows


def first_setting(path: Path) -> list[str]:
    """``--set sweep.KEY=[first value]`` for every swept key of the preset but the seeds."""
    with open(path, "rb") as fh:
        sweep = tomllib.load(fh).get("sweep", {})
    axes: dict[str, list] = {}

    def walk(table: dict, prefix: str) -> None:  # data.sigma = [...] loads as {"data": {"sigma": [...]}}
        for key, value in table.items():
            walk(value, f"{prefix}{key}.") if isinstance(value, dict) else axes.setdefault(prefix + key, value)

    walk(sweep, "")
    # JSON's numbers, strings and (nested) lists are TOML inline values too
    return [f"sweep.{key}=[{json.dumps(values[0])}]" for key, values in axes.items() if key != "seeds"]
