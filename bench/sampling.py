"""Sampling: images/s of DDPM and DDIM, ours vs diffusers' schedulers; DDIM-25 vs DDPM-1000 evals.

    .venv/bin/python bench/sampling.py                     # trains the bench model first (~5 min idle)
    .venv/bin/python bench/sampling.py --checkpoint runs/<id>   # or reads a trained run's latest
    .venv/bin/python bench/sampling.py --quick             # tiny settings, a smoke run (~1-2 min)

1. Throughput. The quick preset's network (w16) and diffusion (T = 200, x0-prediction), a batch
   of ``--batch`` labels: ``model.diffusion.sample`` (DDPM over all T steps, DDIM 25 and 50)
   against the same network driven by diffusers' ``DDPMScheduler`` / ``DDIMScheduler`` set up
   as ours (our betas as ``trained_betas``, ``prediction_type="sample"``, clipping to [-1, 1],
   the posterior variance, ``timestep_spacing="linspace"``, eta 0), both under no_grad,
   alternating, medians (``--quick``: T = 50). "|ours - diff|" is the mean absolute difference of
   the two DDIM results from the same noise: diffusers' DDIM clips x0 but steps with the eps of
   the unclipped x0 and goes from t to t - T/n, ours derives eps from the clipped x0 and goes to
   the next visited t (without clipping, at every step, the two agree to 1e-5).
2. DDIM-25 against 1000-step ancestral DDPM on the issue's terms: a quick model trained with
   ``presets/quick.toml`` but ``diffusion.T = 1000`` (that preset's own T is 200), or the run
   given by ``--checkpoint``; one full evaluation (``labconsole.evaluate.Evaluator``, N = 500)
   with each sampler: the time of its sampling (incl. the layer-4 capture) and of the whole eval,
   and the accuracy each reads (the issue: >= 15x faster, accuracies within 0.05).
3. Perf checks of ``sample`` as it runs (no_grad, the network called on equal slices of at most
   ``model.diffusion.CPU_BATCH`` = 64 images): against the whole batch per call, slices of <= 128,
   and inference_mode. Alternating, DDIM-10 on ``--n`` labels (500).
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import labconsole.evaluate  # noqa: E402
from bench.common import (  # noqa: E402
    ROOT, Results, alternate, load_trained, median, parser, set_threads, spread, table, timed,
)
from bench.matched import NO_DIFFUSERS, have_diffusers  # noqa: E402
from labconsole.config import RunConfig  # noqa: E402
from labconsole.evaluate import Evaluator  # noqa: E402
from labconsole.presets import load_preset  # noqa: E402
from labconsole.runconfig import config_to_dict  # noqa: E402
from metrics import warm_up  # noqa: E402
from model import diffusion  # noqa: E402
from model.diffusion import Schedule, sample  # noqa: E402
from model.train import build_model, train  # noqa: E402
from model.unet import UNet  # noqa: E402

CPU = torch.device("cpu")
QUICK = ROOT / "presets" / "quick.toml"


# --------------------------------------------------------------------------- the two samplers


def ours(net, cfg: RunConfig, schedule: Schedule, mu, noise, sampler: str, steps: int | None):
    gen = torch.Generator().manual_seed(1)
    return sample(net, schedule, mu, noise, prediction=cfg.diffusion.prediction, sampler=sampler,
                  steps=steps, generator=gen)


def diffusers_scheduler(cfg: RunConfig, schedule: Schedule, sampler: str):
    """A diffusers scheduler with our schedule and conventions (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from diffusers import DDIMScheduler, DDPMScheduler
    common = dict(num_train_timesteps=schedule.T, trained_betas=schedule.betas.double().numpy(),
                  prediction_type={"eps": "epsilon", "x0": "sample", "v": "v_prediction"}[cfg.diffusion.prediction],
                  clip_sample=True, clip_sample_range=1.0)
    if sampler == "ddpm":
        return DDPMScheduler(variance_type="fixed_small", **common)
    return DDIMScheduler(set_alpha_to_one=True, timestep_spacing="linspace", **common)


@torch.no_grad()
def theirs(net, cfg: RunConfig, schedule: Schedule, mu, noise, sampler: str, steps: int | None):
    sched = diffusers_scheduler(cfg, schedule, sampler)
    sched.set_timesteps(schedule.T if sampler == "ddpm" else steps)
    gen = torch.Generator().manual_seed(1)
    x = noise
    for t in sched.timesteps:
        out = net(x, t.expand(len(x)), mu)
        x = (sched.step(out, t, x, generator=gen) if sampler == "ddpm" else sched.step(out, t, x, eta=0.0)).prev_sample
    return x


# --------------------------------------------------------------------------- models and configs


def quick_config(overrides: list[str]) -> RunConfig:
    return load_preset(QUICK, overrides).runs[0].config


def trained_model(args) -> tuple[RunConfig, UNet, int, float]:
    """(config, EMA-or-model weights, step, seconds spent training) from --checkpoint or a fresh run."""
    path = Path(args.checkpoint) if args.checkpoint else None
    seconds = 0.0
    if path is None:
        steps = [f"train.steps={args.train_steps}", "train.eval_at=[]"] if args.train_steps else []
        cfg = quick_config([f"diffusion.T={args.T}", *steps])
        ckpt_dir = Path(tempfile.mkdtemp(prefix="bench-sampling-")) / "checkpoints"
        start = time.perf_counter()
        train(cfg, checkpoint_dir=ckpt_dir, resolved_config=config_to_dict(cfg))
        seconds, path = time.perf_counter() - start, ckpt_dir
    cfg, net, step = load_trained(path)
    return cfg, net.eval(), step, seconds


def labels_and_noise(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, generator=g) * 32, torch.randn(n, 1, 32, 32, generator=g)


# --------------------------------------------------------------------------- 1. throughput


def throughput(args, res: Results) -> list[list]:
    cfg = quick_config([f"diffusion.T={args.throughput_T}"])
    torch.manual_seed(0)
    net = build_model(cfg.model, 0, CPU).eval()  # speed does not depend on the weights
    schedule = Schedule.from_config(cfg.diffusion, CPU)
    mu, noise = labels_and_noise(args.batch)
    rows = []
    for sampler, steps in (("ddpm", None), ("ddim", 25), ("ddim", 50)):
        name = f"{sampler}-{schedule.T if steps is None else steps}"
        out = {}

        def run(fn, key):
            def once():
                seconds = timed(lambda: out.__setitem__(key, fn(net, cfg, schedule, mu, noise, sampler, steps)))
                return args.batch / seconds
            return once

        runs = alternate({"ours": run(ours, "ours"), "diffusers": run(theirs, "diffusers")}, args.rounds)
        ratio = median(a / b for a, b in zip(runs["ours"], runs["diffusers"]))
        diff = float((out["ours"] - out["diffusers"]).abs().mean()) if sampler == "ddim" else float("nan")
        res.add(f"{name}_ours_ips", median(runs["ours"]))
        res.add(f"{name}_diffusers_ips", median(runs["diffusers"]))
        res.add(f"{name}_ratio", ratio)
        rows.append([name, args.batch, median(runs["ours"]), spread(runs["ours"]), median(runs["diffusers"]),
                     spread(runs["diffusers"]), ratio, diff])
    return rows


# --------------------------------------------------------------------------- 2. DDIM-25 vs DDPM-T evals


@contextlib.contextmanager
def timed_sampling(record: list[float]):
    """Time each ``sample`` call the Evaluator makes (an instrument for this bench only)."""
    real = labconsole.evaluate.sample

    def wrapper(*a, **kw):
        start = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            record.append(time.perf_counter() - start)

    labconsole.evaluate.sample = wrapper
    try:
        yield
    finally:
        labconsole.evaluate.sample = real


def eval_with(cfg: RunConfig, net: UNet, step: int, sampler: str, n: int, ddim_steps: int) -> dict:
    ec = dataclasses.replace(cfg.eval, sampler=sampler, ddim_steps=ddim_steps, n_samples=n, n_ood=0)
    evaluator = Evaluator(dataclasses.replace(cfg, eval=ec), CPU)
    record: list[float] = []
    with timed_sampling(record):
        start = time.perf_counter()
        fields = evaluator(step, net).numbers()
        total = time.perf_counter() - start
    return dict(fields, sampling_s=record[0], total_s=total)


def ddim_vs_ddpm(args, res: Results) -> tuple[list[list], dict]:
    cfg, net, step, train_s = trained_model(args)
    warm_up()  # UMAP's code loads once per process: not inside whichever eval runs first
    found = {s: eval_with(cfg, net, step, s, args.n, args.ddim_steps) for s in ("ddim", "ddpm")}
    rows = [[f["sampler"], f["n_samples"], f["sampling_s"], f["total_s"], f["accuracy"], f["ceiling"],
             f["blobs_1"], f["r2_mean"], f["phase"]] for f in found.values()]
    ddim, ddpm = found["ddim"], found["ddpm"]
    out = dict(
        model=f"{cfg.model.size}, T={cfg.diffusion.T}, {cfg.diffusion.prediction}-prediction, step {step}"
              + (f", trained here in {train_s:.0f} s" if train_s else ""),
        sampling_ratio=ddpm["sampling_s"] / ddim["sampling_s"], eval_ratio=ddpm["total_s"] / ddim["total_s"],
        accuracy_gap=abs(ddpm["accuracy"] - ddim["accuracy"]),
        names=(ddim["sampler"], ddpm["sampler"]),
    )
    for key in ("sampling_ratio", "eval_ratio", "accuracy_gap"):
        res.add(key, out[key])
    for s, f in found.items():
        res.add(f"{s}_accuracy", f["accuracy"])
        res.add(f"{s}_sampling_s", f["sampling_s"])
    if train_s:
        res.add("train_s", train_s)
    return rows, out


# --------------------------------------------------------------------------- 3. perf checks


@contextlib.contextmanager
def cpu_batch(size: int):
    """Run ``sample`` with another CPU slice size (the variant being checked)."""
    kept, diffusion.CPU_BATCH = diffusion.CPU_BATCH, size
    try:
        yield
    finally:
        diffusion.CPU_BATCH = kept


def perf_checks(args, res: Results) -> list[list]:
    cfg = quick_config([])
    net = build_model(cfg.model, 0, CPU).eval()
    schedule = Schedule.from_config(cfg.diffusion, CPU)
    mu, noise = labels_and_noise(args.n)

    def variant(model, mode=contextlib.nullcontext):
        def once():
            with mode():
                seconds = timed(lambda: sample(model, schedule, mu, noise, prediction=cfg.diffusion.prediction,
                                               sampler="ddim", steps=10))
            return args.n / seconds
        return once

    runs = alternate({
        "sample() as is": variant(net),
        "whole batch per network call": variant(net, lambda: cpu_batch(len(mu))),
        "slices of <= 128": variant(net, lambda: cpu_batch(128)),
        "inference_mode": variant(net, torch.inference_mode),
    }, args.rounds)
    base = runs.pop("sample() as is")
    rows = [["sample() as is", args.n, median(base), 1.0]]
    for name, values in runs.items():
        gain = median(a / b for a, b in zip(values, base))
        res.add(f"check_{name.split()[0]}_gain", gain)
        rows.append([name, args.n, median(values), gain])
    return rows


# --------------------------------------------------------------------------- main


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--checkpoint", help="a trained run dir (or checkpoint file) instead of training one")
    p.add_argument("--n", type=int, help="labels per evaluation (default 500; quick 24)")
    p.add_argument("--T", type=int, help="diffusion steps of the model trained here (default 1000; quick 100)")
    p.add_argument("--train-steps", type=int, help="steps of the model trained here (default: the preset's; quick 40)")
    p.add_argument("--ddim-steps", type=int, default=25, help="DDIM steps of the eval compared with DDPM (default 25)")
    p.add_argument("--batch", type=int, help="labels per throughput run (default 32; quick 8)")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 3; quick 2)")
    p.add_argument("--checks-only", action="store_true", help="only the perf checks of sample()")
    args = p.parse_args()
    set_threads(args.threads)
    if not have_diffusers():
        sys.exit(f"sampling: {NO_DIFFUSERS}")
    args.n = args.n or (24 if args.quick else 500)
    args.T = args.T or (100 if args.quick else 1000)
    args.train_steps = args.train_steps or (40 if args.quick else None)
    args.batch = args.batch or (8 if args.quick else 32)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.throughput_T = 50 if args.quick else quick_config([]).diffusion.T
    res = Results("sampling", args.quick, args.threads)

    if args.checks_only:
        table(f"perf checks of sample() (DDIM-10, {args.n} labels, images/s, alternating; x = vs as is)",
              ["variant", "N", "images/s", "x"], perf_checks(args, res))
        return res.finish(args, "perf checks only")
    rows = throughput(args, res)
    table(f"sampling, images/s (quick preset's w16 network, T = {args.throughput_T}, batch {args.batch}, "
          f"medians of {args.rounds} alternating rounds)",
          ["sampler", "batch", "ours", "ours range", "diffusers", "diff range", "ours/diff", "|ours - diff|"], rows)
    eval_rows, out = ddim_vs_ddpm(args, res)
    table(f"one evaluation per sampler ({out['model']})",
          ["sampler", "N", "sampling s", "eval s", "accuracy", "ceiling", "1 blob", "R2", "phase"], eval_rows)
    checks = perf_checks(args, res)
    table(f"perf checks of sample() (DDIM-10, {args.n} labels, images/s, alternating; x = vs as is)",
          ["variant", "N", "images/s", "x"], checks)

    ratios = [r[6] for r in rows]
    ddim, ddpm = out["names"]
    res.finish(args, f"ours/diffusers {min(ratios):.2f}x..{max(ratios):.2f}x; {ddim} eval sampling "
                     f"{out['sampling_ratio']:.1f}x faster than {ddpm} (target >= 15x), whole eval "
                     f"{out['eval_ratio']:.1f}x; accuracy gap {out['accuracy_gap']:.3f} (target <= 0.05)")


if __name__ == "__main__":
    main()
