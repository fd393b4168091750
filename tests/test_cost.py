"""The cost of a run, said before it is paid (issue 14): the probe, the arithmetic, the batch's
lines before training starts, the dry-run column and the console's run form."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labconsole import cost
from labconsole.app import make_app
from labconsole.app.backend import Backend
from labconsole.app.screens.run_form import RunForm
from labconsole.app.widgets.runs import PresetList
from labconsole.presets import list_presets, load_preset
from model.train import eval_steps
from test_app_helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "presets"
# A paper preset made tiny: the same file (and its ``mini``), a probe of seconds.
TINY = ["model.size=tiny", "train.batch_size=4", "eval.n_samples=8", "eval.umap_neighbors=4", "eval.sampler=ddim", "eval.ddim_steps=3",
        "diffusion.T=20", "train.steps=3", "train.eval_every=3", "train.log_every=1", "train.checkpoint_every=3",
        "sweep.seeds=[0]", "sweep.data.dx,data.dy=[[4.0,4.0]]", "train.device=cpu", "train.threads=1"]


def test_eval_count_is_the_trainers():
    """``cost.n_evals`` counts what ``model.train.eval_steps`` evaluates, for every preset."""
    for preset in list_presets(PRESETS):
        for spec in preset.runs[:3]:
            assert cost.n_evals(spec.config) == len(eval_steps(spec.config.train)), preset.name


def test_estimate_is_the_documented_arithmetic():
    cfg = load_preset(PRESETS / "quick.toml").runs[0].config  # 900 steps, 9 evals of DDIM-15 x 100
    probe = cost.Probe(device="cpu (2 threads, fp32)", step_s=0.2, forward_s=0.001, gemm_gflops=200.0, probe_s=3.0)
    est = cost.estimate(cfg, probe)
    assert est.n_evals == 9
    assert est.train_s == pytest.approx(900 * 0.2)
    assert est.eval_s == pytest.approx(9 * (15 * 0.001 * 100 + cost.UMAP_S))
    assert est.total_s == pytest.approx(est.train_s + est.eval_s)
    ddpm = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, sampler="ddpm"))
    assert cost.sampler_steps(ddpm) == cfg.diffusion.T


def test_human_units():
    assert [cost.human(s) for s in (5, 600, 7200, 86400 * 3)] == ["5 s", "10.0 min", "2.0 h", "3.0 days"]


def test_a_real_probe_measures_the_run_in_a_subprocess():
    cfg = load_preset(PRESETS / "increments.toml", TINY).runs[0].config
    probe = cost.run_probe(cfg)
    assert probe.on_cpu and probe.device.startswith("cpu (1 threads")
    assert 0 < probe.step_s < 30 and 0 < probe.forward_s < 5
    assert probe.gemm_gflops > 0.5  # any CPU of this decade does far more; 0 would mean no measurement
    lines = cost.cost_lines([cfg], {cost.probe_key(cfg): probe}, "presets/increments-mini.toml")
    assert lines[0].startswith("cost here: ~") and "GFLOP/s" in lines[0]
    assert any("increments-mini.toml" in line for line in lines)


def test_a_failing_probe_is_one_line(monkeypatch):
    cfg = load_preset(PRESETS / "quick.toml").runs[0].config
    monkeypatch.setattr(cost.sys, "executable", "/bin/false")
    with pytest.raises(cost.ProbeError, match="the cost probe failed"):
        cost.run_probe(cfg)


def test_every_paper_preset_names_a_miniature_that_exists():
    named = {p.name: p.mini for p in list_presets(PRESETS) if p.mini}
    assert {"phases", "increments", "imbalance-strong", "imbalance-weak", "sigma", "hole", "hole-big"} <= set(named)
    for name, mini in named.items():
        assert (PRESETS / f"{mini}.toml").exists(), f"{name}: mini = {mini!r} has no file"
        assert not load_preset(PRESETS / f"{mini}.toml").mini, f"{mini} is itself a miniature"


def _batch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labconsole.cli", "--batch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_dry_run_shows_the_cost_of_each_run(tmp_path):
    sets = [a for s in TINY for a in ("--set", s)]
    done = _batch(str(PRESETS / "increments.toml"), *sets, "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "est. here" in done.stdout and "cost here: ~" in done.stdout
    assert "increments-mini.toml" in done.stdout
    assert not (tmp_path / "runs").exists()  # a dry run creates nothing


def test_a_paper_preset_says_its_cost_before_it_trains(tmp_path):
    sets = [a for s in TINY for a in ("--set", s)]
    done = _batch(str(PRESETS / "increments.toml"), *sets, "--runs-dir", str(tmp_path / "runs"), "--no-figures", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"cost here: ~\S+ (s|min|h|days) for 1 run\(s\) on cpu", out), out
    assert out.index("cost here") < out.index("started on"), "the cost must come before training starts"


def test_a_cpu_preset_starts_without_a_probe(tmp_path):
    sets = [a for s in TINY[:-3] for a in ("--set", s)]
    done = _batch(str(PRESETS / "quick.toml"), *sets, "--runs-dir", str(tmp_path / "runs"), "--no-figures", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cost here" not in done.stdout


class _CostBackend(Backend):
    """The real backend, with the probe replaced by a fixed answer released by the test."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []

    def cost_lines(self, preset):
        self.asked.append(preset.name)
        self.release.wait(10)
        return ["cost here: ~89.0 days for 30 run(s) on cpu", "  its CPU miniature: labconsole --batch x-mini.toml"]


async def test_the_run_form_shows_a_paper_presets_cost(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    for name in ("increments", "increments-mini", "quick"):
        shutil.copy(PRESETS / f"{name}.toml", presets)
    backend = _CostBackend()
    app = make_app(runs_dir=tmp_path / "runs", presets_dir=presets, backend=backend)
    async with app.run_test(size=(160, 48)) as pilot:
        plist = app.query_one(PresetList)
        await wait_for(pilot, lambda: plist.option_count == 3, what="the presets listed")
        names = [p.name for p in app.sidebar.presets]
        plist.focus()
        plist.highlighted = names.index("increments")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the run form")
        shown = app.screen.query_one("#form-cost")
        assert "measuring" in str(shown.render())
        backend.release.set()
        await wait_for(pilot, lambda: "89.0 days" in str(shown.render()), what="the cost in the form")
        assert "x-mini.toml" in str(shown.render())
        await pilot.press("escape")
        plist.highlighted = names.index("quick")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm), what="the quick run form")
        assert not app.screen.query("#form-cost"), "a CPU preset has no probe to wait for"
    assert backend.asked == ["increments"]


def test_the_eval_batch_is_one_ood_group_however_many_holes():
    from labconsole.config import EvalConfig, RunConfig
    from model.config import DataConfig

    cross = DataConfig(kind="sos", holes=((13.0, 0.0, 19.0, 31.0), (0.0, 13.0, 31.0, 19.0)), canvas=44, keep=0.5)
    ec = EvalConfig(n_samples=100, n_ood=40)
    assert cost.eval_batch(RunConfig(data=cross, eval=ec)) == 140  # the arms and their intersection share n_ood
    assert cost.eval_batch(RunConfig(data=DataConfig(kind="stripe", canvas=44), eval=ec)) == 100  # no hole, no OOD
