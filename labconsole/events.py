"""One event schema for ``events.jsonl``, the live socket, batch output and the console (DESIGN §3).

Every event is a small frozen dataclass. On the wire it is one JSON object per line:
``{"v": SCHEMA_VERSION, "type": "<kind>", "time": <unix s>, "segment": <n>, ...fields}``.
Reading the file is ``labconsole.eventlog``'s job; its readers skip a truncated last line.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Event:
    """Base of all events: when it happened and which segment (resume count) of the run."""

    kind: ClassVar[str] = ""
    time: float = field(default_factory=time.time, kw_only=True)
    segment: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    preset: str
    config: dict[str, Any]  # the resolved config, as in config.toml
    device: str
    n_params: int
    start_step: int = 0  # > 0 when this segment resumes from a checkpoint
    pid: int = 0


@dataclass(frozen=True)
class Train(Event):
    kind: ClassVar[str] = "train"
    step: int
    loss: float
    lr: float
    images_per_s: float


@dataclass(frozen=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    step: int
    accuracy: float  # both axes within tolerance (paper Eq. 1)
    accuracy_x: float
    accuracy_y: float
    ceiling: float  # the detector's accuracy on ground-truth images of the same labels
    ceiling_x: float
    ceiling_y: float
    # R²: linear regression of x / y on the UMAP-3D embedding of layer 4, fitted on in-distribution
    # rows, one per distinct label (before issue 12: on every row, in-hole ones included).
    r2_x: float
    r2_y: float
    r2_mean: float  # with several UMAP fits (umap_fits), the median
    r2_pca_mean: float  # the same on PCA-3D, a cheap cross-check
    r2_shuffled: float  # R² against permuted labels: the chance level
    # Failure modes (paper Sec. 3) of the in-distribution samples, fractions: no bump (i), one bump,
    # several bumps (iii); a blob must clear eval.min_depth / eval.min_snr (docs/failure-modes.md).
    # Before issue 12: the raw Otsu contour counts (0 / 1 / 2+), with no contrast floor.
    blobs_0: float
    blobs_1: float
    blobs_many: float
    phase: str  # "A" | "B" | "C"
    phase_reason: str
    eval_seconds: float
    n_samples: int
    sampler: str  # e.g. "ddim-25" or "ddpm-1000": always labelled
    accuracy_ood: float | None = None  # in-hole accuracy, when the dataset has a hole
    ceiling_ood: float | None = None
    samples_path: str = ""  # relative to the run dir
    # How layer 4 was read and the manifold drawn; the defaults mean "not recorded" (older files).
    capture_t: int | None = None  # reverse step actually read: eval.capture_t snapped to one the sampler visits
    capture: str = ""  # "block" | "no_label" (eval.capture)
    n_ood: int | None = None  # in-hole samples, beside the n_samples in-distribution ones
    umap_seed: int | None = None  # the seed of the UMAP fit behind r2_*
    # Beside the ID figures (None in files written before issue 12; the *_ood and r2_all ones also
    # without in-hole samples). docs/science.md, "Evaluation", defines them.
    r2_mean_min: float | None = None  # the range of r2_mean over the UMAP fits (seeds umap_seed, +1, ...)
    r2_mean_max: float | None = None
    umap_fits: int | None = None  # eval.umap_seeds
    blobs_0_ood: float | None = None  # failure modes of the in-hole samples, as blobs_0 / 1 / many
    blobs_1_ood: float | None = None
    blobs_many_ood: float | None = None
    r2_ood: float | None = None  # the ID rows' linear read-out of a UMAP fit on all rows, scored on in-hole rows
    r2_all: float | None = None  # R² of that fit on all rows, ID and in-hole (the pre-issue-12 reading)
    # Issue 16 (None in older files; regions also without in-hole samples). Per held-out region
    # (model.data.held_out_regions, in its order): name -> {"accuracy", "accuracy_x", "accuracy_y":
    # fractions, None when no label fell in it; "n": its in-hole labels}.
    regions: dict[str, dict[str, float | None]] | None = None
    # Layer 4's PCA spectrum (metrics.pca_spectrum) on the ID rows UMAP reads, one per distinct label:
    pca_top4: float | None = None  # variance share of the top 4 PCs
    pca_pr: float | None = None  # participation ratio (ours: the effective dimension)
    pca_n90: int | None = None  # the fewest PCs holding 90 % of the variance
    pca_ratios: list[float] | None = None  # the top-15 explained-variance ratios, largest first
    # ... and its ring-plane overlaps (metrics.RingOverlaps; None where too few rings, or in older files):
    pca_overlap_xy: float | None = None  # x-ring planes against y-ring planes: 0 = orthogonal
    pca_overlap_xx: float | None = None  # x-ring planes against each other: 1 = parallel
    pca_overlap_yy: float | None = None  # y-ring planes against each other: 1 = parallel
    # Which reader read the samples (labconsole.readout.READERS: "bump" | "periodic" | "axes"); "" in
    # older files (bumps). It names what the failure modes count: ``mark_noun``.
    reader: str = ""


@dataclass(frozen=True)
class PhaseChange(Event):
    kind: ClassVar[str] = "phase_change"
    step: int
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str  # relative to the run dir


@dataclass(frozen=True)
class Log(Event):
    kind: ClassVar[str] = "log"
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class Activity(Event):
    """What the worker's loop is doing, and whether it moves (the worker's heartbeat thread judges).

    Emitted when the loop starts or ends an evaluation; when it has made no progress (no training
    step, no sampler step of an eval) for ``train.stall_after`` seconds (``stalled``, with how long
    in ``idle_s``); when it moves again; and, while it moves without other events (a long eval),
    once per ``train.stall_after`` — so a worker whose process lives is never silent much longer.
    """

    kind: ClassVar[str] = "activity"
    step: int  # the latest step the run reported
    what: str  # "starting" (the worker, before train()) | "training" | "evaluating"
    stalled: bool = False
    idle_s: float = 0.0  # seconds since the loop's last progress mark


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # "completed" | "stopped" | "failed"
    step: int
    error: str = ""


def mark_noun(reader: str) -> str:
    """What the failure modes of a reader's samples count, as the phase reason and the console word
    it: "mark" for the axes reader (stripes and sums of stripes, read per axis), "bump" for the bump
    readers and for evals written before ``Eval.reader`` ("")."""
    return "mark" if reader == "axes" else "bump"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (RunStarted, Train, Eval, PhaseChange, Checkpoint, Log, Activity, RunFinished)
}


def _finite_or_none(value: Any) -> Any:
    # Standard JSON has no NaN: an undefined number (e.g. R² of a constant axis) travels as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def encode(event: Event) -> str:
    """Serialise an event to one JSON line (without the trailing newline); NaN becomes null."""
    body = _finite_or_none(dataclasses.asdict(event))
    return json.dumps({"v": SCHEMA_VERSION, "type": event.kind, **body}, separators=(",", ":"), allow_nan=False)


def decode(line: str | bytes) -> Event:
    """Parse one JSON line into its event dataclass.

    Raises:
        ValueError: the line is not JSON, has no known ``type``, a newer schema version, or
            fields that do not match the type.
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON event line: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON event object")
    version, kind = obj.pop("v", None), obj.pop("type", None)
    if version != SCHEMA_VERSION:
        raise ValueError(f"event schema version {version!r}; this labconsole reads {SCHEMA_VERSION}")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}; expected one of: {', '.join(EVENT_TYPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # null in a plain float field is a number that was undefined (NaN) when it was written.
    values = {k: (math.nan if v is None and fields[k].type == "float" else v) for k, v in obj.items() if k in fields}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad {kind} event: {exc}") from None
