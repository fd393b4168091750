"""Gaussian-bump images and the grid datasets of the paper (Liang, Liu, Fiete 2024, §3, App. B).

Canvas coordinates run from (0, 0) at the top-left corner to (size, size) at the bottom-right;
x is the column axis, y the row axis, and pixel (row i, col j) has its centre at (j + .5, i + .5).
A bump is dark on a white canvas: ``1 - exp(-|p - mu|^2 / (2 sigma^2))`` (DESIGN §5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.config import DataConfig




# --------------------------------------------------------------------------- images


def bump_images(mu: torch.Tensor, sigma: float, size: int = 32) -> torch.Tensor:
    """Render dark Gaussian bumps on a white canvas.

    Args:
        mu: (N, 2) centres (x, y) in canvas coordinates; any sub-pixel value.
        sigma: bump standard deviation in pixels.
        size: canvas side in pixels.

    Returns:
        (N, size, size) float32 in [0, 1]: ``1 - exp(-|p - mu|^2 / (2 sigma^2))``.
    """
    mu = torch.as_tensor(mu, dtype=torch.float32)
    centres = torch.arange(size, dtype=torch.float32, device=mu.device) + 0.5  # pixel centres
    # The Gaussian is separable: one (N, size) profile per axis, then an outer product.
    gx = torch.exp(-((centres[None, :] - mu[:, 0:1]) ** 2) / (2 * sigma**2))  # (N, W)
    gy = torch.exp(-((centres[None, :] - mu[:, 1:2]) ** 2) / (2 * sigma**2))  # (N, H)
    return 1.0 - gy[:, :, None] * gx[:, None, :]  # (N, H, W)


def to_model_scale(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] canvas -> the model's [-1, 1] scale, with a channel axis: (N, H, W) -> (N, 1, H, W)."""
    return (images * 2.0 - 1.0).unsqueeze(1)


# --------------------------------------------------------------------------- grids


def axis_centres(step: float, size: int, margin: float) -> np.ndarray:
    """Centres {0, step, 2 step, ...} < size, keeping those in [margin, size - margin] (paper §2)."""
    if step <= 0:
        raise ValueError(f"grid increment must be positive, got {step}")
    # k * step < size, computed on integers k so that dx = 0.1 gives exactly 320 values.
    n = int(np.floor((size - 1e-9) / step)) + 1
    values = np.round(np.arange(n) * step, 9)
    keep = (values >= margin - 1e-9) & (values <= size - margin + 1e-9)
    return values[keep]


def in_holes(mu: np.ndarray, holes: tuple[tuple[float, float, float, float], ...]) -> np.ndarray:
    """(N,) bool: which centres fall inside any hole rectangle (x0, y0, x1, y1), edges included."""
    inside = np.zeros(len(mu), dtype=bool)
    for x0, y0, x1, y1 in holes:
        inside |= (mu[:, 0] >= x0) & (mu[:, 0] <= x1) & (mu[:, 1] >= y0) & (mu[:, 1] <= y1)
    return inside


def grid_centres(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """All grid centres, split into (training, in-hole) arrays of shape (N, 2) = (x, y).

    The grid enumerates every centre at increments dx, dy tiling the canvas (paper §2);
    centres inside a hole are left out of training and kept for evaluation (paper App. B.2).
    """
    xs = axis_centres(cfg.dx, cfg.size, cfg.margin)
    ys = axis_centres(cfg.dy, cfg.size, cfg.margin)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    mu = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    hole = in_holes(mu, cfg.holes)
    return mu[~hole], mu[hole]


@dataclass(frozen=True)
class BumpDataset:
    """A whole training set, resident as tensors (no loader: indexing one tensor is the fast path)."""

    images: torch.Tensor  # (N, 1, H, W) in the model's [-1, 1] scale
    mu: torch.Tensor  # (N, 2) centres (x, y)
    hole_mu: torch.Tensor  # (M, 2) centres left out of training, for OOD evaluation

    def __len__(self) -> int:
        return len(self.mu)


def make_dataset(cfg: DataConfig, device: torch.device | str = "cpu") -> BumpDataset:
    """Build the grid dataset of ``cfg`` on ``device`` (dx = dy = 0.1: 102,400 images, ~0.4 GB).

    Raises:
        ValueError: the grid is empty (all centres in holes or outside the margin).
    """
    train_mu, hole_mu = grid_centres(cfg)
    if len(train_mu) == 0:
        raise ValueError(f"the training grid is empty for {cfg}")
    mu = torch.from_numpy(train_mu).to(device)
    images = torch.empty(len(mu), 1, cfg.size, cfg.size, device=device)
    for lo in range(0, len(mu), 8192):  # chunks bound the temporary (N, H, W) float tensors
        images[lo : lo + 8192] = to_model_scale(bump_images(mu[lo : lo + 8192], cfg.sigma, cfg.size))
    return BumpDataset(images=images, mu=mu, hole_mu=torch.from_numpy(hole_mu).to(device))


# --------------------------------------------------------------------------- overlap


def neighbour_overlap(
    sigma: float, increment: float, size: int = 32, centre: tuple[float, float] | None = None
) -> float:
    """Overlap of two neighbouring bumps (paper App. A.5, Fig. 7b).

    The normalised L2 norm of the element-wise product of two inverted bump images (bright bumps)
    whose centres are ``increment`` apart along x, the first at ``centre`` (default: the canvas centre):
    ``|a * b| / sqrt(|a * a| |b * b|)`` — 1 for identical bumps, -> 0 for distant ones. The copy of
    the paper we have lost the formula's symbols; this normalisation is ours.
    """
    cx, cy = centre if centre is not None else (size / 2, size / 2)
    mu = torch.tensor([[cx, cy], [cx + increment, cy]], dtype=torch.float32)
    a, b = 1.0 - bump_images(mu, sigma, size).double()  # inverted: bright bumps
    return float(torch.linalg.norm(a * b) / torch.sqrt(torch.linalg.norm(a * a) * torch.linalg.norm(b * b)))
