"""What a run would cost on this machine, said before it is paid (issue 14).

A short measured probe, run in a subprocess (``python -m labconsole.cost``) so that neither the
console nor the batch imports torch or spends its threads: it places the run as the worker would
(``model.device.place``), times a few optimisation steps of the run's UNet at its batch size and a
few sampler forwards at its eval batch, and reads this machine's fp32 GEMM speed (the figure that
says how fast the host is today: a shared box swings 2-3x from day to day).

The estimate is arithmetic on those timings::

    train = steps x (seconds a step)
    evals = (evals a run makes) x (sampler steps) x (seconds a forward of the eval batch) + UMAP
    run   = train + evals

Data making, checkpoints and the worker's start are left out (seconds). On a CPU the runs of a
sweep share the cores (``--jobs`` splits them), so a sweep costs about the sum of its runs; on a
GPU, runs that fit side by side divide it.

The paper presets name their CPU miniature (``mini = "increments-mini"`` in the preset file); the
batch and the console show it beside the estimate.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from labconsole.config import RunConfig

PROBE_TIMEOUT_S = 300.0  # the paper-size UNet on a slow CPU: a few seconds a step, and warm-ups
UMAP_S = 2.0  # seconds of UMAP + the detector an eval, warm (docs/benchmarks.md, bench/eval_cost.py)
TRAIN_STEPS = 3  # timed optimisation steps, after one warm-up
SAMPLE_BATCH_MAX = 32  # the eval batch is timed on at most this many images, then scaled


class ProbeError(RuntimeError):
    """The probe did not run (its one-line reason)."""


@dataclass(frozen=True)
class Probe:
    """What the probe measured for one model / batch / device."""

    device: str  # Placement.describe(), e.g. "cpu (2 threads, fp32)"
    step_s: float  # seconds of one optimisation step at train.batch_size
    forward_s: float  # seconds of one sampler forward, per image of the eval batch
    gemm_gflops: float  # fp32 torch.mm of 1024x1024 on this machine now: how fast the host is today
    probe_s: float  # the probe's own wall time

    @property
    def on_cpu(self) -> bool:
        return self.device.startswith("cpu")


@dataclass(frozen=True)
class Estimate:
    """A run's cost from a Probe: training, evaluations, and their sum, in seconds."""

    train_s: float
    eval_s: float
    n_evals: int

    @property
    def total_s(self) -> float:
        return self.train_s + self.eval_s


def probe_key(cfg: RunConfig) -> tuple:
    """What a probe's timings depend on: runs with equal keys share one probe."""
    m, t = cfg.model, cfg.train
    return (m.size, m.coord_channels, t.batch_size, t.device, t.threads, t.precision,
            eval_batch(cfg), cfg.data.size)


def eval_batch(cfg: RunConfig) -> int:
    """Labels an eval samples (``labconsole.evaluate.draw_labels``): eval.n_samples, plus eval.n_ood
    when there are holes — one group of n_ood however many holes (a cross's arms and intersection
    share it; issue 16). data.kind, canvas, periodic and keep change neither count: the images are
    the frame (data.size), and keep thins the training grid, not the eval's labels. (A hole holding
    no grid centre draws no OOD label: counted here all the same, an over-estimate of seconds.)"""
    return cfg.eval.n_samples + (cfg.eval.n_ood if cfg.data.holes else 0)


def sampler_steps(cfg: RunConfig) -> int:
    """Network evaluations of one eval's sampler (DDPM: T; DDIM: its steps, at most T)."""
    if cfg.eval.sampler == "ddpm":
        return cfg.diffusion.T
    return min(cfg.eval.ddim_steps, cfg.diffusion.T)


def n_evals(cfg: RunConfig) -> int:
    """Evaluations a run makes from step 0 to its end (``model.train.eval_steps`` without torch)."""
    t = cfg.train
    every = range(0, t.steps + 1, t.eval_every) if t.eval_every > 0 else [0]
    return len({s for s in (*every, *t.eval_at) if 0 <= s <= t.steps} | {0, t.steps})


def estimate(cfg: RunConfig, probe: Probe) -> Estimate:
    """The arithmetic of the module docstring for one run."""
    k = n_evals(cfg)
    batch = eval_batch(cfg)
    per_eval = sampler_steps(cfg) * probe.forward_s * batch + UMAP_S
    return Estimate(train_s=cfg.train.steps * probe.step_s, eval_s=k * per_eval, n_evals=k)


def run_probe(cfg: RunConfig, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Measure ``cfg``'s model on this machine in a fresh subprocess (torch stays out of the caller).

    Raises:
        ProbeError: the subprocess failed or ran past ``timeout`` (its last line as the reason).
    """
    from labconsole.runconfig import dumps_config

    cmd = [sys.executable, "-m", "labconsole.cost"]
    try:
        done = subprocess.run(cmd, input=dumps_config(cfg), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"the cost probe ran past {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"the cost probe failed: {last}")
    return Probe(**json.loads(done.stdout.strip().splitlines()[-1]))


def probe_all(runs: list[RunConfig]) -> dict[tuple, Probe]:
    """One probe per distinct ``probe_key`` of ``runs`` (a sweep over data settings needs one).

    Raises:
        ProbeError: as ``run_probe``.
    """
    probes: dict[tuple, Probe] = {}
    for cfg in runs:
        key = probe_key(cfg)
        if key not in probes:
            probes[key] = run_probe(cfg)
    return probes


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not on every platform
        return 0.0


def human(seconds: float) -> str:
    """3 s, 4.2 min, 3.1 h, 12 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def cost_lines(runs: list[RunConfig], probes: dict[tuple, Probe], mini: str = "") -> list[str]:
    """What the batch prints before a sweep starts: the sweep's cost here, what it rests on, and
    ``mini`` (the miniature's preset file) to run instead when the runs would train on a CPU."""
    ests = [estimate(c, probes[probe_key(c)]) for c in runs]
    total = sum(e.total_s for e in ests)
    p = probes[probe_key(runs[0])]
    one = ests[0]
    lines = [
        f"cost here: ~{human(total)} for {len(runs)} run(s) on {p.device} "
        f"(a run: {human(one.train_s)} training at {p.step_s:.3g} s/step + {human(one.eval_s)} for "
        f"{one.n_evals} evals; probe {p.probe_s:.0f} s, this machine's fp32 GEMM {p.gemm_gflops:.0f} GFLOP/s now)",
    ]
    load, cores = _load(), os.cpu_count() or 1
    if p.on_cpu and load >= 0.5 * cores:  # a busy box measures slow: say so rather than mislead
        lines.append(f"  this machine is busy now (load {load:.1f} on {cores} cores): the estimate is for it as it is")
    if p.on_cpu and len(runs) > 1:
        lines.append("  on a CPU the runs share the cores: --jobs does not shorten the sweep")
    if mini and p.on_cpu:
        lines.append(f"  its CPU miniature: labconsole --batch {mini} --jobs 2 (docs/findings.md)")
    return lines


def preset_cost(preset) -> tuple[list[str], dict[tuple, Probe]]:
    """Probe this machine for a preset's runs: the lines that say what its sweep would cost here
    (naming its miniature, if it has one) and the probes. A probe that fails gives one line saying
    so and no probes — the caller goes on (the batch trains, the form still runs)."""
    configs = [r.config for r in preset.runs]
    try:
        probes = probe_all(configs)
    except ProbeError as exc:
        return [f"cost here: unknown ({exc})"], {}
    mini = str(preset.path.parent / f"{preset.mini}.toml") if preset.mini else ""
    return cost_lines(configs, probes, mini), probes


def say_cost(preset, out) -> dict[tuple, Probe]:
    """Print ``preset_cost``'s lines to ``out`` (the batch, before a paper preset trains); returns
    the probes, for the dry-run table."""
    lines, probes = preset_cost(preset)
    for line in lines:
        print(line, file=out, flush=True)
    return probes


# --------------------------------------------------------------------------- the subprocess


def _measure(cfg: RunConfig) -> dict[str, Any]:
    """The probe itself: placement, GEMM speed, optimisation steps, sampler forwards."""
    import torch

    from model.device import autocast, place
    from model.diffusion import Schedule, loss
    from model.train import LoopState

    start = time.perf_counter()
    placement = place(cfg.train)  # before any other torch op: the worker's threads and precision
    dev = placement.device
    gemm = gemm_gflops(torch, dev)
    state = LoopState.fresh(cfg.model, cfg.train, dev)
    schedule = Schedule.from_config(cfg.diffusion, dev)
    g = torch.Generator(device=dev).manual_seed(0)
    n, size = cfg.train.batch_size, cfg.data.size

    def one_step() -> None:  # random data of the run's shapes: the step's cost does not depend on it
        x0 = torch.rand(n, 1, size, size, generator=g, device=dev) * 2 - 1
        mu = torch.rand(n, 2, generator=g, device=dev) * size
        t = torch.randint(0, schedule.T, (n,), generator=g, device=dev)
        with autocast(cfg.train.precision, dev):
            value = loss(state.model, schedule, cfg.diffusion.prediction, x0, mu, t, torch.randn_like(x0))
        state.learn(value, cfg.train.lr, cfg.train.grad_clip, 0.99)

    step_s = _timed(torch, dev, one_step, TRAIN_STEPS)
    batch = min(eval_batch(cfg), SAMPLE_BATCH_MAX)
    x = torch.randn(batch, 1, size, size, generator=g, device=dev)
    mu = torch.rand(batch, 2, generator=g, device=dev) * size
    tt = torch.full((batch,), schedule.T - 1, device=dev, dtype=torch.long)
    model = state.eval_model.eval()

    def one_forward() -> None:
        with torch.no_grad(), autocast(cfg.train.precision, dev):
            model(x, tt, mu)

    forward_s = _timed(torch, dev, one_forward, 2) / batch
    return dict(device=placement.describe(), step_s=step_s, forward_s=forward_s, gemm_gflops=gemm,
                probe_s=time.perf_counter() - start)


def _timed(torch, dev, fn, reps: int) -> float:
    """Median seconds of ``fn`` over ``reps`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def gemm_gflops(torch, dev, n: int = 1024, reps: int = 5) -> float:
    """fp32 torch.mm of two n x n matrices on ``dev``: 2 n^3 flops a call, the best of ``reps``."""
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    best = _timed(torch, dev, lambda: torch.mm(a, b), 1)
    for _ in range(reps - 1):
        best = min(best, _timed(torch, dev, lambda: torch.mm(a, b), 1))
    return 2 * n**3 / best / 1e9


def main() -> int:
    """``python -m labconsole.cost``: a run config (TOML) on stdin -> one JSON line of Probe fields."""
    from labconsole.runconfig import config_from_dict, tomllib

    cfg = config_from_dict(tomllib.loads(sys.stdin.read()), source="stdin")
    print(json.dumps(_measure(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
