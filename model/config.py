"""The configs of the science core: plain frozen dataclasses and the named model sizes.

They live apart from the code they configure so that reading and validating a preset needs
neither torch nor numpy: the console process validates presets and never imports torch.
Each module re-exports its own config (``model.data.DataConfig`` is this ``DataConfig``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataConfig:
    dx: float = 0.1  # grid increment of centres along x, pixels (paper: 0.1 .. 1.0)
    dy: float = 0.1  # grid increment along y (paper: dx != dy in the imbalance experiment)
    sigma: float = 1.0  # bump standard deviation, pixels (ours for most presets; paper Fig. 8 sweeps it)
    size: int = 32  # canvas side, pixels (paper)
    margin: float = 0.0  # keep centres at least this far from the border (ours; 0 = paper's full grid)
    # Rectangles (x0, y0, x1, y1) of centres left out of training, kept for evaluation (paper App. B.2),
    # edges included, in canvas coordinates. The one shape of every held-out region: a cross is two
    # strips (follow-up Fig. 4), a lesion a strip (Fig. 11), an interior or edge square a square (Fig. 12).
    holes: tuple[tuple[float, float, float, float], ...] = ()
    # What a label looks like (follow-up Fig. 1); KINDS. bump: the 2D Gaussian bump (paper); sos: a
    # vertical stripe at mu_x plus a horizontal one at mu_y, darkness clipped to 1 (follow-up; the clip
    # is ours); stripe: a bump when both coordinates lie in the frame, a 1D stripe when one does, blank
    # when none does (follow-up's 2D bumps + 1D stripes; "in the frame" = in [offset, offset + size), ours).
    kind: str = "bump"
    sigma_x: float = 0.0  # bump / stripe width along x, pixels (follow-up); 0 = sigma (ours: today's configs)
    sigma_y: float = 0.0  # width along y (follow-up); 0 = sigma
    periodic: bool = False  # distances wrap with period = the canvas side: a torus (follow-up Figs. 2, 3)
    # The latent canvas side, pixels (follow-up: 44 for a 32 frame, 6 px each side); 0 = size (paper).
    # Labels, grids (dx, dy, margin) and holes are in canvas coordinates; the image is the centred
    # size x size frame, offset (canvas - size) / 2.
    canvas: int = 0
    hole_names: tuple[str, ...] = ()  # one name per hole for the eval regions (ours; () = "hole 1", ...)
    # Share of the training grid (after holes) kept, a seeded random subset of round(keep * N) >= 1
    # centres (follow-up Figs. 5, 6: sample efficiency, percolation's lambda). The dropped centres are
    # in-distribution positions never seen in training, not a held-out region (ours).
    keep: float = 1.0
    keep_seed: int = 0  # seed of that subset (ours)


KINDS = ("bump", "sos", "stripe")  # DataConfig.kind


@dataclass(frozen=True)
class ModelConfig:
    size: str = "paper"  # a name in SIZES: paper (~23M params, ours after the public UNet), small CPU sizes
    coord_channels: bool = False  # add 2 input channels holding pixel x and y (ours; off = paper)


# Named sizes: encoder widths of the stem and the three down blocks, the bottleneck width and the
# dimension of each sinusoidal encoding (t, mu_x, mu_y). "paper" follows the public UNet the paper's
# architecture comes from (ours: the paper gives no widths).
SIZES: dict[str, dict] = {
    "paper": dict(widths=(64, 128, 256, 256), bottleneck=512, enc_dim=256),  # ~23M params
    "w32": dict(widths=(32, 64, 128, 128), bottleneck=256, enc_dim=128),  # ~5.8M
    "w16": dict(widths=(16, 32, 64, 64), bottleneck=128, enc_dim=64),  # ~1.5M, the CPU demo size
    "tiny": dict(widths=(8, 16, 32, 32), bottleneck=64, enc_dim=32),  # ~0.4M, for tests
}


PREDICTIONS = ("eps", "x0", "v")
SAMPLERS = ("ddpm", "ddim")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DiffusionConfig:
    T: int = 1000  # diffusion steps (ours: Ho et al.'s default)
    beta_start: float = 1e-4  # linear schedule (ours: Ho et al.)
    beta_end: float = 0.02
    rescale_betas: bool = True  # scale betas by 1000/T so the last step is pure noise for short T (ours)
    prediction: str = "eps"  # what the network predicts: eps (paper) | x0 | v


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 320_000  # total optimisation steps, counted in batches (paper)
    batch_size: int = 16  # ours: 102,400 images at dx = 0.1 / 16 = 6,400 batches per epoch
    lr: float = 3e-4  # AdamW peak learning rate (ours)
    warmup_steps: int = 0  # linear warm-up (ours; 0 = none)
    weight_decay: float = 0.0  # AdamW weight decay (ours)
    ema: float = 0.0  # EMA decay of the weights used for evaluation (ours; 0 = off)
    # Warm the EMA up: decay min(ema, (1 + t) / (10 + t)) at step t (ours, after TensorFlow's
    # ExponentialMovingAverage num_updates rule), so early evals read the trained weights. False
    # here, so a config written before this key resumes as it ran; the presets state it.
    ema_warmup: bool = False
    grad_clip: float = 1.0  # global gradient-norm clip (ours; 0 = off)
    seed: int = 0
    eval_every: int = 6400  # evaluate every this many steps, at step 0 and at the end (paper)
    eval_at: tuple[int, ...] = ()  # extra evaluation steps, e.g. dense early evals (ours)
    checkpoint_every: int = 6400  # checkpoint every this many steps and at the end
    log_every: int = 50  # emit a train event every this many steps
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch (0 = torch's default)
    compile: bool = False  # torch.compile the model (CUDA; pays for long runs)
    # Numerics of the forward passes, training and eval (ours): auto = bf16 autocast on CUDA, fp32 on
    # the CPU; fp32 everywhere; bf16 autocast everywhere — faster training on a CPU with native bf16
    # (AVX512-BF16 / AMX; docs/benchmarks.md), at different rounding than the paper's fp32.
    precision: str = "auto"
    # Seconds without progress (a training step, or a sampler step of an eval) before the worker
    # marks its live run "stalled" (ours; labconsole's worker reads it, train() does not). Progress
    # is marked at every step, so this need only outlast the longest single step: torch.compile's
    # first step on CUDA, the first UMAP fit of a process (~36 s), a paper-size checkpoint.
    stall_after: float = 300.0
