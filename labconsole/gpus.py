"""Which GPUs a batch spreads its runs over, and how many runs share each (issue 15).

Torch-free (the batch process never imports torch): the GPUs are those ``CUDA_VISIBLE_DEVICES``
names when it is set, else those ``nvidia-smi -L`` lists, else none (a CPU box). A run is given
one GPU by setting ``CUDA_VISIBLE_DEVICES`` to it in its worker's environment: the worker sees it
as ``cuda:0`` and its start line and ``meta.json`` name the physical one.

The paper-size UNet at batch 16 leaves a modern GPU mostly idle, so ``--runs-per-gpu K`` packs K
runs on each; ``GpuSlots`` hands out the least-loaded GPU with a free slot.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

NVIDIA_SMI_TIMEOUT_S = 10.0
_ID = re.compile(r"^(\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+)$")  # an index, a GPU UUID, a MIG UUID


class GpuError(ValueError):
    """A ``--gpus`` / ``--runs-per-gpu`` value that cannot be used (one line)."""


def visible_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set ("" or "-1": none), else
    the indices ``nvidia-smi -L`` lists, else none."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        text = env["CUDA_VISIBLE_DEVICES"].strip()
        ids = [g.strip() for g in text.split(",") if g.strip()]
        return [] if not ids or ids[0].startswith("-") else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    lines = [line for line in done.stdout.splitlines() if line.startswith("GPU ")] if done.returncode == 0 else []
    return [str(i) for i in range(len(lines))]


def parse_gpus(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """``--gpus``: "all" (every visible GPU), "none" (train on the CPU) or a comma list of GPU
    indices or UUIDs, e.g. "0,1".

    Raises:
        GpuError: an empty or malformed list, a GPU named twice, or "all" on a box without GPUs.
    """
    text = text.strip()
    if text == "none":
        return []
    if text == "all":
        found = visible_gpus(env)
        if not found:
            raise GpuError("--gpus all: no GPU is visible here (CUDA_VISIBLE_DEVICES, nvidia-smi); "
                           "use --gpus none or --jobs N to train on the CPU")
        return found
    ids = [g.strip() for g in text.split(",")]
    bad = [g for g in ids if not _ID.match(g)]
    if not text or bad:
        raise GpuError(f"--gpus: expected all, none or a comma list of GPU indices or UUIDs (e.g. 0,1), got {text!r}")
    if len(set(ids)) != len(ids):
        raise GpuError(f"--gpus: a GPU is named twice in {text!r}")
    return ids


class GpuSlots:
    """``per_gpu`` run slots on each of ``gpus``; ``take`` gives the least-loaded GPU with one free."""

    def __init__(self, gpus: list[str], per_gpu: int = 1):
        if per_gpu < 1:
            raise GpuError(f"--runs-per-gpu: expected a positive integer, got {per_gpu}")
        if not gpus:
            raise GpuError("no GPUs to share")
        self.gpus, self.per_gpu = list(gpus), per_gpu
        self.busy = {g: 0 for g in self.gpus}

    @property
    def capacity(self) -> int:
        """Runs that may train at once."""
        return len(self.gpus) * self.per_gpu

    def take(self) -> str | None:
        """A GPU with a free slot (the least loaded; ties: the first listed), or None when all are full."""
        free = [g for g in self.gpus if self.busy[g] < self.per_gpu]
        if not free:
            return None
        gpu = min(free, key=lambda g: self.busy[g])
        self.busy[gpu] += 1
        return gpu

    def give(self, gpu: str) -> None:
        """Return a slot taken by ``take``."""
        if self.busy.get(gpu, 0) <= 0:
            raise ValueError(f"GPU {gpu} has no slot taken")
        self.busy[gpu] -= 1

    def describe(self) -> str:
        """e.g. "GPUs 0, 1 x 2 runs each"."""
        return f"GPU{'s' if len(self.gpus) > 1 else ''} {', '.join(self.gpus)} x {self.per_gpu} run(s) each"


def slots_for(gpus: str | None, runs_per_gpu: int, devices: set[str]) -> GpuSlots | None:
    """The GPU slots a batch spreads its runs over: ``--gpus`` (None: every visible GPU), none
    when there are no GPUs or a run is pinned to the CPU (``train.device = "cpu"`` in ``devices``).

    Raises:
        GpuError: a bad ``--gpus`` or ``--runs-per-gpu``.
    """
    if runs_per_gpu < 1:
        raise GpuError(f"--runs-per-gpu: expected a positive integer, got {runs_per_gpu}")
    ids = visible_gpus() if gpus is None else parse_gpus(gpus)
    if not ids or "cpu" in devices:
        return None
    return GpuSlots(ids, runs_per_gpu)


def least_loaded(gpus: list[str], runs_dir: str | Path) -> str:
    """The GPU of ``gpus`` with the fewest live runs of ``runs_dir`` on this host (``meta.json``'s
    ``gpu``, whoever started them: a batch, the console); ties: the first listed."""
    from labconsole.rundir import live_here

    if not gpus:
        raise GpuError("no GPUs to choose from")
    load = {g: 0 for g in gpus}
    for meta in live_here(runs_dir):
        if meta.gpu in load:
            load[meta.gpu] += 1
    return min(gpus, key=lambda g: load[g])
