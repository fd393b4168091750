"""The diffusion math: schedule, q_sample, loss, one DDPM step, one DDIM step, the samplers."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiffusionConfig:
    T: int = 1000  # diffusion steps (ours: Ho et al.'s default)
    beta_start: float = 1e-4  # linear schedule (ours: Ho et al.)
    beta_end: float = 0.02
    rescale_betas: bool = True  # scale betas by 1000/T so the last step is pure noise for short T (ours)
    prediction: str = "eps"  # what the network predicts: eps (paper) | x0 | v
