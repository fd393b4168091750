"""How few DDIM steps an evaluation can take and still read the same accuracy, R² and phase.

    .venv/bin/python bench/ddim_steps.py runs/<id>            # every checkpoint of a quick run
    .venv/bin/python bench/ddim_steps.py runs/<id> --every 100 --steps 10 15 25 --reference ddpm
    .venv/bin/python bench/ddim_steps.py --quick runs/<id>    # 3 checkpoints, N = 100

A run's checkpoints (EMA weights, as the worker evaluates them) are each read by the real
``labconsole.evaluate.Evaluator`` once per sampler: DDIM with each ``--steps`` count, and with
``--reference ddpm`` the run's ancestral sampler (T steps: slow) on the last checkpoint. Every
reading uses the run's own eval settings (labels, starting noise, capture point) except the
sampler and N. The table shows, per checkpoint and sampler, accuracy (of its ceiling), mean UMAP R²,
the single-blob fraction, the phase and the eval's seconds; the summary gives, per step count, the
largest accuracy difference from the most-step DDIM reading and whether every phase agreed.

Use it to pick ``eval.ddim_steps`` for a preset: train one run with a short
``train.checkpoint_every`` (``labconsole --batch presets/quick.toml --set train.checkpoint_every=50``),
then run this on it.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import Results, load_trained, parser, set_threads, table  # noqa: E402
from labconsole.evaluate import Evaluator  # noqa: E402
from model.checkpoint import checkpoint_step  # noqa: E402

CPU = torch.device("cpu")


def checkpoints(run: Path, quick: bool, every: int) -> list[Path]:
    """The run's checkpoints by step, those at multiples of ``every`` (for --quick: the first, the
    middle and the last of those)."""
    found = [p for p in sorted((run / "checkpoints").glob("step-*.pt"), key=checkpoint_step)
             if checkpoint_step(p) % every == 0]
    if not found:
        raise SystemExit(f"error: no checkpoints in {run / 'checkpoints'}; expected a run dir of labconsole")
    return [found[0], found[len(found) // 2], found[-1]] if quick and len(found) > 3 else found


def read(cfg, net, step: int, sampler: str, steps: int, n: int) -> dict:
    """One real evaluation with the given sampler and N."""
    ec = dataclasses.replace(cfg.eval, sampler=sampler, ddim_steps=steps, n_samples=n)
    return Evaluator(dataclasses.replace(cfg, eval=ec), CPU)(step, net).numbers()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("run", type=Path, help="a run dir with checkpoints (train.checkpoint_every small)")
    p.add_argument("--steps", type=int, nargs="+", help="DDIM step counts (default 10 15 25)")
    p.add_argument("--n", type=int, help="samples per eval (default 500; quick 100)")
    p.add_argument("--every", type=int, default=1, help="only checkpoints at multiples of this step")
    p.add_argument("--reference", choices=("none", "ddpm"), default="none",
                   help="also read the last checkpoint with ancestral DDPM (T steps)")
    args = p.parse_args()
    set_threads(args.threads)
    steps = sorted(args.steps or [10, 15, 25])
    n = args.n or (100 if args.quick else 500)
    res = Results("ddim_steps", args.quick, args.threads)

    rows, worst, agree = [], {k: 0.0 for k in steps}, {k: True for k in steps}
    paths = checkpoints(args.run, args.quick, args.every)
    for i, path in enumerate(paths):
        cfg, net, step = load_trained(path)
        samplers = [("ddim", k) for k in steps]
        if args.reference == "ddpm" and i == len(paths) - 1:
            samplers.append(("ddpm", cfg.diffusion.T))
        readings = {(s, k): read(cfg, net, step, s, k, n) for s, k in samplers}
        ref = readings[("ddim", steps[-1])]
        for (s, k), f in readings.items():
            diff = f["accuracy"] - ref["accuracy"]
            if s == "ddim":
                worst[k] = max(worst[k], abs(diff))
                agree[k] &= f["phase"] == ref["phase"]
            rows.append([step, f["sampler"], f"{f['accuracy']:.2f} / {f['ceiling']:.2f}", f"{diff:+.2f}",
                         f["r2_mean"], f["blobs_1"], f["phase"], f["eval_seconds"]])
            res.add(f"step{step}_{f['sampler']}_accuracy", f["accuracy"])
            res.add(f"step{step}_{f['sampler']}_seconds", f["eval_seconds"])
        print(f"  step {step}: done ({i + 1}/{len(paths)})", flush=True)
    table(f"eval readings by sampler, N = {n}, {args.run.name} (difference: accuracy minus DDIM-{steps[-1]}'s)",
          ["step", "sampler", "accuracy / ceiling", "diff", "UMAP R2", "single", "phase", "eval s"], rows)
    for k in steps:
        res.add(f"ddim{k}_max_abs_diff", worst[k])
    res.finish(args, "; ".join(f"DDIM-{k}: max |accuracy - DDIM-{steps[-1]}| {worst[k]:.2f}, phases "
                               f"{'all agree' if agree[k] else 'DIFFER'}" for k in steps[:-1]))


if __name__ == "__main__":
    main()
