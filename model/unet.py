"""Conditional UNet of the paper (App. A.1, Fig. 6): 3 down / 3 up blocks, self-attention, skips.

Conditioning: sinusoidal encodings of t, mu_x and mu_y, concatenated into one vector and
projected, per block, onto that block's channels, then added (paper). ``forward(x_t, t, mu)``
returns the network's prediction and nothing else; "layer 4" — the output of the third
encoder stage with its attention, the last one before the bottleneck — is the module named
``LAYER4`` and is read with a forward hook (``capture``).
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from model.config import SIZES, ModelConfig


LAYER4 = "enc3"  # the module whose output is the paper's "layer 4"

# mu lives in [0, 32) while t lives in [0, 1000): scale mu so both span the same range of the
# encoding's frequencies (ours; the paper does not say how mu is scaled).
MU_SCALE = 1000.0 / 32.0


# --------------------------------------------------------------------------- building blocks


def sinusoidal(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer positional encoding of a (B,) tensor -> (B, dim) (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = x.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class DoubleConv(nn.Module):
    """conv3x3-GroupNorm-GELU-conv3x3-GroupNorm (paper), optionally residual (GELU after the sum)."""

    def __init__(self, c_in: int, c_out: int, c_mid: int | None = None, residual: bool = False):
        super().__init__()
        c_mid = c_mid or c_out
        self.residual = residual
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_mid, 3, padding=1, bias=False),
            nn.GroupNorm(1, c_mid),
            nn.GELU(),
            nn.Conv2d(c_mid, c_out, 3, padding=1, bias=False),
            nn.GroupNorm(1, c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.net(x)) if self.residual else self.net(x)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over the H*W positions, then a pre-norm MLP."""

    def __init__(self, channels: int):
        super().__init__()
        # Up to 4 heads (the public UNet's count) but never below 32 channels per head (ours): the
        # CPU attention kernel is far slower on narrow heads (docs/benchmarks.md).
        self.heads = min(4, max(1, channels // 32))
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.GELU(), nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.qkv(self.norm1(seq)).view(b, h * w, 3, self.heads, c // self.heads).unbind(2)
        # (B, heads, HW, C/heads); scaled_dot_product_attention picks the fused kernel available.
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        seq = seq + self.proj(att.transpose(1, 2).reshape(b, h * w, c))
        seq = seq + self.mlp(self.norm2(seq))
        return seq.transpose(1, 2).reshape(b, c, h, w)


class Down(nn.Module):
    """Max-pool, two double convs, + the projected condition, + self-attention (one encoder stage)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_in, residual=True), DoubleConv(c_in, c_out))
        self.cond = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, c_out))
        self.attn = SelfAttention(c_out)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.attn(self.conv(x) + self.cond(cond)[:, :, None, None])


class Up(nn.Module):
    """Bilinear upsample, concat the skip, two double convs, + the projected condition, + attention."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = nn.Sequential(DoubleConv(c_in, c_in, residual=True), DoubleConv(c_in, c_out, c_in // 2))
        self.cond = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, c_out))
        self.attn = SelfAttention(c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([skip, self.up(x)], dim=1))
        return self.attn(x + self.cond(cond)[:, :, None, None])


# --------------------------------------------------------------------------- the network


class UNet(nn.Module):
    """The paper's conditional UNet at 32x32. ``forward(x_t, t, mu) -> prediction`` (B, 1, 32, 32)."""

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        if cfg.size not in SIZES:
            raise ValueError(f"unknown model size {cfg.size!r}; expected one of: {', '.join(SIZES)}")
        spec = SIZES[cfg.size]
        w0, w1, w2, w3 = spec["widths"]
        wb, self.enc_dim = spec["bottleneck"], spec["enc_dim"]
        cond_dim = 3 * self.enc_dim  # [enc(t), enc(mu_x), enc(mu_y)]
        self.coord_channels = cfg.coord_channels
        self.stem = DoubleConv(1 + 2 * cfg.coord_channels, w0)  # 32x32
        self.enc1 = Down(w0, w1, cond_dim)  # 16x16
        self.enc2 = Down(w1, w2, cond_dim)  # 8x8
        self.enc3 = Down(w2, w3, cond_dim)  # 4x4 — "layer 4" (LAYER4)
        self.bottleneck = nn.Sequential(DoubleConv(w3, wb), DoubleConv(wb, wb), DoubleConv(wb, w3))
        self.dec1 = Up(w3 + w2, w1, cond_dim)  # 8x8
        self.dec2 = Up(w1 + w1, w0, cond_dim)  # 16x16
        self.dec3 = Up(w0 + w0, w0, cond_dim)  # 32x32
        self.head = nn.Conv2d(w0, 1, 1)

    def condition(self, t: torch.Tensor, mu: torch.Tensor | None) -> torch.Tensor:
        """The concatenated sinusoidal encodings (B, 3 enc_dim); ``mu=None`` zeroes the label part."""
        enc_t = sinusoidal(t, self.enc_dim)
        if mu is None:
            return torch.cat([enc_t, torch.zeros_like(enc_t), torch.zeros_like(enc_t)], dim=1)
        mu = mu.float() * MU_SCALE
        return torch.cat([enc_t, sinusoidal(mu[:, 0], self.enc_dim), sinusoidal(mu[:, 1], self.enc_dim)], dim=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, mu: torch.Tensor | None) -> torch.Tensor:
        cond = self.condition(t, mu)
        if self.coord_channels:
            x_t = torch.cat([x_t, coordinate_grid(x_t)], dim=1)
        h0 = self.stem(x_t)  # (B, w0, 32, 32)
        h1 = self.enc1(h0, cond)  # (B, w1, 16, 16)
        h2 = self.enc2(h1, cond)  # (B, w2, 8, 8)
        h3 = self.enc3(h2, cond)  # (B, w3, 4, 4)
        x = self.bottleneck(h3)
        x = self.dec1(x, h2, cond)
        x = self.dec2(x, h1, cond)
        x = self.dec3(x, h0, cond)
        return self.head(x)


def coordinate_grid(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) channels holding each pixel's x and y, scaled to [-1, 1] (CoordConv, ours)."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=0)  # (2, H, W): x then y
    return grid.expand(b, 2, h, w)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def capture(model: UNet, name: str = LAYER4) -> Iterator[list[torch.Tensor]]:
    """Record the output of the named module on every forward pass while the context is open.

    Yields a list that receives one detached (B, C, H, W) tensor per forward call, in order.
    """
    outputs: list[torch.Tensor] = []
    handle = model.get_submodule(name).register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
    try:
        yield outputs
    finally:
        handle.remove()
