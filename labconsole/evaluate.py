"""One evaluation of a model during training (paper App. A.3, A.6): sample, read, label the phase.

Joins ``model`` (sampling, layer-4 capture) and ``metrics`` (label prediction, accuracy, UMAP R²,
phase). Every eval of a run uses the same labels and the same starting noise (seeded by
``eval.seed``), so the curves compare steps, not draws.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from labconsole import events as ev
from labconsole.config import CAPTURES, RunConfig
from labconsole.samples import Samples
from metrics import accuracy, blob_fractions, label_phase, manifold_r2, predict_centres
from metrics.phase import PhaseRule
from model.data import bump_images, grid_centres
from model.device import autocast
from model.diffusion import Schedule, sample, timesteps
from model.unet import UNet, capture


@dataclass(frozen=True, eq=False)  # eq=False: the samples' arrays have no single truth value
class EvalResult:
    """One evaluation: every number its ``Eval`` event carries, and the samples for its file."""

    step: int
    accuracy: float  # in-distribution samples, both axes within eval.tolerance
    accuracy_x: float
    accuracy_y: float
    ceiling: float  # the detector on ground-truth images of the same labels
    ceiling_x: float
    ceiling_y: float
    r2_x: float  # UMAP-3D of layer 4, linear regression on x / y
    r2_y: float
    r2_mean: float
    r2_pca_mean: float
    r2_shuffled: float
    blobs_0: float
    blobs_1: float
    blobs_many: float
    phase: str
    phase_reason: str
    eval_seconds: float
    n_samples: int  # in-distribution samples
    sampler: str  # e.g. "ddim-25"
    capture_t: int  # the reverse step layer 4 was read at: eval.capture_t snapped to a visited one
    capture: str  # eval.capture
    n_ood: int  # in-hole samples (0 without a hole)
    umap_seed: int
    samples: Samples
    accuracy_ood: float | None = None
    ceiling_ood: float | None = None

    def numbers(self) -> dict[str, Any]:
        """Every field but the samples, by name: the fields of the Eval event (and of bench tables)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "samples"}

    def to_event(self, samples_path: str, segment: int = 0) -> ev.Eval:
        """The Eval event of this result, its samples file at ``samples_path`` (relative to the run dir)."""
        return ev.Eval(**self.numbers(), samples_path=samples_path, segment=segment)


def draw_labels(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The eval's labels: n_samples from the training grid (+ n_ood from the holes), seeded.

    Returns (labels (N, 2) float32, ood (N,) bool).
    """
    rng = np.random.default_rng(cfg.eval.seed)
    train_mu, hole_mu = grid_centres(cfg.data)
    n = cfg.eval.n_samples
    picked = [train_mu[rng.choice(len(train_mu), n, replace=len(train_mu) < n)]]
    if len(hole_mu) and cfg.eval.n_ood > 0:
        k = cfg.eval.n_ood
        picked.append(hole_mu[rng.choice(len(hole_mu), k, replace=len(hole_mu) < k)])
    labels = np.concatenate(picked).astype(np.float32)
    ood = np.zeros(len(labels), dtype=bool)
    ood[n:] = True
    return labels, ood


def ceiling(labels: np.ndarray, sigma: float, size: int, tol: float):
    """The detector's accuracy on ground-truth images of ``labels``: the best an eval can read."""
    truth = bump_images(torch.from_numpy(labels), sigma, size).numpy() * 2 - 1
    return accuracy(predict_centres(truth).centres, labels, tol)


class Evaluator:
    """Callable ``(step, model) -> EvalResult``, built once per run (labels, noise, ceilings).

    Raises:
        ValueError: an unknown ``eval.capture``.
    """

    def __init__(self, cfg: RunConfig, device: torch.device):
        ec = cfg.eval
        if ec.capture not in CAPTURES:
            raise ValueError(f"unknown eval.capture {ec.capture!r}; expected one of: {', '.join(CAPTURES)}")
        self.cfg, self.device = cfg, device
        self.schedule = Schedule.from_config(cfg.diffusion, device)
        self.labels, self.ood = draw_labels(cfg)
        gen = torch.Generator().manual_seed(ec.seed)
        self.noise = torch.randn(len(self.labels), 1, cfg.data.size, cfg.data.size, generator=gen)
        self.ceiling = ceiling(self.labels[~self.ood], cfg.data.sigma, cfg.data.size, ec.tolerance)
        self.ceiling_ood = (
            ceiling(self.labels[self.ood], cfg.data.sigma, cfg.data.size, ec.tolerance) if self.ood.any() else None
        )
        self.rule = PhaseRule(ec.phase_single_min, ec.phase_accuracy_frac, ec.phase_r2_min)
        steps = ec.ddim_steps if ec.sampler == "ddim" else None
        visited = timesteps(self.schedule, ec.sampler, steps)
        self.capture_t = min(visited, key=lambda t: abs(t - ec.capture_t))  # nearest step the sampler visits
        self.sampler_name = f"{ec.sampler}-{len(visited)}"

    def __call__(self, step: int, model: UNet) -> EvalResult:
        """Sample every label with ``model``, read the samples, label the phase."""
        start = time.perf_counter()
        images, features = self._sample(model)
        return self._read(step, images, features, start)

    def _sample(self, model: UNet) -> tuple[np.ndarray, np.ndarray]:
        """Sample every label (one batch) and capture layer 4 at ``capture_t``."""
        ec = self.cfg.eval
        mu = torch.from_numpy(self.labels).to(self.device)
        captured: list[torch.Tensor] = []
        was_training = model.training
        model.eval()
        gen = torch.Generator(device=self.device).manual_seed(ec.seed + 1)
        with capture(model) as seen, autocast(self.cfg.train.precision, self.device):

            def at_capture(t: int, x_t: torch.Tensor) -> None:
                # Called after the sampler's forward at step t, whose layer 4 is in ``seen``.
                if t == self.capture_t:
                    if ec.capture == "no_label":
                        # One extra forward on the same x_t with the label encoding zeroed: what
                        # the image pathway alone carries.
                        seen.clear()
                        model(x_t, torch.full((len(x_t),), t, device=self.device, dtype=torch.long), None)
                    # "block" (the paper's reading) is the sampler's own forward on (x_t, t, mu):
                    # no extra pass (what it cost: docs/benchmarks.md, eval_cost.py).
                    captured.append(torch.cat(seen).float().flatten(1).cpu())
                seen.clear()  # keep one step's activations at most

            x0 = sample(
                model, self.schedule, mu, self.noise.to(self.device),
                prediction=self.cfg.diffusion.prediction, sampler=ec.sampler,
                steps=ec.ddim_steps, generator=gen, callback=at_capture,
            )
        model.train(was_training)
        return x0[:, 0].float().clamp(-1, 1).cpu().numpy(), captured[0].numpy()

    def _read(self, step: int, images: np.ndarray, features: np.ndarray, start: float) -> EvalResult:
        """Label prediction, accuracies against their ceilings, manifold R², phase."""
        ec, ind = self.cfg.eval, ~self.ood
        pred = predict_centres(images)
        acc = accuracy(pred.centres[ind], self.labels[ind], ec.tolerance)
        blobs = blob_fractions(pred.blobs[ind])
        man = manifold_r2(features, self.labels, n_neighbors=ec.umap_neighbors, min_dist=ec.umap_min_dist, seed=ec.seed)
        phase = label_phase(blobs[1], acc.overall, self.ceiling.overall, man.r2_mean, self.rule)
        ood = {}
        if self.ood.any():
            ood_acc = accuracy(pred.centres[self.ood], self.labels[self.ood], ec.tolerance)
            ood = dict(accuracy_ood=ood_acc.overall, ceiling_ood=self.ceiling_ood.overall)
        samples = Samples(images.astype(np.float32), self.labels, pred.centres.astype(np.float32), pred.blobs,
                          man.embedding, self.ood, step)
        return EvalResult(
            step=step, accuracy=acc.overall, accuracy_x=acc.x, accuracy_y=acc.y,
            ceiling=self.ceiling.overall, ceiling_x=self.ceiling.x, ceiling_y=self.ceiling.y,
            r2_x=man.r2_x, r2_y=man.r2_y, r2_mean=man.r2_mean, r2_pca_mean=man.pca_r2_mean,
            r2_shuffled=man.shuffled_r2_mean, blobs_0=blobs[0], blobs_1=blobs[1], blobs_many=blobs[2],
            phase=phase.label, phase_reason=phase.reason, eval_seconds=time.perf_counter() - start,
            n_samples=int(ind.sum()), sampler=self.sampler_name, capture_t=self.capture_t, capture=ec.capture,
            n_ood=int(self.ood.sum()), umap_seed=ec.seed, samples=samples, **ood,
        )
