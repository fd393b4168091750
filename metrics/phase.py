"""Phase labelling of one evaluation (ours: the paper names the phases but gives no rule).

Phases (paper, Sec. 3): A = no structure / several bumps; B = one bump, wrong place,
disordered manifold; C = right place, ordered 2-D manifold. The paper defines them by its failure
modes (i) no bump, (ii) one bump in the wrong place, (iii) several bumps; the rule is ours
(DESIGN §5), boundaries inclusive as written:
    A  if single < single_min             (failure modes (i) + (iii) dominate)
    C  if ceiling > 0 and accuracy >= accuracy_frac x ceiling and r2_mean >= r2_min
    B  otherwise
`single` is the fraction of samples with exactly one blob (metrics.accuracy.failure_modes),
`ceiling` the detector's accuracy on ground-truth images of the same labels, so the rule reads
accuracy relative to what the detector can score at all; a ceiling of 0 shows nothing, so it
never gives C. Read r2_mean beside its step-0 baseline: an untrained model's layer 4 already
carries the label embedding.

Exact comparisons (`phase_from_counts`, `label_eval`): single and accuracy are ratios of counts
and the thresholds are read as the decimals they print as (0.8 -> 4/5), so the comparisons are
done in integers: with N = 500 and a ceiling of 440/500, accuracy 352/500 is exactly 0.8 x the
ceiling and gives C (as floats, 0.8 * 0.88 = 0.7040000000000001 > 0.704 gave B). R² is a float
and is compared as one. `label_phase` (fractions, for old callers) compares with an explicit
tolerance instead, ABS_TOL.

Wording: the reason names what a sample's failure mode counts, ``mark`` ("bump" by default, as
the paper; a caller whose reader counts something else passes its noun, e.g. "mark" for stripes
read per axis): "97% single bumps (2% none, 1% several)". The rule is the same for every noun.

NaN inputs (e.g. an R² that was not computed): a NaN never supports a later phase. No samples or
a NaN `single` gives A; otherwise a NaN accuracy, ceiling or r2_mean rules C out and gives B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from metrics.accuracy import Accuracy, FailureModes

__all__ = ["ABS_TOL", "Phase", "PhaseRule", "label_eval", "label_phase", "phase_from_counts"]

# label_phase's tolerance on fractions: float rounding of count ratios is ~1e-16, while two
# different ratios of counts out of the same N <= 10^6 differ by >= 1e-6 / 5, so 1e-9 absorbs the
# first and never admits a sample short of the boundary.
ABS_TOL = 1e-9


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


def label_eval(
    modes: FailureModes, acc: Accuracy, ceiling: Accuracy, r2_mean: float, rule: PhaseRule = PhaseRule(),
    *, mark: str = "bump",
) -> Phase:
    """Label one evaluation from its results (ours; DESIGN §5): `phase_from_counts` on their counts.

    Args:
        modes: `failure_modes(pred.blobs)` of the in-distribution samples.
        acc: `accuracy(...)` of the same samples.
        ceiling: `accuracy(...)` of the detector on ground-truth images of the same labels.
        r2_mean: `manifold_r2(...).r2_mean`.
        rule: the thresholds.
        mark: what a failure mode counts, as the reason names it (module docstring, "Wording").

    Returns:
        Phase(label, reason); see `phase_from_counts`.
    """
    return phase_from_counts(modes, acc.correct, acc.n, ceiling.correct, ceiling.n, r2_mean, rule, mark=mark)


def phase_from_counts(
    modes: FailureModes,
    correct: int,
    n: int,
    ceiling_correct: int,
    n_ceiling: int,
    r2_mean: float,
    rule: PhaseRule = PhaseRule(),
    *,
    mark: str = "bump",
) -> Phase:
    """Label one evaluation A, B or C, comparing counts exactly (ours; DESIGN §5; paper Sec. 3).

    Args:
        modes: counts of samples with no / one / several blobs.
        correct, n: correct samples out of n (the accuracy).
        ceiling_correct, n_ceiling: the same detector's correct ground-truth images out of n_ceiling.
        r2_mean: mean of the UMAP R² for x and y; NaN if not computed.
        rule: the thresholds, each read as the decimal it prints as (0.8 -> 4/5).
        mark: what a failure mode counts, as the reason names it (module docstring, "Wording").

    Returns:
        Phase(label, reason), e.g. "C: 97% single bumps (2% none, 1% several), accuracy 352/500 =
        0.70 >= 0.8 x ceiling 0.88, R² 0.86 >= 0.8". NaN r2_mean never raises (it gives B at best).

    Raises:
        ValueError: if a count is negative or not an integer, or correct > n, or
            ceiling_correct > n_ceiling.
    """
    _check_counts(correct=(correct, n), ceiling_correct=(ceiling_correct, n_ceiling))
    single_min, frac = _exact(rule.single_min), _exact(rule.accuracy_frac)
    singles = _singles(modes, single_min, mark)
    if modes.n == 0 or Fraction(modes.n_one, modes.n) < single_min:
        return Phase("A", f"A: {singles}, {_accuracy_text(correct, n)}, ceiling "
                          f"{_ratio(ceiling_correct, n_ceiling)}, R² {_fixed(r2_mean)}")
    acc_ok, acc_text = _accuracy_vs_ceiling(correct, n, ceiling_correct, n_ceiling, frac)
    r2_ok = r2_mean >= rule.r2_min  # False for NaN
    r2_text = f"R² {_fixed(r2_mean)} {'>=' if r2_ok else '<'} {rule.r2_min:g}"
    label = "C" if acc_ok and r2_ok else "B"
    return Phase(label, f"{label}: {singles}, {acc_text}, {r2_text}")


def label_phase(
    single: float,
    accuracy: float,
    ceiling: float,
    r2_mean: float,
    rule: PhaseRule = PhaseRule(),
    *,
    mark: str = "bump",
) -> Phase:
    """Label one evaluation from fractions (for callers without counts; prefer `label_eval`).

    The same rule as `phase_from_counts`, on floats compared with a tolerance: A if
    single < single_min - ABS_TOL; C needs ceiling > 0 and accuracy >= accuracy_frac x ceiling - ABS_TOL.

    Args:
        single: fraction of samples with exactly one blob (`failure_modes(...).one`).
        accuracy: overall accuracy of the samples (`accuracy(...).overall`).
        ceiling: the same detector's accuracy on ground-truth images of the same labels.
        r2_mean: mean of the UMAP R² for x and y (`manifold_r2(...).r2_mean`).
        rule: the thresholds.
        mark: what a failure mode counts, as the reason names it (module docstring, "Wording").

    Returns:
        Phase(label, reason), e.g. "B: 94% single bumps, accuracy 0.31 of ceiling 0.77, R² 0.62".
        NaN inputs never raise; see the module docstring for how they are read.
    """
    numbers = (
        f"{_percent(single)} single {mark}s, accuracy {_fixed(accuracy)} "
        f"of ceiling {_fixed(ceiling)}, R² {_fixed(r2_mean)}"
    )
    label = _label(float(single), float(accuracy), float(ceiling), float(r2_mean), rule)
    return Phase(label=label, reason=f"{label}: {numbers}")


def _label(single: float, accuracy: float, ceiling: float, r2_mean: float, rule: PhaseRule) -> str:
    """The float rule; NaN comparisons are spelled out so that NaN never promotes a phase."""
    if math.isnan(single) or single < rule.single_min - ABS_TOL:
        return "A"
    if any(math.isnan(v) for v in (accuracy, ceiling, r2_mean)):
        return "B"
    if ceiling > 0 and accuracy >= rule.accuracy_frac * ceiling - ABS_TOL and r2_mean >= rule.r2_min:
        return "C"
    return "B"


def _accuracy_vs_ceiling(correct: int, n: int, ceiling_correct: int, n_ceiling: int, frac: Fraction):
    """(accuracy >= frac x ceiling, with ceiling > 0; its text), compared in integers."""
    text = _accuracy_text(correct, n)
    if n == 0:
        return False, f"{text}: no sample scored"
    if ceiling_correct == 0:  # ceiling_correct > 0 implies n_ceiling > 0
        return False, f"{text}, ceiling {_ratio(ceiling_correct, n_ceiling)}: C needs a ceiling above 0"
    # correct / n >= frac * ceiling_correct / n_ceiling, both sides times n * n_ceiling * denominator
    wanted = frac.numerator * ceiling_correct * n
    have = correct * n_ceiling * frac.denominator
    ceiling = f"{float(frac):g} x ceiling {ceiling_correct / n_ceiling:.2f}"
    if have >= wanted:
        return True, f"{text} >= {ceiling}"
    needed = -(-wanted // (n_ceiling * frac.denominator))  # fewest correct samples that give C
    return False, f"{text} < {ceiling} (C needs {needed})"


def _singles(modes: FailureModes, single_min: Fraction, mark: str = "bump") -> str:
    """'97% single bumps (2% none, 1% several)' (``mark`` "bump"), with '< 50%' where that makes it A."""
    if modes.n == 0:
        return "no samples"
    one = Fraction(modes.n_one, modes.n)
    below = f" < {_percent(float(single_min))}" if one < single_min else ""
    shown = _percent(modes.one)
    if below and shown == _percent(float(single_min)):  # 49.6% would print as "50% < 50%"
        shown = f"{modes.one:.1%}"
    return f"{shown} single {mark}s{below} ({_percent(modes.none)} none, {_percent(modes.several)} several)"


def _check_counts(**pairs: tuple[int, int]) -> None:
    for name, (part, whole) in pairs.items():
        for value in (part, whole):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} and its total must be integers >= 0; got {part!r} of {whole!r}")
        if part > whole:
            raise ValueError(f"{name} must be <= its total; got {part} of {whole}")


def _exact(value: float) -> Fraction:
    """A threshold as the decimal it prints as: 0.8 -> 4/5 (Fraction(0.8) is 0.80000000000000004...)."""
    return Fraction(repr(float(value)))


def _accuracy_text(correct: int, n: int) -> str:
    return f"accuracy {_ratio(correct, n)}"


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} = {part / whole:.2f}" if whole else f"{part}/{whole}"


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def _fixed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
