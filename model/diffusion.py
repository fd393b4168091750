"""The diffusion math (Ho et al. 2020; Song et al. 2021): schedule, q_sample, loss, samplers.

Time indices are 0-based: t = 0 .. T-1, ``alpha_bar[t] = prod_{s <= t} (1 - beta_s)``.
The network may predict eps (the paper), x0 or v; ``to_eps`` / ``to_x0`` convert its output, so
every sampler works for every target. Samplers take their starting noise and random generator
from the caller, so an evaluation is reproducible at any batch size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from model.config import PREDICTIONS, SAMPLERS, DiffusionConfig

# Most images per network call when sampling on the CPU, split into equal slices: a whole eval batch
# (500 images) overflows the caches. 64 rather than 128 suits the quick preset's 100 labels (2 x 50)
# and costs nothing at 500 (figures: docs/benchmarks.md, bench/sampling.py --checks-only). The network
# treats every sample on its own, so the slices change the speed, not the result.
CPU_BATCH = 64


@dataclass(frozen=True)
class Schedule:
    """The noise schedule, computed once (float64 math, stored float32)."""

    T: int
    betas: torch.Tensor  # (T,)
    alphas: torch.Tensor  # (T,) 1 - beta
    alpha_bar: torch.Tensor  # (T,) cumulative product
    alpha_bar_prev: torch.Tensor  # (T,) alpha_bar[t-1], with alpha_bar[-1] = 1

    @classmethod
    def from_config(cls, cfg: DiffusionConfig, device: torch.device | str = "cpu") -> "Schedule":
        """Linear betas; for T != 1000 optionally rescaled by 1000/T (capped below 1)."""
        scale = 1000.0 / cfg.T if cfg.rescale_betas else 1.0
        betas = torch.linspace(cfg.beta_start * scale, min(cfg.beta_end * scale, 0.999), cfg.T, dtype=torch.float64)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        f32 = lambda a: a.float().to(device)  # noqa: E731
        return cls(cfg.T, f32(betas), f32(alphas), f32(alpha_bar), f32(alpha_bar_prev))


def _at(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Gather a schedule value per sample and shape it to broadcast over (B, C, H, W)."""
    return a[t].view(-1, 1, 1, 1)


# --------------------------------------------------------------------------- forward process


def q_sample(s: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Ho et al. Eq. 4)."""
    ab = _at(s.alpha_bar, t)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def target(s: Schedule, prediction: str, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """What the network is trained to output for the given prediction type."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":  # v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022)
        ab = _at(s.alpha_bar, t)
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0
    raise ValueError(f"unknown prediction {prediction!r}; expected one of: {', '.join(PREDICTIONS)}")


def to_x0(s: Schedule, prediction: str, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The network output converted to a prediction of x0."""
    ab = _at(s.alpha_bar, t)
    if prediction == "eps":
        return (x_t - (1 - ab).sqrt() * out) / ab.sqrt()
    if prediction == "x0":
        return out
    if prediction == "v":
        return ab.sqrt() * x_t - (1 - ab).sqrt() * out
    raise ValueError(f"unknown prediction {prediction!r}; expected one of: {', '.join(PREDICTIONS)}")


def eps_from_x0(s: Schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The eps that, with x0, gives x_t: (x_t - sqrt(ab) x0) / sqrt(1 - ab)."""
    ab = _at(s.alpha_bar, t)
    return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()


def loss(
    model: nn.Module, s: Schedule, prediction: str, x0: torch.Tensor, mu: torch.Tensor,
    t: torch.Tensor, eps: torch.Tensor,
) -> torch.Tensor:
    """The simple MSE loss on the prediction target (Ho et al. Eq. 14 for eps; paper App. A.4)."""
    out = model(q_sample(s, x0, t, eps), t, mu)
    return torch.mean((out.float() - target(s, prediction, x0, t, eps)) ** 2)


# --------------------------------------------------------------------------- reverse steps


def ddpm_step(s: Schedule, x_t: torch.Tensor, t: int, eps: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """One ancestral step (Ho et al. Alg. 2) with the posterior variance beta~_t:
    x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t) + sigma_t z, no noise at t = 0."""
    beta, alpha, ab, ab_prev = s.betas[t], s.alphas[t], s.alpha_bar[t], s.alpha_bar_prev[t]
    mean = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
    if t == 0:
        return mean
    sigma = ((1 - ab_prev) / (1 - ab) * beta).sqrt()
    return mean + sigma * z


def ddim_step(s: Schedule, x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step (Song et al. Eq. 12, eta = 0) from t to t_prev (-1 = the end)."""
    ab = s.alpha_bar[t]
    ab_prev = s.alpha_bar[t_prev] if t_prev >= 0 else torch.ones_like(ab)
    x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps


# --------------------------------------------------------------------------- samplers


def timesteps(s: Schedule, sampler: str, steps: int | None) -> list[int]:
    """The descending t values a sampler visits: all T for DDPM, ``steps`` evenly spaced for DDIM."""
    if sampler == "ddpm":
        return list(range(s.T - 1, -1, -1))
    if sampler == "ddim":
        n = min(int(steps or 50), s.T)
        ts = torch.linspace(0, s.T - 1, n).round().long().unique().tolist()
        return sorted(ts, reverse=True)
    raise ValueError(f"unknown sampler {sampler!r}; expected one of: {', '.join(SAMPLERS)}")


@torch.no_grad()
def sample(
    model: nn.Module,
    s: Schedule,
    mu: torch.Tensor,
    noise: torch.Tensor,
    *,
    prediction: str = "eps",
    sampler: str = "ddpm",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    clip: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Draw images for labels ``mu`` starting from ``noise`` (B, 1, H, W).

    Args:
        prediction: what ``model`` outputs (eps | x0 | v).
        sampler: ddpm (ancestral, T steps; the paper trains a DDPM and never names its sampler) or
            ddim (deterministic, ``steps`` steps).
        generator: the random source of DDPM's per-step noise (ignored by DDIM).
        clip: clamp the predicted x0 to [-1, 1] before each step (ours; the data lives there).
        callback: called as ``callback(t, x_t)`` after each network evaluation at step t.

    Returns:
        (B, 1, H, W) samples in the model's [-1, 1] scale.
    """
    ts = timesteps(s, sampler, steps)
    x = noise
    for i, t in enumerate(ts):
        t_batch = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        out = _predict(model, x, t_batch, mu)
        if callback is not None:
            callback(t, x)
        eps = _eps_for_step(s, prediction, out, x, t_batch, clip)
        if sampler == "ddpm":
            z = torch.randn(x.shape, generator=generator, device=x.device) if t > 0 else None
            x = ddpm_step(s, x, t, eps, z)
        else:
            x = ddim_step(s, x, t, ts[i + 1] if i + 1 < len(ts) else -1, eps)
    return x


def _predict(model: nn.Module, x: torch.Tensor, t: torch.Tensor, mu: torch.Tensor | None) -> torch.Tensor:
    """The network's output for the batch; on the CPU in equal slices of at most CPU_BATCH images."""
    if x.device.type != "cpu" or len(x) <= CPU_BATCH:
        return model(x, t, mu).float()
    n = -(-len(x) // CPU_BATCH)  # slices: 100 images -> 50 + 50, not 64 + 36
    bounds = [len(x) * i // n for i in range(n + 1)]
    parts = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
    return torch.cat([model(x[p], t[p], None if mu is None else mu[p]).float() for p in parts])


def _eps_for_step(s: Schedule, prediction: str, out, x_t, t, clip: bool) -> torch.Tensor:
    if prediction == "eps" and not clip:
        return out
    x0 = to_x0(s, prediction, out, x_t, t)
    if clip:
        x0 = x0.clamp(-1, 1)
    return eps_from_x0(s, x0, x_t, t)
