"""Checkpoints: plain dicts of state_dicts and primitives, loadable with ``weights_only=True``.

Written to a temporary name in the same directory, fsynced, then renamed, so a crash never leaves
a torn checkpoint; ``latest`` is a small text file naming the newest one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}.pt"


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint holds, read from its name (``step-0000600.pt`` -> 600) without loading it."""
    return int(Path(path).stem.split("-")[1])


def save_checkpoint(directory: Path, step: int, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` as ``directory/step-XXXXXXX.pt`` and point ``latest`` at it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / checkpoint_name(step)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    latest_tmp = directory / "latest.tmp"
    latest_tmp.write_text(path.name + "\n")
    os.replace(latest_tmp, directory / "latest")
    return path


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint ``latest`` names, or the highest-step one if ``latest`` is missing; None if none."""
    pointer = directory / "latest"
    if pointer.exists():
        path = directory / pointer.read_text().strip()
        if path.exists():
            return path
    found = sorted(directory.glob("step-*.pt"))
    return found[-1] if found else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no code is unpickled)."""
    return torch.load(path, map_location=map_location, weights_only=True)
