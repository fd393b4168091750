"""Gaussian-bump images and the grid datasets of the paper (Liang, Liu, Fiete 2024, §3, App. B).

Canvas coordinates run from (0, 0) at the top-left corner to (size, size) at the bottom-right;
x is the column axis, y the row axis, and pixel (row i, col j) has its centre at (j + .5, i + .5).
A bump is dark on a white canvas: ``1 - exp(-|p - mu|^2 / (2 sigma^2))`` (DESIGN §5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DataConfig:
    dx: float = 0.1  # grid increment of centres along x, pixels (paper: 0.1 .. 1.0)
    dy: float = 0.1  # grid increment along y (paper: dx != dy in the imbalance experiment)
    sigma: float = 1.0  # bump standard deviation, pixels (ours for most presets; paper Fig. 8 sweeps it)
    size: int = 32  # canvas side, pixels (paper)
    margin: float = 0.0  # keep centres at least this far from the border (ours; 0 = paper's full grid)
    # Rectangles (x0, y0, x1, y1) of centres left out of training, kept for evaluation (paper App. B.2).
    holes: tuple[tuple[float, float, float, float], ...] = ()
