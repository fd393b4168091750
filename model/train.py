"""Headless training loop (paper App. A.4, A.6): ``train(cfg, ...)`` with hooks, never prints.

Read ``train`` top to bottom: it places the run, builds the data and the ``LoopState`` (all a
checkpoint holds), then runs labelled steps — optimise, report, evaluate, checkpoint.

Every random draw of step ``s`` (t, eps) comes from a generator seeded with (seed, s), and the data
order is a per-epoch permutation seeded with (seed, epoch): a run resumed from a checkpoint at step
k replays exactly the batches and noise of the straight run.
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

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import TrainConfig
from model.data import BumpDataset, DataConfig, make_dataset
from model.device import autocast, fused_adamw, place
from model.diffusion import DiffusionConfig, Schedule, loss
from model.unet import ModelConfig, UNet, count_parameters

# --------------------------------------------------------------------------- what train reports


@dataclass(frozen=True)
class TrainProgress:
    """Training since the last report: the mean loss of its steps, the lr, the throughput."""

    step: int
    loss: float
    lr: float
    images_per_s: float  # training images only: eval and checkpoint time is left out


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint of ``step`` was written, complete, at ``path``."""

    step: int
    path: Path


ProgressHook = Callable[[TrainProgress | CheckpointSaved], None]  # what train reports, as it happens


class TrainParts(Protocol):
    """What ``train`` reads from a run config (labconsole's RunConfig satisfies it)."""

    data: DataConfig
    model: ModelConfig
    diffusion: DiffusionConfig
    train: TrainConfig


_PARTS = ("data", "model", "diffusion", "train")  # the parts of a TrainParts, stored in checkpoints


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite by ``step``; the last good checkpoint is left untouched."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class TrainResult:
    status: str  # "completed" | "stopped"
    step: int


# --------------------------------------------------------------------------- schedules


def eval_steps(cfg: TrainConfig) -> set[int]:
    """Step 0, every ``eval_every``, the extra ``eval_at`` steps, and the last step."""
    every = range(0, cfg.steps + 1, cfg.eval_every) if cfg.eval_every > 0 else [0]
    return {s for s in (*every, *cfg.eval_at) if 0 <= s <= cfg.steps} | {0, cfg.steps}


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then constant."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def ema_decay(cfg: TrainConfig, step: int) -> float:
    """The EMA decay of the update that follows ``step`` optimisation steps (0: the first update).

    Without ``ema_warmup``, ``ema`` from the first update: at 0.995 the EMA still holds
    0.995^s of the initial weights after s updates (78 / 61 / 47 / 22 % at 50 / 100 / 150 / 300).
    With it, ``min(ema, (1 + step) / (10 + step))``: the ``num_updates`` rule of TensorFlow's
    ``tf.train.ExponentialMovingAverage``, whose first decays are 0.1, 0.18, 0.25, ... and which
    reaches 0.995 at step 1,790; the initial weights' share after s updates is
    prod (1 + t) / (10 + t) = 1 / C(s + 9, 9) (< 1e-10 at s = 50). It depends on the step alone,
    so a resumed run applies the same decays as the straight one.
    """
    if cfg.ema_warmup:
        return min(cfg.ema, (1 + step) / (10 + step))
    return cfg.ema


def build_model(cfg: ModelConfig, seed: int, device: torch.device) -> UNet:
    """The UNet with seeded initial weights, in channels_last (faster convolutions on CPU and GPU)."""
    torch.manual_seed(seed)
    return UNet(cfg).to(device, memory_format=torch.channels_last)


# --------------------------------------------------------------------------- data and noise


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


class Batches:
    """The training batch and the diffusion noise of any step, from the resident dataset."""

    def __init__(self, data: BumpDataset, seed: int, size: int, T: int, device: torch.device):
        self.data, self.seed, self.size, self.T, self.device = data, seed, size, T, device
        self.order = EpochOrder(len(data), seed, device)
        self.gen = torch.Generator(device=device)  # reseeded per step: no state to checkpoint

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0 (B, 1, H, W), mu (B, 2), t (B,), eps (B, 1, H, W)) of ``step``, the same on every call."""
        self.gen.manual_seed(self.seed * 1_000_003 + step)
        idx = self.order.batch(step, self.size)
        x0, mu = self.data.images[idx], self.data.mu[idx]
        t = torch.randint(0, self.T, (len(idx),), generator=self.gen, device=self.device)
        eps = torch.randn(x0.shape, generator=self.gen, device=self.device)
        return x0, mu, t, eps


# --------------------------------------------------------------------------- what survives a resume


@dataclass(eq=False)
class LoopState:
    """All a checkpoint holds of a run in progress: the weights, their EMA, the optimiser, the step,
    and the loss of the steps since the last report (so a resumed run reports the same means)."""

    model: UNet
    ema: UNet | None  # the weights evaluations read, when train.ema > 0
    opt: torch.optim.Optimizer
    loss_sum: torch.Tensor  # on the device: adding costs no host sync; read at report steps only
    loss_n: int = 0
    step: int = 0

    @classmethod
    def fresh(cls, cfg: ModelConfig, tc: TrainConfig, device: torch.device) -> LoopState:
        """Seeded initial weights, their EMA copy, and AdamW (fused where it runs)."""
        model = build_model(cfg, tc.seed, device)
        ema = copy.deepcopy(model).requires_grad_(False) if tc.ema > 0 else None
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=fused_adamw(device))
        return cls(model, ema, opt, torch.zeros((), device=device))

    @property
    def eval_model(self) -> UNet:
        return self.model if self.ema is None else self.ema

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue from a checkpoint written by ``to_checkpoint`` (an EMA-less one seeds the EMA)."""
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.loss_sum.fill_(float(ckpt.get("loss_sum", 0.0)))
        self.loss_n, self.step = int(ckpt.get("loss_n", 0)), int(ckpt["step"])

    def learn(self, value: torch.Tensor, lr: float, grad_clip: float, ema_decay: float) -> int:
        """One AdamW step on the batch loss ``value`` at ``lr``, then the EMA; returns the new step."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        value.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
        self.opt.step()
        if self.ema is not None:
            with torch.no_grad():  # in place, batched over all parameters: no per-tensor launches
                torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1 - ema_decay)
        self.loss_sum += value.detach()
        self.loss_n += 1
        self.step += 1
        return self.step

    def check_finite(self) -> float:
        """The mean loss since the last report (a host sync).

        Raises:
            NonFiniteLoss: it is NaN or infinite — nothing after this may be evaluated or saved.
        """
        mean = float(self.loss_sum) / max(self.loss_n, 1)
        if not math.isfinite(mean):
            message = f"the loss became {mean} by step {self.step}; lower train.lr or check the data"
            raise NonFiniteLoss(message, self.step)
        return mean

    def report(self) -> float:
        """The mean loss since the last report, checked; the next report starts from zero."""
        mean = self.check_finite()
        self.loss_sum.zero_()
        self.loss_n = 0
        return mean

    def to_checkpoint(self, config: dict[str, Any]) -> dict[str, Any]:
        """A plain dict of state_dicts and primitives (``weights_only``-loadable), with ``config``.

        Raises:
            NonFiniteLoss: the loss since the last report is NaN: such weights are never saved.
        """
        self.check_finite()
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.opt.state_dict(),
            "loss_sum": float(self.loss_sum),
            "loss_n": self.loss_n,
            "config": config,
            "n_params": count_parameters(self.model),
            "torch": str(torch.__version__),  # a plain str: TorchVersion is not weights_only-loadable
        }


class _Clock:
    """Training images per second since the last restart: evals and checkpoints are left out."""

    def __init__(self, step: int):
        self.restart(step)

    def restart(self, step: int) -> None:
        self.start, self.step = time.perf_counter(), step

    def lap(self, step: int, batch_size: int) -> float:
        """Images per second from the last restart to ``step``; restarts there."""
        seconds, steps = time.perf_counter() - self.start, step - self.step
        self.restart(step)
        return steps * batch_size / seconds if seconds > 0 else 0.0


# --------------------------------------------------------------------------- the loop


def train(
    cfg: TrainParts,
    *,
    checkpoint_dir: Path,                                 # step-XXXXXXX.pt and ``latest`` go here
    on_event: ProgressHook = lambda event: None,          # TrainProgress every log_every steps; CheckpointSaved
    should_stop: Callable[[], bool] = lambda: False,      # polled after every step: True -> checkpoint, "stopped"
    evaluate: Callable[[int, UNet], None] | None = None,  # evaluate(step, model) at eval steps; EMA weights if on
    resume_from: Path | None = None,                      # a checkpoint to continue from
    resolved_config: dict[str, Any] | None = None,        # stored in every checkpoint (default: cfg's parts)
) -> TrainResult:
    """Train the conditional DDPM of ``cfg``; NonFiniteLoss when the loss turns NaN (nothing after it kept)."""
    tc = cfg.train
    # 1. Device, threads, precision: decided in model.device (the worker has already done it).
    device = place(tc).device
    # 2. The whole dataset resident on the device; any step's batch and noise follow from its number.
    schedule = Schedule.from_config(cfg.diffusion, device)
    batches = Batches(make_dataset(cfg.data, device), tc.seed, tc.batch_size, schedule.T, device)
    # 3. The state a checkpoint holds: fresh and seeded, or as a checkpoint left it.
    state = LoopState.fresh(cfg.model, tc, device)
    if resume_from is not None:
        state.restore(load_checkpoint(resume_from, device))
    fwd = torch.compile(state.model) if tc.compile else state.model
    config = resolved_config or {part: dataclasses.asdict(getattr(cfg, part)) for part in _PARTS}
    evals = eval_steps(tc)
    # 4. The untrained baseline (step 0); a resumed run had it in its first segment.
    if evaluate is not None and resume_from is None and state.step in evals:
        evaluate(state.step, state.eval_model)
    clock = _Clock(state.step)
    while state.step < tc.steps:
        # 5. One optimisation step; the forward under train.precision (bf16 on CUDA, fp32 on the CPU).
        x0, mu, t, eps = batches.at(state.step)
        with autocast(tc.precision, device):
            value = loss(fwd, schedule, cfg.diffusion.prediction, x0, mu, t, eps)
        step = state.learn(value, lr_at(tc, state.step), tc.grad_clip, ema_decay(tc, state.step))
        # 6. Report: reading the summed loss is this window's one host sync.
        if step % tc.log_every == 0 or step == tc.steps:
            on_event(TrainProgress(step, state.report(), state.lr, clock.lap(step, tc.batch_size)))
        # 7. Evaluate before this step's checkpoint, so a resumed run never repeats or skips an eval.
        if evaluate is not None and step in evals:
            state.check_finite()
            evaluate(step, state.eval_model)
            clock.restart(step)
        # 8. Checkpoint on schedule, at the end, and on a stop (read after the eval, which takes a while).
        stop = should_stop()
        if step % tc.checkpoint_every == 0 or step == tc.steps or stop:
            on_event(CheckpointSaved(step, save_checkpoint(Path(checkpoint_dir), step, state.to_checkpoint(config))))
            clock.restart(step)
        if stop and step < tc.steps:
            return TrainResult("stopped", step)
    return TrainResult("completed", state.step)
