"""label_phase on constructed evaluation summaries, boundaries included (ours, DESIGN §5)."""

import math

import numpy as np
import pytest

from metrics import PhaseRule, label_phase

ORDER = {"A": 0, "B": 1, "C": 2}


@pytest.mark.parametrize(
    "single, acc, ceiling, r2, expected",
    [
        (0.49, 1.00, 1.00, 1.00, "A"),  # several / no bumps, whatever else
        (0.50, 0.10, 1.00, 0.95, "B"),  # single_min is inclusive: 0.5 is not A
        (0.50, 0.80, 1.00, 0.80, "C"),  # both C thresholds exactly met
        (0.94, 0.40, 0.50, 0.80, "C"),  # accuracy exactly 0.8 x a lower ceiling
        (0.94, 0.39, 0.50, 0.99, "B"),  # accuracy just short of 0.8 x ceiling
        (0.94, 0.77, 0.77, 0.7999, "B"),  # R² just short
        (1.00, 0.00, 0.00, 0.90, "C"),  # a zero ceiling asks nothing of accuracy
    ],
)
def test_rule_with_inclusive_boundaries(single, acc, ceiling, r2, expected):
    assert label_phase(single, acc, ceiling, r2).label == expected


def test_reason_is_one_line_with_the_numbers():
    phase = label_phase(0.94, 0.31, 0.77, 0.62)
    assert phase.label == "B"
    assert phase.reason == "B: 94% single bumps, accuracy 0.31 of ceiling 0.77, R² 0.62"


@pytest.mark.parametrize(
    "single, acc, ceiling, r2, expected",
    [
        (math.nan, 0.9, 0.9, 0.9, "A"),  # nothing shows single bumps
        (0.9, math.nan, 0.9, 0.9, "B"),  # C cannot be shown
        (0.9, 0.9, math.nan, 0.9, "B"),
        (0.9, 0.9, 0.9, math.nan, "B"),
        (0.3, math.nan, math.nan, math.nan, "A"),
    ],
)
def test_nan_never_promotes_a_phase(single, acc, ceiling, r2, expected):
    phase = label_phase(single, acc, ceiling, r2)
    assert phase.label == expected
    assert phase.reason.startswith(f"{expected}: ") and "n/a" in phase.reason


def test_phase_never_falls_as_any_input_improves():
    grid = np.linspace(0.0, 1.0, 11)
    for single in grid:
        for r2 in grid:
            labels = [ORDER[label_phase(single, acc, 0.77, r2).label] for acc in grid]
            assert labels == sorted(labels), (single, r2)


def test_custom_rule_moves_the_thresholds():
    strict = PhaseRule(single_min=0.9, accuracy_frac=1.0, r2_min=0.95)
    assert label_phase(0.85, 1.0, 1.0, 1.0, strict).label == "A"
    assert label_phase(0.95, 0.99, 1.0, 1.0, strict).label == "B"
    assert label_phase(0.95, 1.0, 1.0, 0.95, strict).label == "C"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"single_min": 1.5},
        {"single_min": math.nan},
        {"accuracy_frac": -0.1},
        {"r2_min": 1.1},
        {"r2_min": -math.inf},
    ],
)
def test_rule_rejects_meaningless_thresholds(kwargs):
    with pytest.raises(ValueError, match="PhaseRule"):
        PhaseRule(**kwargs)
