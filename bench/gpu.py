"""The paper-size model on one CUDA GPU: training steps/s and the projected time of a paper run.

    bench/gpu.sh                       # the wrapper: checks for a GPU, then runs this (< 5 min)
    python bench/gpu.py [--no-compile] [--steps 300] [--batches 16 128]

Trains the paper's configuration (``RunConfig()`` defaults: 23.8M-parameter UNet, dx = 0.1 so
102,400 images resident on the GPU, T = 1000, eps-prediction, AdamW) through the real
``model.train.train`` loop on CUDA — bf16 autocast, channels_last, fused AdamW, no host sync but
at log steps — eager and, unless ``--no-compile``, with ``train.compile = true`` (torch.compile).
Speed is the median of the loop's own images/s over its log windows after the first (which
holds the warm-up and the compilation). It also counts the loop's CUDA host syncs per log window
(``torch.cuda.set_sync_debug_mode``): 1 means none but the log's own loss read. And the sampling
rate of one paper evaluation (500 labels, ancestral DDPM over T = 1000 steps), timed over
``--sample-steps`` network calls.

Projection: 320,000 steps at batch 16 (the paper's run) / the measured steps/s, plus 51 evals
(every 6,400 steps and at step 0) at the measured sampling rate. The paper: ~6 h on an A100.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import median, table  # noqa: E402
from labconsole.config import RunConfig  # noqa: E402
from model.train import TrainProgress, build_model, train  # noqa: E402

PAPER_STEPS, PAPER_BATCH, PAPER_EVALS, PAPER_EVAL_N = 320_000, 16, 51, 500
NO_GPU = 3  # exit status when there is no CUDA device (gpu.sh passes it on)


def steps_per_s(batch: int, steps: int, compile_: bool, base: RunConfig, device: str) -> float:
    """Training steps/s of ``base`` at ``batch`` through model.train.train on ``device``."""
    log_every = max(steps // 6, 2)
    tc = dataclasses.replace(base.train, steps=steps, batch_size=batch, device=device, compile=compile_,
                             log_every=log_every, eval_every=0, checkpoint_every=10**9, threads=0)
    speeds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        train(dataclasses.replace(base, train=tc), checkpoint_dir=Path(tmp),
              on_event=lambda e: speeds.append(e.images_per_s) if isinstance(e, TrainProgress) else None)
    return median(speeds[1:]) / batch  # the first window: warm-up, cuDNN autotuning, compilation


def host_syncs_per_window(cfg: RunConfig, steps: int = 60, log_every: int = 10) -> list[int]:
    """CUDA host syncs the training loop makes between consecutive log events (eager, batch 16),
    counted with ``torch.cuda.set_sync_debug_mode("warn")``. Expected: 1 per window (the log
    reads the accumulated loss), i.e. no per-step sync."""
    counts: list[int] = []
    tc = dataclasses.replace(cfg.train, steps=steps, batch_size=PAPER_BATCH, device="cuda", log_every=log_every,
                             eval_every=0, checkpoint_every=10**9, threads=0)
    with warnings.catch_warnings(record=True) as caught, tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(dataclasses.replace(cfg, train=tc), checkpoint_dir=Path(tmp),
                  on_event=lambda e: counts.append(_syncs(caught)) if isinstance(e, TrainProgress) else None)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [b - a for a, b in zip([0] + counts, counts)][1:]  # the first window holds the start-up


def _syncs(caught: list) -> int:
    return sum("synchroniz" in str(w.message) for w in caught)


@torch.no_grad()
def sampling_steps_per_s(calls: int, cfg: RunConfig, device: torch.device) -> float:
    """Network calls/s on a batch of 500 labels (one DDPM step each), bf16 autocast, as an eval runs."""
    net = build_model(cfg.model, 0, device).eval()
    x = torch.randn(PAPER_EVAL_N, 1, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    mu = torch.rand(PAPER_EVAL_N, 2, device=device) * 32
    t = torch.full((PAPER_EVAL_N,), 500, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for _ in range(3):
            net(x, t, mu)
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            net(x, t, mu)
        sync()
    return calls / (time.perf_counter() - start)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps per measurement (default 300)")
    p.add_argument("--batches", type=int, nargs="+", default=[16, 128], help="batch sizes (default 16 128)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs")
    p.add_argument("--sample-steps", type=int, default=50, help="network calls timed for the eval rate (default 50)")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="run this script's code path on the CPU with the tiny model and a few steps (no measurement)")
    args = p.parse_args()
    cfg, device = RunConfig(), "cuda"
    if args.cpu_smoke:
        cfg, device = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, size="tiny")), "cpu"
        args.steps, args.batches, args.sample_steps, args.no_compile = 6, [4, 8], 1, True
    elif not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no device visible"
        print(f"gpu: no CUDA device: this benchmark needs one NVIDIA GPU (torch {torch.__version__}: {build})",
              file=sys.stderr)
        return NO_GPU
    name = torch.cuda.get_device_name(0) if device == "cuda" else "the CPU (--cpu-smoke: not a measurement)"
    print(f"gpu: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    # One paper eval: DDPM-1000 on 500 labels (plus one capture call: not counted).
    eval_s = 1000 / sampling_steps_per_s(args.sample_steps, cfg, torch.device(device))
    print(f"gpu: one paper eval (DDPM-1000, N=500) samples in {eval_s:.0f} s", flush=True)
    if device == "cuda":
        windows = host_syncs_per_window(cfg)
        print(f"gpu: host syncs per 10-step log window: {windows} (1 = only the log's loss read)", flush=True)
    rates: dict[tuple[bool, int], float] = {}
    # Eager first, then compiled: should a slow compilation hit gpu.sh's time limit, the eager
    # figures and their projection are already printed.
    for compiled in [False] + ([] if args.no_compile else [True]):
        rows = []
        for batch in args.batches:
            start = time.perf_counter()
            rates[(compiled, batch)] = rate = steps_per_s(batch, args.steps, compiled, cfg, device)
            rows.append([batch, rate, rate * batch, time.perf_counter() - start])
        mode = "torch.compile" if compiled else "eager"
        table(f"{cfg.model.size} UNet training on {name}, {mode} (bf16 autocast, channels_last, fused AdamW)",
              ["batch", "steps/s", "images/s", "wall s (incl. warm-up)"], rows)
        summary(rates, eval_s)
    return 0


def summary(rates: dict[tuple[bool, int], float], eval_s: float) -> None:
    """The projected paper run from the best batch-16 rate so far, and the summary line."""
    at16 = [(r, c) for (c, b), r in rates.items() if b == PAPER_BATCH]
    if not at16:
        print(f"\nSUMMARY gpu: {', '.join(f'b{b} {r:.1f} steps/s' for (c, b), r in rates.items())}")
        return
    rate, compiled = max(at16)
    train_h, evals_h = PAPER_STEPS / rate / 3600, PAPER_EVALS * eval_s / 3600
    table("projected paper run (the paper: ~6 h on an A100)", ["run", "training", "evals (DDPM-1000, N=500)", "total"],
          [[f"{PAPER_STEPS:,} steps at batch {PAPER_BATCH}, {'compiled' if compiled else 'eager'}", f"{train_h:.2f} h",
            f"{PAPER_EVALS} x {eval_s:.0f} s = {evals_h:.2f} h", f"{train_h + evals_h:.2f} h"]])
    print(f"\nSUMMARY gpu: batch {PAPER_BATCH} at {rate:.1f} steps/s ({'compiled' if compiled else 'eager'}): "
          f"{PAPER_STEPS:,} steps in {train_h:.1f} h, +{evals_h:.1f} h of DDPM-1000 evals (paper: ~6 h on an A100)",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
