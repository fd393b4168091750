"""Every CPU miniature of a paper finding stays runnable (issue 14): each ``presets/*-mini.toml``
and ``presets/target.toml`` runs end to end as a real batch — every setting of its sweep, one seed,
a few steps, small evals — and leaves a sweep whose report has a row per setting.

The full sweeps (the numbers of docs/findings.md) take 10-60 minutes each; this checks the files,
the workers, the evals and the report of each. Every setting of every sweep is validated by the
dry-run test (tests/test_batch.py); here one preset (``GRID``) runs its whole grid and the others
their first setting (each sweep entry cut to its first value): what a worker does with a preset's
data kind, holes and canvas shows in one run, and each further run cost ~10 s of the suite.

Cost: ~17 s a preset one after another (a batch, a worker, two evals, a report with figures), most
of it start-up. So the batches run two at a time (one worker thread each: two on the two cores a CI
box has), and all but ``GRID`` evaluate 8 labels: below UMAP's 10, so those workers never import
it (~5 s each); ``GRID`` keeps 16 and reads R² as the full sweeps do.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labconsole.presets import load_preset

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "presets"
MINIS = sorted(PRESETS.glob("*-mini.toml")) + [PRESETS / "target.toml"]
GRID = "increments-mini"  # the one miniature run over its whole sweep grid (4 settings)
SHRINK = ["eval.umap_seeds=1", "train.steps=2", "train.eval_every=2", "train.eval_at=[]", "train.checkpoint_every=2",
          "train.log_every=1", "train.threads=1", "eval.ddim_steps=3", "eval.umap_neighbors=5", "sweep.seeds=[0]"]
FEW, UMAP = ["eval.n_samples=8", "eval.n_ood=8"], ["eval.n_samples=16", "eval.n_ood=16"]  # metrics.MIN_SAMPLES = 10
AT_ONCE = 2  # batches running together


def test_there_is_a_miniature_for_every_finding():
    names = {p.stem for p in MINIS}
    expected = {"phases", "increments", "imbalance-strong", "imbalance-weak", "sigma", "hole", "hole-big"}
    assert {f"{n}-mini" for n in expected} <= names


def shrunk_batch(path: Path, where: Path) -> tuple[subprocess.CompletedProcess, Path, list[str]]:
    """Run ``path`` shrunk (its first setting, or its whole grid for ``GRID``) into ``where``:
    (the finished batch, its runs dir, the extra ``--set`` values that cut its sweep)."""
    cut = [] if path.stem == GRID else first_setting(path)
    sets = [a for s in SHRINK + (UMAP if path.stem == GRID else FEW) + cut for a in ("--set", s)]
    runs_dir = where / "runs"
    done = subprocess.run([sys.executable, "-m", "labconsole.cli", "--batch", str(path), *sets, "--jobs", "2",
                           "--no-figures", "--runs-dir", str(runs_dir)], cwd=where, capture_output=True, text=True, timeout=600)
    return done, runs_dir, cut


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path, list[str]]]:
    """Every miniature's shrunk batch, ``AT_ONCE`` at a time, by preset name."""
    with ThreadPoolExecutor(AT_ONCE) as pool:
        running = {p.stem: pool.submit(shrunk_batch, p, tmp_path_factory.mktemp(p.stem)) for p in MINIS}
    return {name: future.result() for name, future in running.items()}


@pytest.mark.parametrize("path", MINIS, ids=[p.stem for p in MINIS])
def test_a_miniature_runs_end_to_end_shrunk(path, batches):
    full = load_preset(path)
    assert all(r.config.model.size != "paper" for r in full.runs), "a miniature trains a CPU-sized UNet"
    done, runs_dir, cut = batches[path.stem]
    settings = {r.setting for r in load_preset(path, cut).runs}
    assert path.stem != GRID or len(settings) > 1
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
    with open(sweep_dir / "report" / "evals.csv", newline="") as fh:
        r2 = [row["r2_mean"] for row in csv.DictReader(fh)]
    assert len(r2) == 2 * len(settings)  # evals at steps 0 and 2
    # GRID's 16 labels are read by UMAP; the others' 8 are too few, and say so with an empty R²
    assert all(v != "" for v in r2) if path.stem == GRID else all(v in ("", "nan") for v in r2), r2


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
