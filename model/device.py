"""Where a run computes: the device, torch's CPU threads and the numerics, decided in one place.

``place(cfg)`` is called once per process by whoever starts the work (the worker, or ``train``
when called on its own) before any other torch op, and returns what the run's start line reports.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from model.config import DEVICES, PRECISIONS, TrainConfig


@dataclass(frozen=True)
class Placement:
    """The device a run uses, the CPU threads torch runs on, and what its precision means there."""

    device: torch.device
    threads: int  # torch's CPU threads; 0 on CUDA, where the CPU only feeds the GPU
    precision: str  # "fp32" | "bf16 autocast": train.precision resolved for this device

    def describe(self) -> str:
        """The start line's device text, e.g. "cpu (2 threads, fp32)" or "cuda (bf16 autocast)"."""
        how = [f"{self.threads} threads"] if self.threads else []
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        if self.device.type == "cuda" and visible:  # the physical GPU(s) behind this process's cuda:0
            how.append(f"GPU {visible}")
        return f"{self.device.type} ({', '.join([*how, self.precision])})"


def place(cfg: TrainConfig) -> Placement:
    """Pick ``cfg.device``, set torch's CPU threads to ``cfg.threads`` (0 = torch's default) and
    resolve ``cfg.precision``.

    Call it before any other torch op of the process: torch's thread pool starts at its default
    size on the first parallel op, and a pool started larger than ``cfg.threads`` keeps its extra
    OpenMP threads spinning on barriers, stealing cores from the ones that work. Calling it again
    with the same config changes nothing.

    Raises:
        ValueError: an unknown device or precision, or "cuda" without a CUDA device.
    """
    device = pick_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    threads = (cfg.threads or torch.get_num_threads()) if device.type == "cpu" else 0
    return Placement(device, threads, precision_label(cfg.precision, device))


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


def fused_adamw(device: torch.device) -> bool:
    """Whether AdamW's fused kernel runs on ``device``: CUDA, and the CPU from torch 2.4. On the CPU
    it makes one pass per tensor where the default makes several small ops, each of which may wake
    the thread pool: it never costs, and it pays on a busy CPU (figures: docs/benchmarks.md)."""
    return device.type == "cuda" or (device.type == "cpu" and torch.__version__ >= (2, 4))
