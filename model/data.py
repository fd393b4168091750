"""Gaussian-bump images and the grid datasets of the paper (Liang, Liu, Fiete 2024, §3, App. B),
and of its follow-up (Liang et al. 2024: stripes, canvases, tori, held-out crosses, subsampling).

Canvas coordinates run from (0, 0) at the top-left corner to (size, size) at the bottom-right;
x is the column axis, y the row axis, and pixel (row i, col j) has its centre at (j + .5, i + .5).
A bump is dark on a white canvas: ``1 - exp(-|p - mu|^2 / (2 sigma^2))`` (DESIGN §5).

The generic entry points, for every DataConfig (any kind, canvas, keep):
    render(mu, cfg)          the images of labels                      (model.render)
    training_centres(cfg)    the grid the model trains on: holes out, then keep applied
    held_out_regions(cfg)    the held-out centres, one named region per combination of holes
    keep_split(cfg)          (kept, dropped): dropped = in-distribution, never seen, not held out
``bump_images`` and ``grid_centres`` are their paper-only forms, kept for existing callers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.config import DataConfig
from model.render import axis_sigmas, canvas_side, frame_offset, in_frame, render

__all__ = [
    "DataConfig", "BumpDataset", "axis_centres", "axis_sigmas", "bump_images", "canvas_side", "frame_offset",
    "grid_centres", "held_out_regions", "hole_membership", "hole_name", "in_frame", "in_holes", "keep_mask",
    "keep_split", "make_dataset", "neighbour_overlap", "render", "to_model_scale", "training_centres",
]


# --------------------------------------------------------------------------- images


def bump_images(mu: torch.Tensor, sigma: float, size: int = 32) -> torch.Tensor:
    """Render dark Gaussian bumps on a white canvas (the paper's images; ``render`` is the general form).

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
    return hole_membership(mu, holes).any(axis=1)


def hole_membership(mu: np.ndarray, holes: tuple[tuple[float, float, float, float], ...]) -> np.ndarray:
    """(N, H) bool: column h says which centres fall inside hole h (x0, y0, x1, y1), edges included."""
    member = np.zeros((len(mu), len(holes)), dtype=bool)
    for h, (x0, y0, x1, y1) in enumerate(holes):
        member[:, h] = (mu[:, 0] >= x0) & (mu[:, 0] <= x1) & (mu[:, 1] >= y0) & (mu[:, 1] <= y1)
    return member


def grid_centres(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """All grid centres, split into (in-distribution, in-hole) arrays of shape (N, 2) = (x, y).

    The grid enumerates every centre at increments dx, dy tiling the canvas (paper §2; the latent
    canvas when ``cfg.canvas`` is set, follow-up); centres inside a hole are left out of training
    and kept for evaluation (paper App. B.2). ``cfg.keep`` is not applied here: the first array is
    every in-distribution position; ``training_centres`` is the subset the model trains on.
    """
    xs = axis_centres(cfg.dx, canvas_side(cfg), cfg.margin)
    ys = axis_centres(cfg.dy, canvas_side(cfg), cfg.margin)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    mu = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    hole = in_holes(mu, cfg.holes)
    return mu[~hole], mu[hole]


def keep_mask(n: int, cfg: DataConfig) -> np.ndarray:
    """(n,) bool: a seeded random subset of round(keep * n) of n centres, at least one (n > 0).

    An exact count drawn without replacement (ours), so the share is the one asked and not a
    binomial draw around it; seeded by ``cfg.keep_seed`` alone, so runs differing in anything but
    the data see the same subset. keep = 1 draws nothing: every centre, as before this field.
    """
    mask = np.ones(n, dtype=bool)
    if cfg.keep >= 1.0 or n == 0:
        return mask
    k = max(1, int(np.floor(cfg.keep * n + 0.5)))  # round half up; at least one centre stays
    mask[:] = False
    mask[np.random.default_rng(cfg.keep_seed).choice(n, size=k, replace=False)] = True
    return mask


def keep_split(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(kept, dropped) (K, 2) / (N - K, 2) centres of the in-distribution grid, in grid order.

    The dropped centres are in-distribution positions the model never sees in training (follow-up's
    subsampling): not a held-out region, which is a hole's business (``held_out_regions``).
    """
    grid, _ = grid_centres(cfg)
    mask = keep_mask(len(grid), cfg)
    return grid[mask], grid[~mask]


def training_centres(cfg: DataConfig) -> np.ndarray:
    """(K, 2) the centres the model trains on: the grid, holes left out, ``cfg.keep`` applied."""
    return keep_split(cfg)[0]


def hole_name(cfg: DataConfig, h: int) -> str:
    """The name of hole ``h``: ``cfg.hole_names[h]``, or "hole <h + 1>" when none are given (ours)."""
    return cfg.hole_names[h] if cfg.hole_names else f"hole {h + 1}"


def held_out_regions(cfg: DataConfig) -> list[tuple[str, np.ndarray]]:
    """The held-out centres, split into evaluation regions by which holes contain them.

    A centre in hole i alone belongs to region ``hole_name(i)``; one in holes i and j (and ...) to
    "<name i> ∩ <name j>". For a cross made of a vertical and a horizontal strip: the vertical arm,
    the horizontal arm, their intersection (follow-up Fig. 4). Regions come in a stable order: by
    how many holes they lie in, then by hole index; empty regions are left out.

    Returns:
        [(name, (M, 2) centres in grid order), ...]; [] without holes.
    """
    _, hole_mu = grid_centres(cfg)
    member = hole_membership(hole_mu, cfg.holes)  # (M, H)
    patterns = sorted({tuple(np.flatnonzero(row)) for row in member}, key=lambda p: (len(p), p))
    regions = []
    for pattern in patterns:
        rows = (member == np.isin(np.arange(len(cfg.holes)), pattern)).all(axis=1)  # exactly these holes
        regions.append((" ∩ ".join(hole_name(cfg, h) for h in pattern), hole_mu[rows]))
    return regions


@dataclass(frozen=True)
class BumpDataset:
    """A whole training set, resident as tensors (no loader: indexing one tensor is the fast path).

    Any data kind despite the name (bumps, sums of stripes, stripes), rendered by ``render``.
    """

    images: torch.Tensor  # (N, 1, H, W) in the model's [-1, 1] scale
    mu: torch.Tensor  # (N, 2) centres (x, y)
    hole_mu: torch.Tensor  # (M, 2) centres left out of training, for OOD evaluation

    def __len__(self) -> int:
        return len(self.mu)


def make_dataset(cfg: DataConfig, device: torch.device | str = "cpu") -> BumpDataset:
    """Build the grid dataset of ``cfg`` on ``device`` (dx = dy = 0.1: 102,400 images, ~0.4 GB).

    The training centres are ``training_centres(cfg)`` (holes out, keep applied), rendered by
    ``render``; ``hole_mu`` holds every held-out centre (all regions together).

    Raises:
        ValueError: the grid is empty (all centres in holes or outside the margin).
    """
    grid, hole_mu = grid_centres(cfg)
    train_mu = grid[keep_mask(len(grid), cfg)]
    if len(train_mu) == 0:
        raise ValueError(f"the training grid is empty for {cfg}")
    mu = torch.from_numpy(train_mu).to(device)
    images = torch.empty(len(mu), 1, cfg.size, cfg.size, device=device)
    for lo in range(0, len(mu), 8192):  # chunks bound the temporary (N, H, W) float tensors
        images[lo : lo + 8192] = to_model_scale(render(mu[lo : lo + 8192], cfg))
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
