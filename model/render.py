"""The image of a label, for every data kind (paper §2; follow-up, Liang et al. 2024, Fig. 1).

Labels (mu_x, mu_y) live on a latent canvas of side ``canvas_side(cfg)`` (= ``size`` unless
``cfg.canvas`` is larger); the image is the centred ``size`` x ``size`` frame of that canvas,
whose pixel (row i, col j) has its centre at canvas coordinates (off + j + .5, off + i + .5),
off = ``frame_offset(cfg)``. Each axis contributes a 1D Gaussian profile, g_x(col) and g_y(row);
the kinds combine them into a darkness d in [0, 1] and the image is ``1 - d`` (dark on white):

- bump:   d = g_x g_y                                       (paper; follow-up "2D bumps")
- sos:    d = min(g_x + g_y, 1)                             (follow-up "sum of stripes"; the clip is ours)
- stripe: d = g_x g_y when both coordinates lie in the frame, g_x alone (a vertical stripe) when only
          mu_x does, g_y alone (a horizontal stripe) when only mu_y does, 0 when neither does
          (follow-up "2D bumps + 1D stripes"; "in the frame" = in [off, off + size), ours).

With ``cfg.periodic`` the distance along each axis wraps with period = the canvas side (a torus).
``render`` is the one entry point; ``model.data.bump_images`` is its default case.
"""
from __future__ import annotations

import numpy as np
import torch

from model.config import KINDS, DataConfig


def canvas_side(cfg: DataConfig) -> int:
    """The latent canvas side in pixels: ``cfg.canvas``, or ``cfg.size`` when it is 0 (paper)."""
    return cfg.canvas or cfg.size


def frame_offset(cfg: DataConfig) -> float:
    """Canvas coordinate of the frame's top-left corner: (canvas - size) / 2 (follow-up: 6 for 44 / 32)."""
    return (canvas_side(cfg) - cfg.size) / 2


def axis_sigmas(cfg: DataConfig) -> tuple[float, float]:
    """(sigma_x, sigma_y): the per-axis widths, each 0 meaning ``cfg.sigma``."""
    return cfg.sigma_x or cfg.sigma, cfg.sigma_y or cfg.sigma


def in_frame(mu: np.ndarray | torch.Tensor, cfg: DataConfig) -> np.ndarray | torch.Tensor:
    """Per axis, whether a label's coordinate lies inside the frame, [off, off + size) (ours).

    Args:
        mu: (N, 2) labels (x, y) in canvas coordinates, numpy or torch.
    Returns:
        (N, 2) bool of the same library as ``mu``: column 0 for x, column 1 for y.
    """
    off = frame_offset(cfg)
    return (mu >= off) & (mu < off + cfg.size)


def axis_profile(centre: torch.Tensor, sigma: float, cfg: DataConfig) -> torch.Tensor:
    """1D Gaussian profiles over the frame's pixel centres along one axis.

    Args:
        centre: (N,) label coordinates along this axis, canvas coordinates.
        sigma: the width along this axis, pixels.
    Returns:
        (N, size): ``exp(-d^2 / (2 sigma^2))``, d the (wrapped, when periodic) distance.
    """
    coords = torch.arange(cfg.size, dtype=torch.float32, device=centre.device) + 0.5  # pixel centres
    offset = frame_offset(cfg)
    if offset:  # skipped at 0 so the default config computes exactly what bump_images always did
        coords = coords + offset
    d = coords[None, :] - centre[:, None]  # (N, size)
    if cfg.periodic:
        side = canvas_side(cfg)
        d = torch.remainder(d + side / 2, side) - side / 2  # nearest image on the torus, in [-L/2, L/2)
    return torch.exp(-(d**2) / (2 * sigma**2))


def render(mu: np.ndarray | torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """The frame image of each label, for any kind, canvas, width and boundary of ``cfg``.

    Args:
        mu: (N, 2) labels (x, y) in canvas coordinates; any sub-pixel value.
        cfg: the data config (kind, sigma / sigma_x / sigma_y, size, canvas, periodic).
    Returns:
        (N, size, size) float32 in [0, 1] on ``mu``'s device: ``1 - darkness``, rows = y, cols = x.
        For the default config it equals ``bump_images(mu, cfg.sigma, cfg.size)`` bit for bit.
    Raises:
        ValueError: an unknown ``cfg.kind``.
    """
    mu = torch.as_tensor(mu, dtype=torch.float32)
    sigma_x, sigma_y = axis_sigmas(cfg)
    gx = axis_profile(mu[:, 0], sigma_x, cfg)  # (N, W): varies along the columns
    gy = axis_profile(mu[:, 1], sigma_y, cfg)  # (N, H): varies along the rows
    if cfg.kind == "bump":
        dark = gy[:, :, None] * gx[:, None, :]  # (N, H, W)
    elif cfg.kind == "sos":
        # Clipped (ours): the crossing is as dark as a bump's centre, a lone stripe fully dark.
        dark = (gy[:, :, None] + gx[:, None, :]).clamp(max=1.0)
    elif cfg.kind == "stripe":
        inside = in_frame(mu, cfg)  # (N, 2)
        # An axis whose coordinate lies outside the frame stops shaping the image (profile 1);
        # with both outside nothing is drawn.
        gx = torch.where(inside[:, 0:1], gx, 1.0)
        gy = torch.where(inside[:, 1:2], gy, 1.0)
        shown = inside.any(dim=1).to(gx.dtype)[:, None, None]  # (N, 1, 1)
        dark = gy[:, :, None] * gx[:, None, :] * shown
    else:
        raise ValueError(f"unknown data kind {cfg.kind!r}; expected one of: {', '.join(KINDS)}")
    return 1.0 - dark
