"""Headless training loop (paper App. A.4, A.6): ``train(cfg, ...)`` with hooks, never prints.

Every random draw of step ``s`` (batch indices, t, eps) comes from a generator seeded with
(seed, s), and the data order is a per-epoch permutation seeded with (seed, epoch): a run resumed
from a checkpoint at step k replays exactly the batches and noise of the straight run.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from model.config import DEVICES, PRECISIONS, TrainConfig
from model.checkpoint import load_checkpoint, save_checkpoint
from model.data import BumpDataset, DataConfig, make_dataset
from model.diffusion import DiffusionConfig, Schedule, loss
from model.unet import ModelConfig, UNet, count_parameters

EventHook = Callable[[str, dict[str, Any]], None]  # (kind, fields): kinds "train", "checkpoint"


class TrainParts(Protocol):
    """What ``train`` reads from a run config (labconsole's RunConfig satisfies it)."""

    data: DataConfig
    model: ModelConfig
    diffusion: DiffusionConfig
    train: TrainConfig


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite by ``step``; the last good checkpoint is left untouched."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class TrainResult:
    status: str  # "completed" | "stopped"
    step: int


# --------------------------------------------------------------------------- helpers


def pick_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; an explicit cuda without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; expected one of: {', '.join(DEVICES)}")
    return torch.device(name)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``train.precision`` means bf16 autocast on ``device``: "bf16" anywhere, "auto" on CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of: {', '.join(PRECISIONS)}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """The autocast context of ``train.precision`` on ``device`` (bf16, or disabled = fp32).
    Training and evaluation both run their forwards inside it."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(precision, device))


def precision_label(precision: str, device: torch.device) -> str:
    """What ``precision`` means on ``device``, for the run's start line: "fp32" or "bf16 autocast"."""
    return "bf16 autocast" if uses_bf16(precision, device) else "fp32"


def eval_steps(cfg: TrainConfig) -> set[int]:
    """Step 0, every ``eval_every``, the extra ``eval_at`` steps, and the last step."""
    every = range(0, cfg.steps + 1, cfg.eval_every) if cfg.eval_every > 0 else [0]
    return {s for s in (*every, *cfg.eval_at) if 0 <= s <= cfg.steps} | {0, cfg.steps}


class EpochOrder:
    """Batch indices for any step: position p = step * B + i lies in epoch p // N, which is a
    permutation seeded with (seed, epoch) — so any step's batch is known without replaying."""

    def __init__(self, n: int, seed: int, device: torch.device):
        self.n, self.seed, self.device = n, seed, device
        self._epoch, self._perm = -1, None

    def _perm_of(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g).to(self.device)
        return self._perm

    def batch(self, step: int, size: int) -> torch.Tensor:
        start = step * size
        first_epoch, last_epoch = start // self.n, (start + size - 1) // self.n
        if first_epoch == last_epoch:  # the common case: one slice, no host work
            lo = start % self.n
            return self._perm_of(first_epoch)[lo : lo + size]
        pos = torch.arange(start, start + size)
        return torch.cat([self._perm_of(int(p // self.n))[int(p % self.n)].view(1) for p in pos])


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then constant."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def fused_adamw(device: torch.device) -> bool:
    """Whether AdamW's fused kernel runs on ``device``: CUDA, and the CPU from torch 2.4. On the CPU
    it is one pass per tensor where the default runs ~7 ops per tensor, each of which may wake the
    thread pool: the same speed on an idle CPU, 1.6x faster steps on a busy one (w16, batch 32;
    bench/train_throughput.py)."""
    return device.type == "cuda" or (device.type == "cpu" and torch.__version__ >= (2, 4))


def build_model(cfg: ModelConfig, seed: int, device: torch.device) -> UNet:
    """The UNet with seeded initial weights, in channels_last (faster convolutions on CPU and GPU)."""
    torch.manual_seed(seed)
    return UNet(cfg).to(device, memory_format=torch.channels_last)


# --------------------------------------------------------------------------- the loop


def train(
    cfg: TrainParts,
    *,
    checkpoint_dir: Path,
    on_event: EventHook = lambda kind, fields: None,
    should_stop: Callable[[], bool] = lambda: False,
    evaluate: Callable[[int, UNet], None] | None = None,
    resume_from: Path | None = None,
    resolved_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train the conditional DDPM of ``cfg`` for ``cfg.train.steps`` steps.

    Args:
        checkpoint_dir: where ``step-XXXXXXX.pt`` and ``latest`` are written.
        on_event: receives ("train", {step, loss, lr, images_per_s}) every ``log_every`` steps and
            ("checkpoint", {step, path}) after each checkpoint.
        should_stop: polled after every step; True -> checkpoint and return status "stopped".
        evaluate: called as ``evaluate(step, model)`` at each eval step (EMA weights when enabled),
            before that step's checkpoint, so a resumed run never repeats or skips an eval.
        resume_from: a checkpoint to continue from (same data order and random streams).
        resolved_config: stored in every checkpoint, so a checkpoint needs nothing else.

    Raises:
        NonFiniteLoss: the loss became NaN/inf; no checkpoint is written after that point.
    """
    tc = cfg.train
    device = pick_device(tc.device)
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    data = make_dataset(cfg.data, device)
    model = build_model(cfg.model, tc.seed, device)
    ema = copy.deepcopy(model).requires_grad_(False) if tc.ema > 0 else None
    opt = torch.optim.AdamW(
        model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=fused_adamw(device)
    )
    schedule = Schedule.from_config(cfg.diffusion, device)
    fwd = torch.compile(model) if tc.compile else model
    evals = eval_steps(tc)
    resolved = resolved_config or {part: dataclasses.asdict(getattr(cfg, part)) for part in ("data", "model", "diffusion", "train")}
    run = _Loop(cfg, data, model, fwd, ema, opt, schedule, device, checkpoint_dir, on_event, resolved)
    step = 0
    if resume_from is not None:
        step = run.restore(load_checkpoint(resume_from, device))

    if evaluate is not None and step in evals and resume_from is None:
        evaluate(step, ema or model)  # step 0: the untrained baseline
    while step < tc.steps:
        run.step(step)
        step += 1
        if step % tc.log_every == 0 or step == tc.steps:
            run.log(step)
        if evaluate is not None and step in evals:
            run.check_finite(step)
            evaluate(step, ema or model)
            run.restart_clock()
        stop = should_stop()  # read after the eval, which can take a while
        if step % tc.checkpoint_every == 0 or step == tc.steps or stop:
            run.checkpoint(step)
        if stop and step < tc.steps:
            return TrainResult("stopped", step)
    return TrainResult("completed", step)


class _Loop:
    """The state of one training loop, split into labelled steps so ``train`` reads as a recipe."""

    def __init__(self, cfg, data: BumpDataset, model, fwd, ema, opt, schedule, device, ckpt_dir, on_event, resolved):
        self.cfg, self.tc, self.data = cfg, cfg.train, data
        self.model, self.fwd, self.ema, self.opt, self.schedule = model, fwd, ema, opt, schedule
        self.device, self.ckpt_dir, self.on_event = device, Path(ckpt_dir), on_event
        self.resolved = resolved
        self.order = EpochOrder(len(data), self.tc.seed, device)
        self.gen = torch.Generator(device=device)
        # Losses accumulate on the device; reading them (a host sync) happens only at log steps.
        self.loss_sum = torch.zeros((), device=device)
        self.loss_n = 0
        self.restart_clock()

    def restore(self, state: dict) -> int:
        """Load a checkpoint's weights, optimiser and the loss of the unlogged steps; returns its step."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
        self.opt.load_state_dict(state["optimizer"])
        # The steps since the last train event: the resumed run logs the same averages as a straight one.
        self.loss_sum.fill_(float(state.get("loss_sum", 0.0)))
        self.loss_n = int(state.get("loss_n", 0))
        return int(state["step"])

    def restart_clock(self) -> None:
        self.clock, self.clock_steps = time.perf_counter(), 0

    def step(self, step: int) -> None:
        tc = self.tc
        # 1. The batch and the noise of this step, from a generator seeded with (seed, step).
        self.gen.manual_seed(tc.seed * 1_000_003 + step)
        idx = self.order.batch(step, tc.batch_size)
        x0, mu = self.data.images[idx], self.data.mu[idx]
        t = torch.randint(0, self.schedule.T, (len(idx),), generator=self.gen, device=self.device)
        eps = torch.randn(x0.shape, generator=self.gen, device=self.device)
        # 2. Forward and backward under train.precision: by default bf16 autocast on CUDA, fp32 on the
        #    CPU (the paper's numerics; CPU bf16 is an opt-in: it changes the rounding).
        for group in self.opt.param_groups:
            group["lr"] = lr_at(tc, step)
        with autocast(tc.precision, self.device):
            value = loss(self.fwd, self.schedule, self.cfg.diffusion.prediction, x0, mu, t, eps)
        self.opt.zero_grad(set_to_none=True)
        value.backward()
        if tc.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.opt.step()
        # 3. EMA of the weights, in place and batched over all parameters.
        if self.ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1 - tc.ema)
        self.loss_sum += value.detach()
        self.loss_n += 1
        self.clock_steps += 1

    def check_finite(self, step: int) -> float:
        mean = float(self.loss_sum) / max(self.loss_n, 1)
        if not math.isfinite(mean):
            raise NonFiniteLoss(f"the loss became {mean} by step {step}; lower train.lr or check the data", step)
        return mean

    def log(self, step: int) -> None:
        mean = self.check_finite(step)
        seconds = time.perf_counter() - self.clock
        ips = self.clock_steps * self.tc.batch_size / seconds if seconds > 0 else 0.0
        lr = self.opt.param_groups[0]["lr"]
        self.on_event("train", dict(step=step, loss=mean, lr=lr, images_per_s=ips))
        self.loss_sum.zero_()
        self.loss_n = 0
        self.restart_clock()

    def checkpoint(self, step: int) -> None:
        self.check_finite(step)
        state = {
            "step": step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.opt.state_dict(),
            "loss_sum": float(self.loss_sum),  # the steps since the last train event
            "loss_n": self.loss_n,
            "config": self.resolved,
            "n_params": count_parameters(self.model),
            "torch": str(torch.__version__),  # a plain str: TorchVersion is not weights_only-loadable
        }
        path = save_checkpoint(self.ckpt_dir, step, state)
        self.on_event("checkpoint", dict(step=step, path=path.name))
        self.restart_clock()
