"""Phase labelling of one evaluation (ours: the paper names the phases but gives no rule).

Phases (paper, Sec. 3): A = no structure / several bumps; B = one bump, wrong place,
disordered manifold; C = right place, ordered 2-D manifold. Rule (DESIGN §5), boundaries
inclusive as written:
    A  if single < single_min
    C  if accuracy >= accuracy_frac * ceiling and r2_mean >= r2_min
    B  otherwise
`ceiling` is the detector's accuracy on ground-truth images of the same labels, so the rule
reads accuracy relative to what the detector can score at all. Read r2_mean beside its step-0
baseline: an untrained model's layer 4 already carries the label embedding.

NaN inputs (e.g. an R² that was not computed): a NaN never supports a later phase. A NaN
`single` gives A; otherwise a NaN accuracy, ceiling or r2_mean rules C out and gives B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Phase", "PhaseRule", "label_phase"]


@dataclass(frozen=True)
class PhaseRule:
    """Thresholds of the phase rule (ours); they live in the eval config.

    single_min:    fraction of single-blob samples below which the phase is A.
    accuracy_frac: fraction of the detector's ceiling that accuracy must reach for C.
    r2_min:        mean UMAP R² (x, y) that must be reached for C.
    """

    single_min: float = 0.5
    accuracy_frac: float = 0.8
    r2_min: float = 0.8

    def __post_init__(self) -> None:
        for name in ("single_min", "accuracy_frac"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # also rejects NaN
                raise ValueError(f"PhaseRule.{name} must be in [0, 1]; got {value!r}")
        if not -math.inf < self.r2_min <= 1.0:
            raise ValueError(f"PhaseRule.r2_min must be a finite number <= 1; got {self.r2_min!r}")


@dataclass(frozen=True)
class Phase:
    """A phase label ("A", "B" or "C") and a one-line reason quoting the numbers behind it."""

    label: str
    reason: str


def label_phase(
    single: float,
    accuracy: float,
    ceiling: float,
    r2_mean: float,
    rule: PhaseRule = PhaseRule(),
) -> Phase:
    """Label one evaluation A, B or C (ours; DESIGN §5; paper Sec. 3 names the phases).

    Args:
        single: fraction of samples with exactly one blob (`blob_fractions(...).one`).
        accuracy: overall accuracy of the samples (`accuracy(...).overall`).
        ceiling: the same detector's accuracy on ground-truth images of the same labels.
        r2_mean: mean of the UMAP R² for x and y (`manifold_r2(...).r2_mean`).
        rule: the thresholds.

    Returns:
        Phase(label, reason), e.g. "B: 94% single bumps, accuracy 0.31 of ceiling 0.77, R² 0.62".
        NaN inputs never raise; see the module docstring for how they are read.
    """
    numbers = (
        f"{_percent(single)} single bumps, accuracy {_fixed(accuracy)} "
        f"of ceiling {_fixed(ceiling)}, R² {_fixed(r2_mean)}"
    )
    label = _label(float(single), float(accuracy), float(ceiling), float(r2_mean), rule)
    return Phase(label=label, reason=f"{label}: {numbers}")


def _label(single: float, accuracy: float, ceiling: float, r2_mean: float, rule: PhaseRule) -> str:
    """The rule itself; NaN comparisons are spelled out so that NaN never promotes a phase."""
    if math.isnan(single) or single < rule.single_min:
        return "A"
    if any(math.isnan(v) for v in (accuracy, ceiling, r2_mean)):
        return "B"
    if accuracy >= rule.accuracy_frac * ceiling and r2_mean >= rule.r2_min:
        return "C"
    return "B"


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def _fixed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
