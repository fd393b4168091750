"""One evaluation of a model during training (paper App. A.3, A.6): sample, read, label the phase.

Joins ``model`` (sampling, layer-4 capture) and ``metrics`` (label prediction, failure modes,
accuracy, UMAP R², phase). Every eval of a run uses the same labels and the same starting noise
(seeded by ``eval.seed``), so the curves compare steps, not draws.

In-distribution (ID) and in-hole (OOD) samples are read apart (docs/science.md, "Evaluation"):
accuracy, failure modes and R² of the ID samples feed the phase; the OOD figures are reported
beside them. R²: UMAP is fitted on ID rows alone (the phase's R², the event's ``r2_*``); in a hole
run a second fit on ID + OOD rows gives ``r2_all`` (its R², as every row was read before) and
``r2_ood`` (the linear read-out fitted on that fit's ID rows, scored on its OOD rows), and its
embedding is the one the samples file keeps, so the console can show where the hole lands.
UMAP reads one sample per distinct label (``draw_labels``).

Reading by data kind (issue 16): ``labconsole.readout`` reads bumps, sums of stripes and stripes, on
a torus or through a frame of a larger canvas, and scores them; its ceiling reads ground-truth
images of the same labels (``model.render``). The in-hole labels are also scored per held-out
region (``held_out_regions``: e.g. a cross's two arms and their intersection), and layer 4's PCA
spectrum (``metrics.pca_spectrum``: top-4 share, participation ratio, n90, and the x-ring / y-ring
plane overlaps) is read on the same ID rows as UMAP.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from labconsole import events as ev
from labconsole.config import CAPTURES, RunConfig
from labconsole.readout import Reading, Readout
from labconsole.samples import Samples
from metrics import MIN_SAMPLES, RingOverlaps, failure_modes, label_eval, manifold_r2, pc_scores, pca_spectrum
from metrics.phase import PhaseRule
from model.data import frame_offset, grid_centres, held_out_regions, hole_membership
from model.device import autocast
from model.diffusion import Schedule, sample, timesteps
from model.unet import UNet, capture

# Layer 4's top PCs kept in the samples file (``pcs``): the report's persistence diagram reads them.
# Ten hold the 4D Clifford torus with room for a coupled one's bends; 4 kB an eval at N = 100.
PCS_KEPT = 10


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
    r2_x: float  # UMAP-3D of layer 4 (ID rows, one per label), linear regression on x / y
    r2_y: float
    r2_mean: float  # the median over the eval.umap_seeds fits
    r2_pca_mean: float
    r2_shuffled: float
    blobs_0: float  # failure modes of the ID samples: no bump (i)
    blobs_1: float  # ... one bump
    blobs_many: float  # ... several bumps (iii)
    phase: str
    phase_reason: str
    eval_seconds: float
    n_samples: int  # in-distribution samples
    sampler: str  # e.g. "ddim-25"
    capture_t: int  # the reverse step layer 4 was read at: eval.capture_t snapped to a visited one
    capture: str  # eval.capture
    n_ood: int  # in-hole samples (0 without a hole)
    umap_seed: int
    r2_mean_min: float  # the range of r2_mean over the UMAP fits
    r2_mean_max: float
    umap_fits: int  # eval.umap_seeds
    samples: Samples
    accuracy_ood: float | None = None  # None without in-hole samples, like every *_ood / r2_all
    ceiling_ood: float | None = None
    blobs_0_ood: float | None = None
    blobs_1_ood: float | None = None
    blobs_many_ood: float | None = None
    r2_ood: float | None = None
    r2_all: float | None = None
    # Per held-out region (model.data.held_out_regions; None without in-hole samples): its name ->
    # accuracy, accuracy_x, accuracy_y (None when no label fell in it) and n.
    regions: dict[str, dict[str, float | None]] | None = None
    pca_top4: float | None = None  # layer 4's PCA spectrum (ID rows, one per label): top-4 variance share
    pca_pr: float | None = None  # participation ratio (ours: the effective dimension)
    pca_n90: int | None = None  # the fewest PCs holding 90 % of the variance
    pca_ratios: list[float] | None = None  # the top-15 explained-variance ratios
    pca_overlap_xy: float | None = None  # ring-plane overlaps (metrics.RingOverlaps): x-rings vs y-rings,
    pca_overlap_xx: float | None = None  # x-rings vs x-rings, y-rings vs y-rings; None where too few rings
    pca_overlap_yy: float | None = None
    reader: str = ""  # labconsole.readout.READERS: which reader read the samples

    def numbers(self) -> dict[str, Any]:
        """Every field but the samples, by name: the fields of the Eval event (and of bench tables)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "samples"}

    def to_event(self, samples_path: str, segment: int = 0) -> ev.Eval:
        """The Eval event of this result, its samples file at ``samples_path`` (relative to the run dir)."""
        return ev.Eval(**self.numbers(), samples_path=samples_path, segment=segment)


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class LabelPlan:
    """The labels every eval of a run samples, and what drawing them had to give way on.

    labels: (N, 2) float32: eval.n_samples centres of the training grid, then eval.n_ood of the holes.
    ood:    (N,) bool: the in-hole rows.
    notes:  one line for each group whose grid holds fewer centres than labels asked, and one if
            UMAP has too few distinct ID labels; the worker logs them as warnings.
    """

    labels: np.ndarray
    ood: np.ndarray
    notes: tuple[str, ...] = ()


def draw_labels(cfg: RunConfig) -> LabelPlan:
    """The eval's labels: n_samples centres of the training grid (+ n_ood of the holes), seeded.

    Without replacement while a grid holds at least as many centres as labels asked (the same draw
    as before this rule, so older runs keep their labels). A coarser grid gives every centre
    n // m times and n % m of them once more: as even as possible, none more than ceil(n / m) times,
    labels still on the grid; and said in ``notes``.
    """
    rng = np.random.default_rng(cfg.eval.seed)
    train_mu, hole_mu = grid_centres(cfg.data)
    groups = [("the training grid has", "eval.n_samples", train_mu, cfg.eval.n_samples)]
    if len(hole_mu) and cfg.eval.n_ood > 0:
        where = "the hole has" if len(cfg.data.holes) == 1 else "the holes have"
        groups.append((where, "eval.n_ood", hole_mu, cfg.eval.n_ood))
    picked, notes = [], []
    for where, key, centres, n in groups:
        picked.append(centres[spread_draw(rng, len(centres), n)])
        if len(centres) < n:
            notes.append(f"eval labels: {where} {len(centres)} centres for {key} = {n}: each is used at most "
                         f"{_times(-(-n // len(centres)))}; UMAP reads one sample per centre")
    if min(len(train_mu), cfg.eval.n_samples) < MIN_SAMPLES:
        notes.append(f"eval labels: {min(len(train_mu), cfg.eval.n_samples)} distinct training centres, UMAP needs "
                     f"{MIN_SAMPLES}: R² is not computed (NaN)")
    labels = np.concatenate(picked).astype(np.float32)
    ood = np.zeros(len(labels), dtype=bool)
    ood[cfg.eval.n_samples:] = True
    return LabelPlan(labels, ood, tuple(notes))


def spread_draw(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """(n,) indices into m items: without replacement while n <= m, else each item n // m or
    n // m + 1 times; the first min(n, m) indices are distinct."""
    full, rest = divmod(n, m)
    # With full == 0 this is rng.choice(m, n, replace=False): the draw of runs made before this rule.
    rounds = [rng.permutation(m) for _ in range(full)] + [rng.choice(m, rest, replace=False)]
    return np.concatenate(rounds)


def _times(k: int) -> str:
    return {1: "once", 2: "twice"}.get(k, f"{k} times")


def umap_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, representative): the first row of each distinct label, ascending, and for every row
    the index of its label's first row. UMAP reads ``rows`` only: repeated labels give
    (near-)identical layer-4 rows, which break its kNN graph into cliques (metrics.manifold)."""
    _, first, inverse = np.unique(labels, axis=0, return_index=True, return_inverse=True)
    return np.sort(first), first[inverse.reshape(-1)]


def ood_regions(cfg: RunConfig, labels: np.ndarray, ood: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(name, row indices) of each held-out region (``held_out_regions``, in its order) for the
    in-hole rows of ``labels``: a label belongs to the region of exactly the holes that hold it."""
    if not ood.any():
        return []
    holes, rows = cfg.data.holes, np.flatnonzero(ood)
    member = hole_membership(labels[rows], holes)  # (M, H)
    regions = []
    for name, centres in held_out_regions(cfg.data):
        pattern = hole_membership(centres[:1], holes)[0]  # (H,): the holes this region lies in
        regions.append((name, rows[(member == pattern).all(axis=1)]))
    return regions


def region_index(n: int, regions: list[tuple[str, np.ndarray]]) -> np.ndarray | None:
    """(n,) int16: each sample's region, an index into ``regions`` (-1 for none); None without
    regions. The samples file keeps it (``Samples.region``) for the report's per-region figure."""
    if not regions:
        return None
    index = np.full(n, -1, dtype=np.int16)
    for i, (_, rows) in enumerate(regions):
        index[rows] = i
    return index


def region_numbers(acc, ceiling=None) -> dict[str, float | None]:
    """One region's entry of ``EvalResult.regions``: accuracy (overall, x, y; None for no label), n,
    and its ceiling: the reader's accuracy on ground-truth images of the region's labels (None for no
    label). A region at the frame's edge holds labels the reader cannot place (a bump cut by the
    border): its ceiling, not 1, is what its accuracy is read against."""
    value = (lambda v: None if v is None or math.isnan(v) else float(v))
    return dict(accuracy=value(acc.overall), accuracy_x=value(acc.x), accuracy_y=value(acc.y), n=acc.n,
                ceiling=value(ceiling.overall) if ceiling is not None else None)


def ring_overlaps(rings: RingOverlaps | None) -> dict[str, float | None]:
    """The ``pca_overlap_*`` fields of a spectrum's ring overlaps: None for an overlap without
    enough rings (NaN in ``RingOverlaps``), and for all three without rings."""
    names = ("pca_overlap_xy", "pca_overlap_xx", "pca_overlap_yy")
    if rings is None:
        return dict.fromkeys(names)
    values = (rings.overlap_xy, rings.overlap_xx, rings.overlap_yy)
    return {name: None if math.isnan(v) else float(v) for name, v in zip(names, values)}


def transfer_r2(embedding: np.ndarray, labels: np.ndarray, held_out: np.ndarray) -> float:
    """Mean over x and y of the R² on the ``held_out`` rows of least-squares fits (with intercept)
    of the labels on ``embedding``, made on the other rows: sklearn's ``LinearRegression().fit(
    X[~held_out], y[~held_out]).score(X[held_out], y[held_out])``. NaN if a held-out axis is constant."""
    design = np.column_stack([embedding, np.ones(len(embedding))]).astype(np.float64)  # (N, 4)
    target = labels.astype(np.float64)  # (N, 2): both axes in one solve
    coef = np.linalg.lstsq(design[~held_out], target[~held_out], rcond=None)[0]  # (4, 2)
    truth = target[held_out]
    residual = ((truth - design[held_out] @ coef) ** 2).sum(axis=0)
    total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1 - residual / total)) if (total > 0).all() else math.nan


# --------------------------------------------------------------------------- the evaluator


class Evaluator:
    """Callable ``(step, model) -> EvalResult``, built once per run (labels, noise, ceilings).
    ``on_progress`` is called after every sampler step (the worker's progress mark); ``notes``
    holds the label plan's warnings (``draw_labels``).

    Raises:
        ValueError: an unknown ``eval.capture``.
    """

    def __init__(self, cfg: RunConfig, device: torch.device, on_progress: Callable[[], None] | None = None):
        ec = cfg.eval
        if ec.capture not in CAPTURES:
            raise ValueError(f"unknown eval.capture {ec.capture!r}; expected one of: {', '.join(CAPTURES)}")
        self.cfg, self.device = cfg, device
        self.on_progress = on_progress or (lambda: None)
        self.schedule = Schedule.from_config(cfg.diffusion, device)
        plan = draw_labels(cfg)
        self.labels, self.ood, self.notes = plan.labels, plan.ood, plan.notes
        self.umap_rows, self.representative = umap_rows(self.labels)
        gen = torch.Generator().manual_seed(ec.seed)
        self.noise = torch.randn(len(self.labels), 1, cfg.data.size, cfg.data.size, generator=gen)
        self.floor = dict(min_depth=ec.min_depth, min_snr=ec.min_snr)
        self.readout = Readout(cfg.data, ec.tolerance, **self.floor)  # the reader of this data kind
        self.ceiling = self.readout.ceiling(self.labels[~self.ood])
        self.ceiling_ood = self.readout.ceiling(self.labels[self.ood]) if self.ood.any() else None
        self.regions = ood_regions(cfg, self.labels, self.ood)
        self.region_ceilings = {name: self.readout.ceiling(self.labels[rows]) for name, rows in self.regions
                                if len(rows)}
        self.region_index = region_index(len(self.labels), self.regions)
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
                self.on_progress()
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
        """Reading (by data kind), failure modes, accuracies against their ceilings, per held-out
        region, manifold R², PCA spectrum, phase."""
        ec, ind = self.cfg.eval, ~self.ood
        reading = self.readout.read(images, self.labels)
        acc = self.readout.score(reading.take(ind), self.labels[ind])
        modes = failure_modes(reading.marks[ind])
        pca_rows = self._pca_rows(features)  # checked once: the spectrum and the PC scores read the same rows
        r2, embedding = self._manifold(features)
        phase = label_eval(modes, acc, self.ceiling, r2["r2_mean"], self.rule, mark=ev.mark_noun(self.readout.kind))
        samples = Samples(images.astype(np.float32), self.labels, reading.positions.astype(np.float32),
                          reading.marks, embedding, self.ood, step, offset=frame_offset(self.cfg.data),
                          pcs=self._pcs(features, pca_rows), region=self.region_index)
        return EvalResult(
            step=step, accuracy=acc.overall, accuracy_x=acc.x, accuracy_y=acc.y,
            ceiling=self.ceiling.overall, ceiling_x=self.ceiling.x, ceiling_y=self.ceiling.y,
            blobs_0=modes.none, blobs_1=modes.one, blobs_many=modes.several,
            phase=phase.label, phase_reason=phase.reason, eval_seconds=time.perf_counter() - start,
            n_samples=int(ind.sum()), sampler=self.sampler_name, capture_t=self.capture_t, capture=ec.capture,
            n_ood=int(self.ood.sum()), umap_seed=ec.seed, umap_fits=ec.umap_seeds, samples=samples,
            reader=self.readout.kind,
            **r2, **self._ood_numbers(reading), **self._pca(features, pca_rows),
        )

    def _ood_numbers(self, reading: Reading) -> dict[str, Any]:
        """Accuracy (and its ceiling), failure modes and per-region accuracy of the in-hole
        samples; {} without any."""
        if not self.ood.any():
            return {}
        acc = self.readout.score(reading.take(self.ood), self.labels[self.ood])
        modes = failure_modes(reading.marks[self.ood])
        regions = {name: region_numbers(self.readout.score(reading.take(rows), self.labels[rows]),
                                        self.region_ceilings.get(name))
                   for name, rows in self.regions}
        return dict(accuracy_ood=acc.overall, ceiling_ood=self.ceiling_ood.overall,
                    blobs_0_ood=modes.none, blobs_1_ood=modes.one, blobs_many_ood=modes.several, regions=regions)

    def _pca_rows(self, features: np.ndarray) -> np.ndarray | None:
        """The ID rows UMAP reads (one per distinct label), where a PCA of their features exists:
        None for fewer than 2, non-finite or constant features (a diverged model)."""
        rows = self.umap_rows[~self.ood[self.umap_rows]]
        x = features[rows]
        if len(rows) < 2 or not np.isfinite(x).all() or np.ptp(x, axis=0).max() == 0:
            return None
        return rows

    def _pcs(self, features: np.ndarray, rows: np.ndarray | None) -> np.ndarray | None:
        """(N, k) top-PC scores of layer 4 on the PCA rows (NaN elsewhere), for the samples file."""
        if rows is None:
            return None
        with threadpool_limits(1, user_api="blas"):
            scores = pc_scores(features[rows], PCS_KEPT)
        out = np.full((len(features), scores.shape[1]), np.nan, dtype=np.float32)
        out[rows] = scores
        return out

    def _pca(self, features: np.ndarray, rows: np.ndarray | None) -> dict[str, Any]:
        """The PCA spectrum of layer 4 on the ID rows UMAP reads (one per distinct label): top-4
        share, participation ratio, n90 and the top-15 ratios (metrics.spectrum); {} when those rows
        cannot have one (fewer than 2, non-finite or constant features: a diverged model)."""
        if rows is None:
            return {}
        x = features[rows]
        # One BLAS thread: beside training, numpy's threads wait on each other (metrics.spectrum: 10x).
        with threadpool_limits(1, user_api="blas"):
            spec = pca_spectrum(x, self.labels[rows])
        return dict(pca_top4=spec.top4_share, pca_pr=spec.participation_ratio, pca_n90=spec.n_components,
                    pca_ratios=list(spec.explained_variance_ratio), **ring_overlaps(spec.rings))

    def _manifold(self, features: np.ndarray) -> tuple[dict[str, float], np.ndarray | None]:
        """The R² fields (ID; r2_all and r2_ood beside them in a hole run) and the (N, 3)
        embedding the samples file keeps, one row per sample (a repeated label shares its
        first sample's point); NaN R² and no embedding with too few distinct ID labels."""
        ec = self.cfg.eval
        fit = dict(n_neighbors=ec.umap_neighbors, min_dist=ec.umap_min_dist, seed=ec.seed, n_seeds=ec.umap_seeds)
        rows = self.umap_rows
        ind_rows = rows[~self.ood[rows]]
        if len(ind_rows) < MIN_SAMPLES:
            nan = math.nan
            return dict(r2_x=nan, r2_y=nan, r2_mean=nan, r2_pca_mean=nan, r2_shuffled=nan,
                        r2_mean_min=nan, r2_mean_max=nan), None
        man = manifold_r2(features[ind_rows], self.labels[ind_rows], **fit)
        numbers = dict(r2_x=man.r2_x, r2_y=man.r2_y, r2_mean=man.r2_mean, r2_pca_mean=man.pca_r2_mean,
                       r2_shuffled=man.shuffled_r2_mean, r2_mean_min=man.r2_mean_min, r2_mean_max=man.r2_mean_max)
        shown, shown_rows = man.embedding, ind_rows
        if len(rows) > len(ind_rows):  # in-hole rows: one more fit, on every distinct label
            joint = manifold_r2(features[rows], self.labels[rows], **fit)
            numbers.update(r2_all=joint.r2_mean,
                           r2_ood=transfer_r2(joint.embedding, self.labels[rows], self.ood[rows]))
            shown, shown_rows = joint.embedding, rows
        return numbers, shown[np.searchsorted(shown_rows, self.representative)]
