"""The bench scripts that need no extra packages run end to end and print their summary line.

Smoke runs only: these check that a script works on this checkout, never how fast anything is
(speed is measured by running the scripts themselves, docs/benchmarks.md).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from runs_helpers import ROOT, labconsole, set_args, tiny


def bench(*args: str, timeout: float = 300) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_ddim_steps_reads_every_checkpoint_with_each_sampler(tmp_path):
    done = labconsole("--batch", "presets/quick.toml", "--no-figures", "--runs-dir", str(tmp_path),
                      *set_args(tiny(steps=8, eval_every=8, checkpoint_every=4)), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "sweeps"]
    out = bench("bench/ddim_steps.py", str(run), "--steps", "2", "3", "--n", "16", "--threads", "1",
                "--save", str(tmp_path / "figures.json"))
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["4"], ["8"])]
    assert sorted((r[0], r[1]) for r in rows) == [("4", "ddim-2"), ("4", "ddim-3"), ("8", "ddim-2"), ("8", "ddim-3")]
    assert out.splitlines()[-1].startswith("SUMMARY ddim_steps: DDIM-2: max |accuracy - DDIM-3| ")
    assert (tmp_path / "figures.json").exists()


def test_ddim_steps_names_a_dir_without_checkpoints(tmp_path):
    out = subprocess.run([sys.executable, "bench/ddim_steps.py", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and f"no checkpoints in {tmp_path / 'checkpoints'}" in out.stderr


def test_eval_cost_splits_one_eval_by_stage_and_gives_its_share():
    out = bench("bench/eval_cost.py", "--quick", "--threads", "1", "--train-steps", "8", "--n", "32")
    stages = {line.split("  ")[0] for line in out.splitlines()}
    assert {"sampling", "label prediction", "UMAP + R2", "npz save", "total"} <= stages
    summary = out.splitlines()[-1]
    assert summary.startswith("SUMMARY eval_cost: one eval of N=32 takes ") and "of the quick preset's wall time" in summary


def test_report_cost_times_a_synthetic_sweep_with_and_without_figures(tmp_path):
    pytest.importorskip("matplotlib")  # the report extra (in the test extra too)
    out = bench("bench/report_cost.py", "--quick", "--save", str(tmp_path / "figures.json"))
    files = {line.split("  ")[0]: int(line.split()[-2]) for line in out.splitlines() if line.startswith("CSVs")}
    # 3 CSVs + README; + 2 figures of the sweep x PNG / PDF; + 3 per run x PNG / PDF, for 2 best seeds or 4 runs
    assert files == {"CSVs only": 4, "CSVs + figures (best seeds)": 8 + 2 * 6, "CSVs + figures (all runs)": 8 + 4 * 6}
    assert out.splitlines()[-1].startswith("SUMMARY report_cost: report of 4 runs x 6 evals: ")
    assert (tmp_path / "figures.json").exists()


def test_common_labels_rereads_a_sweep_on_one_grid_and_findings_table_reads_its_report(tmp_path):
    """bench/common_labels.py on a real tiny sweep of two increments: every checkpoint is read on
    the dx 2 grid (on-grid for the dx 2 run, off-grid halfway for the dx 4 run); then
    scripts/findings_table.py prints the sweep report's per-setting and per-run tables."""
    args = set_args(tiny(steps=4, eval_every=4, checkpoint_every=2)) + ["--set", "sweep.data.dx,data.dy=[[2.0,2.0],[4.0,4.0]]"]
    done = labconsole("--batch", "presets/increments-mini.toml", "--no-figures", "--runs-dir", str(tmp_path), *args, "--jobs", "2",
                      cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (sweep,) = (tmp_path / "sweeps").iterdir()
    out = bench("bench/common_labels.py", str(sweep), "--dx", "2", "--n", "16", "--threads", "1", "--at", "2", "4")
    rows = [line.split() for line in out.splitlines() if line.startswith("dx=dy=")]
    read = {(r[0], r[2]) for r in rows if len(r) > 8}
    assert read == {("dx=dy=2.0", "2"), ("dx=dy=2.0", "4"), ("dx=dy=4.0", "2"), ("dx=dy=4.0", "4")}, out
    table = bench("scripts/findings_table.py", str(sweep / "report"), "--runs")
    assert table.count("| dx=dy=2.0 |") == 2 and table.count("| dx=dy=4.0 |") == 2  # a setting row, a run row
    assert "accurate from" in table and "corr(R²_x, R²_y)" in table


def test_gemm_prints_this_machines_speed():
    out = bench("bench/gemm.py")
    speeds = [float(line.split("|")[2]) for line in out.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert len(speeds) == 2 and all(s > 0.5 for s in speeds)
