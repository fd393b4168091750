"""Runs per GPU: the sweep throughput of K paper-size runs packed on one GPU, K = 1, 2, 4, 8.

    bench/gpu.sh --pack                       # on a GPU box: K = 1 2 4 8, 400 steps each (~4 min)
    python bench/gpu_pack.py --ks 1 2 --steps 200
    python bench/gpu_pack.py --cpu-smoke      # the code path on the CPU, tiny model (not a measurement)

The paper-size UNet at batch 16 leaves a modern GPU mostly idle, so ``--runs-per-gpu K`` should
pay; this measures by how much, so the first time a GPU is at hand the default K comes from a
number. For each K it runs the real batch — ``labconsole --batch presets/increments.toml`` with K
seeds of one setting, ``--gpus 0 --runs-per-gpu K`` — and reads every run's Train events: each
run's steady steps/s (its log windows after the first fifth of its steps: start-up, CUDA and the
step-0 eval left out), summed over the K runs = the sweep's run-steps per second. The table gives
it, its gain over K = 1, and the wall time of the batch.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, table  # noqa: E402
from labconsole import eventlog  # noqa: E402
from labconsole import events as ev  # noqa: E402

SMALL_EVALS = ["eval.n_samples=16", "eval.sampler=ddim", "eval.ddim_steps=3", "train.eval_at=[]",
               "train.log_every=20", "eval.umap_seeds=1"]


def steady_rate(run_dir: Path, warm: int) -> float:
    """A run's steps/s over its Train events after step ``warm`` (0 when there are too few)."""
    train = [e for e in eventlog.read_events(run_dir / "events.jsonl") if isinstance(e, ev.Train) and e.step > warm]
    if len(train) < 2 or train[-1].time <= train[0].time:
        return 0.0
    return (train[-1].step - train[0].step) / (train[-1].time - train[0].time)


def pack(k: int, steps: int, cpu: bool, work: Path) -> tuple[float, float]:
    """Run K seeds at once on GPU 0 (or, ``cpu``, K jobs of the tiny model); (run-steps/s, wall s)."""
    runs = work / f"k{k}"
    sets = [f"sweep.seeds={list(range(k))}", "sweep.data.dx,data.dy=[[0.5,0.5]]",
            f"train.steps={steps}", f"train.eval_every={10 * steps}", f"train.checkpoint_every={10 * steps}",
            *SMALL_EVALS, *(["model.size=tiny", "train.device=cpu", "diffusion.T=50"] if cpu else [])]
    where = ["--gpus", "none", "--jobs", str(k)] if cpu else ["--gpus", "0", "--runs-per-gpu", str(k)]
    cmd = [sys.executable, "-m", "labconsole.cli", "--batch", str(ROOT / "presets" / "increments.toml"),
           *[a for s in sets for a in ("--set", s)], "--runs-dir", str(runs), *where]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"gpu_pack: K={k}: exit {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    dirs = [p for p in runs.iterdir() if p.is_dir() and p.name != "sweeps" and not p.name.startswith(".")]
    return sum(steady_rate(d, steps // 5) for d in dirs), wall


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8], help="runs per GPU to try (default: 1 2 4 8)")
    p.add_argument("--steps", type=int, default=400, help="training steps of each run (default: 400)")
    p.add_argument("--cpu-smoke", action="store_true", help="the tiny model on the CPU: checks the code path only")
    args = p.parse_args()
    steps = 60 if args.cpu_smoke else args.steps
    rows, base = [], None
    with tempfile.TemporaryDirectory(prefix="bench-gpu-pack-") as tmp:
        for k in args.ks:
            rate, wall = pack(k, steps, args.cpu_smoke, Path(tmp))
            base = base or rate
            rows.append([k, f"{rate:.1f}", f"{rate / base:.2f}x" if base else "-", f"{rate / k:.1f}", f"{wall:.0f}"])
    what = "tiny model on the CPU (smoke, not a measurement)" if args.cpu_smoke else "paper UNet, batch 16, one GPU"
    table(f"runs per GPU: {what}, {steps} steps a run",
          ["K", "run-steps/s", "vs K=1", "steps/s a run", "wall s"], rows)
    best = max(rows, key=lambda r: float(r[1]))
    print(f"\nSUMMARY gpu_pack: best K = {best[0]} ({best[1]} run-steps/s, {best[2]} of K=1)")


if __name__ == "__main__":
    main()
