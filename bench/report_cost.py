"""The cost of ``labconsole report`` on a sweep the size of the paper's Fig. 4 (issue 13: <= 10 s).

    .venv/bin/python bench/report_cost.py               # 30 runs x 51 evals, 3 rounds
    .venv/bin/python bench/report_cost.py --quick       # 2 settings x 2 seeds x 6 evals: a smoke run
    .venv/bin/python bench/report_cost.py --dir /tmp/sweep30   # build there once, reuse it next time

It builds a synthetic but realistic sweep of ``presets/increments.toml`` as it stands (10
increments x 3 seeds, 320,000 steps, an eval every 6,400 = 51 evals, a train event every 50
steps = 6,400 per run, a checkpoint event per eval): a real sweep.json (``labconsole.sweep``), real
run dirs (config.toml, meta.json), events.jsonl written with ``labconsole.events.encode`` from
learning curves shaped like the paper's (smaller increments reach phase C sooner; some dx = 1.0
seeds never do: censored), and real samples files (``labconsole.samples.write_samples``, 500
bump images with the eval's noise, labels, predictions and a 3-D embedding). Samples are written
for the evals the report reads (the first, each phase change, the last: the samples grid); the
other evals' files would only fill the disk (~1 GB), the report never opens them.

Then it times the real CLI in a subprocess, in alternation (bench/common.py), the median of
``--rounds``: CSVs only (matplotlib made unimportable, as for a user without the ``report``
extra), the default report (CSVs + the preset's figures + per-run figures of each setting's best
seed), and every run's figures (``labconsole report --all-runs``).
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Results, alternate, median, parser, spread, table  # noqa: E402
from labconsole import sweep as sweeps  # noqa: E402
from labconsole.events import Checkpoint, Eval, PhaseChange, RunFinished, RunStarted, Train, encode  # noqa: E402
from labconsole.presets import load_preset  # noqa: E402
from labconsole.runconfig import config_to_dict, dumps_config  # noqa: E402
from labconsole.rundir import CONFIG, EVENTS, Meta, create_run_dir, write_meta  # noqa: E402
from labconsole.samples import Samples, write_samples  # noqa: E402

PRESET = ROOT / "presets" / "increments.toml"
QUICK = ['sweep.data.dx,data.dy=[[0.5,0.5],[1.0,1.0]]', "sweep.seeds=[0,1]", "train.steps=32000",
         "eval.n_samples=100"]
TARGET_S = 10.0
T0 = 1.8e9  # unix seconds of the first event: any fixed time keeps the files reproducible

CSV_ONLY = ("import sys; sys.modules['matplotlib'] = None  # a user without the report extra\n"
            "from labconsole.cli import main; sys.exit(main(['report', *sys.argv[1:]]))")
KINDS = {  # how each report is started: ``python ARGS SWEEP --out DIR``
    "CSVs only": ["-c", CSV_ONLY],
    "CSVs + figures (best seeds)": ["-m", "labconsole.cli", "report"],
    "CSVs + figures (all runs)": ["-m", "labconsole.cli", "report", "--all-runs"],
}


# --------------------------------------------------------------------------- the synthetic sweep


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + np.exp(-z))


def curves(dx: float, steps: list[int], rng: np.random.Generator) -> list[dict]:
    """Eval numbers of one run: phase B by ~20k + 40k dx steps, C by ~60k + 250k dx (so some
    seeds at dx = 1.0 end before it), with seed-to-seed and eval-to-eval noise (C may flap)."""
    t_b = (20_000 + 40_000 * dx) * rng.uniform(0.8, 1.2)
    t_c = (60_000 + 250_000 * dx) * rng.uniform(0.8, 1.3)
    out = []
    for t in steps:
        learnt = sigmoid((t - t_c) / (0.12 * t_c))
        acc = float(np.clip(0.97 * learnt + rng.normal(0, 0.02), 0, 1))
        r2x, r2y = (float(np.clip(0.3 + 0.65 * sigmoid((t - 0.9 * t_c) / (0.1 * t_c)) + rng.normal(0, 0.03), 0, 1))
                    for _ in range(2))
        single = float(np.clip(sigmoid((t - t_b) / (0.2 * t_b)), 0, 1))
        phase = "A" if single < 0.5 else ("C" if acc >= 0.8 * 0.97 and (r2x + r2y) / 2 >= 0.8 else "B")
        out.append(dict(step=t, accuracy=acc, accuracy_x=min(1.0, acc + 0.3 * (1 - acc)),
                        accuracy_y=min(1.0, acc + 0.25 * (1 - acc)), ceiling=0.97, ceiling_x=0.99, ceiling_y=0.99,
                        r2_x=r2x, r2_y=r2y, r2_mean=(r2x + r2y) / 2, r2_pca_mean=0.9 * (r2x + r2y) / 2,
                        r2_shuffled=abs(rng.normal(0, 0.01)), blobs_0=(1 - single) * 0.7, blobs_1=single,
                        blobs_many=(1 - single) * 0.3, phase=phase, quality=learnt))
    return out


def events_of(run_id: str, label: str, cfg, numbers: list[dict], log_every: int) -> list[str]:
    """The lines of a completed run's events.jsonl, in the worker's order."""
    total, every = cfg.train.steps, cfg.train.eval_every
    lines = [encode(RunStarted(run_id, "increments", config_to_dict(cfg), "cpu (2 threads, fp32)", 23_000_000,
                               time=T0))]
    by_step = {n["step"]: n for n in numbers}
    phase = ""
    for step in range(0, total + 1, log_every):
        when = T0 + step * 0.05
        if step:
            lines.append(encode(Train(step, 0.02 + 0.5 / (1 + step / 2000), 3e-4, 320.0, time=when)))
        n = by_step.get(step)
        if n is None:
            continue
        fields = {k: v for k, v in n.items() if k != "quality"}
        reason = f"{n['phase']}: {n['blobs_1']:.0%} single bumps, accuracy {n['accuracy']:.2f}"
        lines.append(encode(Eval(**fields, phase_reason=reason, eval_seconds=55.0, n_samples=cfg.eval.n_samples,
                                 sampler="ddpm-1000", samples_path=f"samples/step-{step:07d}.npz", time=when)))
        if n["phase"] != phase:
            lines.append(encode(PhaseChange(step, phase, n["phase"], reason, time=when)))
            phase = n["phase"]
        if step and step % every == 0:
            lines.append(encode(Checkpoint(step, f"checkpoints/step-{step:07d}.pt", time=when)))
    lines.append(encode(RunFinished("completed", total, time=T0 + total * 0.05 + 60)))
    return lines


def render(labels: np.ndarray, sigma: float, quality: float, rng: np.random.Generator) -> np.ndarray:
    """(N, 32, 32) float32 dark bumps on white at ``labels``, blended with noise as training goes."""
    pix = np.arange(32) + 0.5
    d2 = (pix[None, None, :] - labels[:, 0, None, None]) ** 2 + (pix[None, :, None] - labels[:, 1, None, None]) ** 2
    clean = 1 - 2 * np.exp(-d2 / (2 * sigma**2))
    noisy = quality * clean + (1 - quality) * rng.normal(0, 0.8, clean.shape) + rng.normal(0, 0.05, clean.shape)
    return np.clip(noisy, -1, 1).astype(np.float32)


def samples_of(n: dict, labels: np.ndarray, sigma: float, rng: np.random.Generator) -> Samples:
    q = float(n["quality"])
    ordered = np.c_[labels / 32, 0.3 * np.sin(labels[:, 0] / 5)]  # an ordered sheet in phase C
    embedding = (q * ordered + (1 - q) * rng.normal(0, 1, ordered.shape)).astype(np.float32)
    pred = (labels + rng.normal(0, 4 * (1 - q) + 0.3, labels.shape)).astype(np.float32)
    return Samples(render(labels, sigma, q, rng), labels, pred, np.ones(len(labels), dtype=int), embedding,
                   np.zeros(len(labels), dtype=bool), step=int(n["step"]))


def build(runs_dir: Path, overrides: list[str], preset_path: Path = PRESET) -> Path:
    """Write the sweep of ``preset_path`` (a training preset) under ``runs_dir``; returns its dir."""
    preset = load_preset(preset_path, overrides)
    sweep = sweeps.create(preset, overrides, runs_dir)
    for i, spec in enumerate(preset.runs):
        cfg = spec.config
        run_dir = create_run_dir(runs_dir, preset.name, {CONFIG: dumps_config(cfg)})
        write_meta(run_dir, Meta(run_dir.name, "completed", preset.name, spec.label, started=T0, ended=T0 + 1))
        rng = np.random.default_rng([cfg.train.seed, int(cfg.data.dx * 1000)])
        steps = list(range(0, cfg.train.steps + 1, cfg.train.eval_every))
        numbers = curves(cfg.data.dx, steps, rng)
        lines = events_of(run_dir.name, spec.label, cfg, numbers, cfg.train.log_every)
        (run_dir / EVENTS).write_text("\n".join(lines) + "\n", encoding="utf-8")
        axes = (np.arange(0, 32, cfg.data.dx), np.arange(0, 32, cfg.data.dy))  # the grid's centres
        labels = np.stack([rng.choice(centres, cfg.eval.n_samples) for centres in axes], 1)
        for j, n in enumerate(numbers):  # the evals the samples grid reads (module docstring)
            if j in (0, len(numbers) - 1) or n["phase"] != numbers[j - 1]["phase"]:
                write_samples(run_dir, n["step"], samples_of(n, labels.astype(np.float32), cfg.data.sigma, rng))
        sweep.record(i, run_dir)
    return sweep.dir


def find_or_build(where: Path, overrides: list[str]) -> Path:
    """The sweep this script built in ``where`` before (same overrides), else a new one."""
    for listing in sweeps.list_sweeps(where):
        if listing.sweep is not None and list(listing.sweep.manifest.overrides) == overrides:
            return listing.path
    return build(where, overrides)


# --------------------------------------------------------------------------- timing


def run_report(args: list[str], sweep_dir: Path, out: Path) -> tuple[float, float, int]:
    """One report in a fresh process (imports included): its wall seconds, its CPU seconds (user
    + system: near what an idle machine takes, when other work shares the cores) and its files."""
    shutil.rmtree(out, ignore_errors=True)
    args = [*args, str(sweep_dir), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before, start = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - before
    if done.returncode != 0:
        sys.exit(f"error: the report failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, cpu, sum(1 for p in out.rglob("*") if p.is_file())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(sweep_dir: Path, out: Path, rounds: int) -> dict[str, tuple[list[float], list[float], int]]:
    """Each kind of report ``rounds`` times, in alternation: (wall seconds, CPU seconds, files)."""
    cpu: dict[str, list[float]] = {k: [] for k in KINDS}
    files: dict[str, int] = {}

    def timer(name: str):
        def once() -> float:
            seconds, used, files[name] = run_report(KINDS[name], sweep_dir, out)
            cpu[name].append(used)
            return seconds
        return once

    walls = alternate({k: timer(k) for k in KINDS}, rounds)
    return {k: (walls[k], cpu[k], files[k]) for k in KINDS}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=3, help="timed reports of each kind (default: 3; --quick: 1)")
    p.add_argument("--dir", type=Path, help="build the sweep here and keep it (reused when already built)")
    args = p.parse_args()
    overrides = QUICK if args.quick else []
    work = Path(tempfile.mkdtemp(prefix="report-cost-"))
    try:
        start = time.perf_counter()
        sweep_dir = find_or_build(args.dir or work / "runs", overrides)
        n_runs = len(sweeps.load(sweep_dir).manifest.runs)
        train = load_preset(PRESET, overrides).runs[0].config.train
        n_evals = len(range(0, train.steps + 1, train.eval_every))
        print(f"sweep {sweep_dir} ({n_runs} runs x {n_evals} evals) ready in {time.perf_counter() - start:.1f} s")
        results = measure(sweep_dir, work / "out", 1 if args.quick else args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res = Results("report_cost", args.quick, args.threads)
    rows = []
    for (name, (walls, cpu, files)), key in zip(results.items(), ("csv", "figures", "all_runs")):
        res.add(f"{key}_s", median(walls))
        res.add(f"{key}_cpu_s", median(cpu))
        ok = "yes" if median(walls) <= TARGET_S else "NO"
        rows.append([name, median(walls), spread(walls), median(cpu), files, ok])
    table(f"labconsole report of {n_runs} runs x {n_evals} evals (median of {len(walls)} run(s), seconds, a fresh "
          f"process each)", ["report", "wall s", "range", "cpu s", "files", f"<= {TARGET_S:g} s"], rows)
    f = res.figures
    res.finish(args, f"report of {n_runs} runs x {n_evals} evals: {f['figures_s']:.1f} s ({f['figures_cpu_s']:.1f} s "
                     f"CPU) with figures (target {TARGET_S:g} s), {f['csv_s']:.1f} s CSVs only, "
                     f"{f['all_runs_s']:.1f} s with every run's figures")


if __name__ == "__main__":
    main()
