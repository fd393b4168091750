"""What an executor costs: the quick preset's three seeds through each executor on this box.

    .venv/bin/python bench/executors.py                # quick.toml x seeds 0 1 2, 900 steps (~25 min idle)
    .venv/bin/python bench/executors.py --steps 300 --rounds 2
    .venv/bin/python bench/executors.py --quick        # tiny runs of 30 steps: a smoke run (~2 min)
    .venv/bin/python bench/executors.py --only local ray

Runs ``labconsole --batch presets/quick.toml --set sweep.seeds=[0,1,2] --set train.threads=1`` once
per executor and round — ``local`` (``--jobs 2``), ``slurm`` (submitit's local executor,
``LABCONSOLE_SLURM_CLUSTER=local``: this box has no SLURM) and ``ray`` (a local Ray of this box's
cores, ``--ray-cpus-per-run 1``) — alternating their order every round, and reports the median
wall time of the whole batch, the run-steps per second (every run's steps over the wall time) and
the overhead against ``local``: the goal is within 10 %. One thread per run everywhere, so the
executors share the same cores the same way (a remote run keeps its configured threads).

Caveat: submitit's local executor starts every job of an array at once (no array parallelism),
so its three runs share two cores three ways; a real SLURM would queue the third.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Results, alternate, load_note, median, parser, spread, table  # noqa: E402

EXECUTORS = {
    "local": ["--jobs", "2"],
    "slurm": ["--executor", "slurm"],
    "ray": ["--executor", "ray", "--ray-cpus-per-run", "1"],
}
TINY = ["model.size=tiny", "diffusion.T=50", "train.batch_size=8", "train.eval_at=[]", "eval.n_samples=16",
        "eval.sampler=ddim", "eval.ddim_steps=3"]


def run_batch(name: str, overrides: list[str], work: Path) -> float:
    """One batch of the three seeds through ``name``; its wall seconds (exits on a failed batch)."""
    runs = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    sets = [a for o in overrides for a in ("--set", o)]
    cmd = [sys.executable, "-m", "labconsole.cli", "--batch", str(ROOT / "presets" / "quick.toml"), *sets,
           "--runs-dir", str(runs), *EXECUTORS[name]]
    env = {**os.environ, "LABCONSOLE_SLURM_CLUSTER": "local",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"executors: {name}: exit {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return wall


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=900, help="train.steps of each run (default: 900, the preset's)")
    p.add_argument("--rounds", type=int, default=1, help="batches per executor, alternating (default: 1)")
    p.add_argument("--only", nargs="+", choices=list(EXECUTORS), default=list(EXECUTORS), help="executors to time")
    args = p.parse_args()
    steps = 30 if args.quick else args.steps
    overrides = ["sweep.seeds=[0,1,2]", "train.threads=1", f"train.steps={steps}",
                 f"train.eval_every={max(steps // 2, 1)}"] + (TINY if args.quick else [])
    names = ["local"] + [n for n in args.only if n != "local"]  # local: the baseline
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        walls = alternate({n: (lambda n=n: run_batch(n, overrides, Path(tmp))) for n in names}, args.rounds)
    base = median(walls["local"])
    rows, results = [], Results("executors", args.quick, 1)
    for name in names:
        wall = median(walls[name])
        over = 100 * (wall / base - 1)
        rows.append([name, f"{wall:.1f}", spread(walls[name]), f"{3 * steps / wall:.2f}", f"{over:+.1f}%"])
        results.add(f"{name}_wall_s", wall)
    note = load_note()
    table(f"quick.toml x 3 seeds, {steps} steps, one thread a run{' (tiny)' if args.quick else ''}"
          + (f" [{note}]" if note else ""),
          ["executor", "wall s (median)", "range", "run-steps/s", "vs local"], rows)
    worst = max(median(walls[n]) / base - 1 for n in names)
    results.finish(args, f"worst overhead vs local --jobs 2: {100 * worst:+.1f}% (goal: within 10%)")


if __name__ == "__main__":
    main()
