"""The competitor: Hugging Face diffusers' ``UNet2DModel`` at a parameter count matched to ours.

How it is matched (within 2% of our parameter count at every named size; the benches print both):
- 4 levels at 32/16/8/4 pixels like ours, ``layers_per_block=2`` (diffusers' default) and
  ``block_out_channels = (w, 2w, 3.75w, 3.75w)`` where ours has (w, 2w, 4w, 4w) + a bottleneck:
  diffusers' ResNet blocks hold more weights per width. ``layers=1`` (``--diffusers-layers 1``)
  is the other reasonable pick: (w, 2w, 4.75w, 4.75w), fewer and wider blocks;
- self-attention at the resolutions where ours has it: after the encoder blocks at 16, 8, 4 pixels
  (``AttnDownBlock2D``) and the decoder blocks at 8, 16, 32 (``AttnUpBlock2D``); none in the mid
  block (``add_attention=False``; our bottleneck has none). Diffusers attends after every ResNet
  of such a block (2 per down block, 3 per up block at layers_per_block=2), ours once per block —
  its design, kept;
- one head of the full width per attention (``attention_head_dim=None``, "tuned"): attention FLOPs
  do not depend on the head count, and diffusers' default of 8 channels per head is the shape our
  SelfAttention avoids because the CPU kernel is several times slower there. ``head_dim=8`` builds
  the model as diffusers ships it ("as shipped": what a user gets who sets only the widths);
  the benches report both;
- GroupNorm groups = gcd(widths, 32) (diffusers needs groups to divide every width).

How it is conditioned, fairly: the timestep through diffusers' own sinusoidal projection + MLP
(as it always is); the label (mu_x, mu_y) through ``class_embed_type="identity"``: the caller's
class vector is added to the time embedding, and each ResNet block projects the sum onto its
channels — the same per-block projected condition ours has. That class vector is our own
sinusoidal encoding of mu_x and mu_y (half the embedding each), computed inside the timed
forward. No extra weights, nothing left out.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from model.unet import MU_SCALE, SIZES, sinusoidal

def widths(size: str, layers: int = 2) -> tuple[int, int, int, int]:
    """Diffusers block widths matched to our ``size`` (see the module docstring)."""
    w = SIZES[size]["widths"][0]
    deep = w * 15 // 4 if layers == 2 else w * 19 // 4
    return (w, 2 * w, deep, deep)


SHIPPED_HEAD_DIM = 8  # UNet2DModel's default attention_head_dim


def diffusers_config(size: str, layers: int = 2, head_dim: int | None = None) -> dict:
    """UNet2DModel keyword arguments matched to our ``size`` (see the module docstring);
    ``head_dim`` None = one head of the full width (tuned), 8 = diffusers' default."""
    if layers not in (1, 2):
        raise ValueError(f"layers must be 1 or 2 (matched widths are known for those); got {layers}")
    ws = widths(size, layers)
    return dict(
        sample_size=32, in_channels=1, out_channels=1,
        block_out_channels=ws, layers_per_block=layers,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D"),
        add_attention=False, norm_num_groups=math.gcd(*ws, 32), attention_head_dim=head_dim,
        class_embed_type="identity",
    )


class DiffusersUNet(nn.Module):
    """``forward(x_t, t, mu) -> prediction`` around a diffusers UNet2DModel, like our UNet's."""

    def __init__(self, size: str, layers: int = 2, head_dim: int | None = None):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # diffusers' deprecation chatter
            from diffusers import UNet2DModel

            self.unet = UNet2DModel(**diffusers_config(size, layers, head_dim))
        self.half = self.unet.config.block_out_channels[0] * 4 // 2  # time_embed_dim / 2 per axis

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        mu = mu.float() * MU_SCALE
        label = torch.cat([sinusoidal(mu[:, 0], self.half), sinusoidal(mu[:, 1], self.half)], dim=1)
        return self.unet(x_t, t, class_labels=label).sample


def have_diffusers() -> bool:
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return False
    return True


NO_DIFFUSERS = "diffusers is not installed: .venv/bin/pip install -e '.[bench]' (or: pip install diffusers)"
