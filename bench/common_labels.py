"""Every run of a sweep asked the same question: its checkpoints read on one common label set.

    .venv/bin/python bench/common_labels.py runs/sweeps/<id> [--dx 0.5] [--n 100] [--at 600 900] [--threads 1]

A run's own evals draw their labels from its own training grid, so a dx = 4 run (64 centres) is
asked about the 64 positions it was trained on, and a dx = 0.5 run about 4,096. That is the
paper's reading (App. A.3); it cannot tell a model that places bumps *between* its grid points
from one that memorised them. Here every checkpoint of every run of the sweep (EMA weights, as the
worker evaluates them) is read by the real ``labconsole.evaluate.Evaluator`` on labels drawn from
one grid of increment ``--dx`` (default 0.5: mostly off-grid for the coarser runs), with the run's
own sampler, noise seed, detector and phase rule. The table gives, per run and checkpoint,
accuracy (of its ceiling), acc_x, acc_y, UMAP and PCA R² and the phase; the summary, per setting,
the mean accuracy over seeds at each checkpoint step.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import load_trained, parser, set_threads, table  # noqa: E402
from labconsole.evaluate import Evaluator  # noqa: E402
from model.checkpoint import checkpoint_step  # noqa: E402

CPU = torch.device("cpu")


def run_dirs(sweep: Path) -> list[tuple[str, int, Path]]:
    """(setting label, seed, run dir) of every run the sweep started, from its sweep.json."""
    manifest = json.loads((sweep / "sweep.json").read_text())
    runs_dir = sweep.parents[1]
    return [(r["setting"], r["seed"], runs_dir / r["run_dir"]) for r in manifest["runs"] if r["run_dir"]]


def read(path: Path, dx: float, n: int) -> dict:
    """One checkpoint read on the common grid: its config with only data.dx / dy and n changed."""
    cfg, net, step = load_trained(path)
    common = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dx=dx, dy=dx),
                                 eval=dataclasses.replace(cfg.eval, n_samples=n))
    return Evaluator(common, CPU)(step, net).numbers()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("sweep", type=Path, help="a sweep dir (runs/sweeps/<id>)")
    p.add_argument("--dx", type=float, default=0.5, help="the common grid's increment (default 0.5)")
    p.add_argument("--n", type=int, default=100, help="labels per reading (default 100)")
    p.add_argument("--at", type=int, nargs="+", help="only the checkpoints of these steps (default: all)")
    args = p.parse_args()
    set_threads(args.threads)
    rows, by_setting = [], {}
    for setting, seed, run in run_dirs(args.sweep):
        for ckpt in sorted((run / "checkpoints").glob("step-*.pt"), key=checkpoint_step):
            if args.at and checkpoint_step(ckpt) not in args.at:
                continue
            r = read(ckpt, args.dx, args.n)
            rows.append([setting, seed, r["step"], f"{r['accuracy']:.2f} / {r['ceiling']:.2f}",
                         r["accuracy_x"], r["accuracy_y"], r["r2_mean"], r["r2_pca_mean"], r["phase"]])
            by_setting.setdefault((setting, r["step"]), []).append(r["accuracy"] / max(r["ceiling"], 1e-9))
    table(f"every checkpoint read on the dx = dy = {args.dx:g} grid, N = {args.n}",
          ["setting", "seed", "step", "accuracy / ceiling", "acc_x", "acc_y", "R² UMAP", "R² PCA", "phase"], rows)
    summary = [[s, step, statistics.fmean(v), min(v), max(v), len(v)] for (s, step), v in by_setting.items()]
    table("accuracy of its ceiling on the common grid, over seeds", ["setting", "step", "mean", "min", "max", "n"],
          summary)


if __name__ == "__main__":
    main()
