"""Conditional UNet of the paper (App. A.1): 3 down / 3 up blocks, self-attention, skips.

Conditioning: sinusoidal encodings of t, mu_x and mu_y, concatenated, projected and added in
every down/up block. ``forward(x_t, t, mu)`` returns the network output and nothing else;
"layer 4" is reached through the named module ``layer4`` and a forward hook (see ``capture``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    size: str = "paper"  # a name in SIZES: paper (~23M params, ours after the public UNet), small CPU sizes
    coord_channels: bool = False  # add 2 input channels holding pixel x and y (ours; off = paper)
