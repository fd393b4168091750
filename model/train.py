"""Headless training loop: ``train(...)`` with an event callback and a stop check."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 320_000  # total optimisation steps, counted in batches (paper)
    batch_size: int = 16  # ours: 102,400 images at dx = 0.1 / 16 = 6,400 batches per epoch
    lr: float = 3e-4  # AdamW peak learning rate (ours)
    warmup_steps: int = 0  # linear warm-up (ours; 0 = none)
    weight_decay: float = 0.0  # AdamW weight decay (ours)
    ema: float = 0.0  # EMA decay of the weights used for evaluation (ours; 0 = off)
    grad_clip: float = 1.0  # global gradient-norm clip (ours; 0 = off)
    seed: int = 0
    eval_every: int = 6400  # evaluate every this many steps, at step 0 and at the end (paper)
    eval_at: tuple[int, ...] = ()  # extra evaluation steps, e.g. dense early evals (ours)
    checkpoint_every: int = 6400  # checkpoint every this many steps and at the end
    log_every: int = 50  # emit a train event every this many steps
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch (0 = torch's default)
    compile: bool = False  # torch.compile the model (CUDA; pays for long runs)
