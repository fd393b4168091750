"""RunConfig: everything one run needs, composed of the configs of the parts it configures."""
from __future__ import annotations

from dataclasses import dataclass, field

from model.config import DataConfig, DiffusionConfig, ModelConfig, TrainConfig


CAPTURES = ("block", "no_label")  # what eval.capture may be (see EvalConfig.capture)


@dataclass(frozen=True)
class EvalConfig:
    n_samples: int = 500  # labels drawn from the training grid per eval (paper)
    n_ood: int = 100  # extra labels drawn from the hole(s), if any (ours)
    sampler: str = "ddpm"  # ddpm (inferred: ancestral, T steps; the paper never names its sampler) | ddim
    ddim_steps: int = 50  # steps of the DDIM sampler (ours)
    capture_t: int = 0  # reverse step at which layer 4 is captured (0 = the last, ours)
    capture: str = "block"  # block: layer-4 output (paper) | no_label: the same with the label encoding zeroed
    tolerance: float = 1.0  # a centre is correct within this many pixels on each axis (ours)
    # The contrast floor of a blob (ours; = metrics.MIN_DEPTH / MIN_SNR, calibrated in
    # docs/failure-modes.md): 0 and 0 = the paper's detector, every Otsu contour a blob.
    min_depth: float = 0.3  # model units (of 2): how far below the canvas a blob's darkest point lies
    min_snr: float = 10.0  # ... and how many canvas spreads (robust std) that depth must reach
    umap_neighbors: int = 15  # umap-learn defaults (inferred: the paper uses umap-learn, names no parameter)
    umap_min_dist: float = 0.1
    umap_seeds: int = 1  # UMAP fits (seeds seed, seed + 1, ...): R² = their median, with its range (ours)
    seed: int = 0  # seeds the eval's labels, noise and UMAP: every eval of a run is comparable
    phase_single_min: float = 0.5  # phase A below this fraction of single-blob samples (ours)
    phase_accuracy_frac: float = 0.8  # phase C needs accuracy >= this x its ceiling (ours)
    phase_r2_min: float = 0.8  # ... and mean UMAP R² >= this (ours)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
