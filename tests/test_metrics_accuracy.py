"""accuracy, failure_modes and blob_fractions on constructed cases (paper App. A.3, Eq. 1; Sec. 3)."""

import math

import numpy as np
import pytest

from metrics import FailureModes, accuracy, blob_fractions, failure_modes

TARGET = np.array([[10.0, 20.0]] * 4)


def test_each_axis_is_scored_separately_and_overall_needs_both():
    pred = TARGET + [[0.0, 0.0], [0.5, 3.0], [3.0, -0.5], [-2.0, 2.0]]  # both, x only, y only, none
    acc = accuracy(pred, TARGET)
    assert (acc.overall, acc.x, acc.y, acc.n) == (0.25, 0.5, 0.5, 4)
    assert (acc.correct, acc.correct_x, acc.correct_y) == (1, 2, 2)  # the counts behind them


def test_an_error_of_exactly_tol_is_correct_and_just_beyond_is_not():
    beyond = 1.0 + 2.0**-20
    pred = TARGET + [[1.0, -1.0], [-1.0, 1.0], [beyond, 0.0], [0.0, -beyond]]
    acc = accuracy(pred, TARGET, tol=1.0)
    assert (acc.overall, acc.x, acc.y) == (0.5, 0.75, 0.75)


@pytest.mark.parametrize("tol, expected", [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (2.0, 1.0)])
def test_tolerance_is_honoured(tol, expected):
    pred = TARGET + [[0.0, 0.0], [0.25, 0.0], [0.0, -0.5], [1.5, 1.5]]
    assert accuracy(pred, TARGET, tol=tol).overall == expected


def test_nan_predictions_are_wrong():
    pred = TARGET.copy()
    pred[0, 0] = np.nan
    acc = accuracy(pred, TARGET)
    assert (acc.overall, acc.x, acc.y) == (0.75, 0.75, 1.0)


def test_no_samples_gives_nan_fractions_not_an_error():
    acc = accuracy(np.zeros((0, 2)), np.zeros((0, 2)))
    assert acc.n == 0 and all(math.isnan(v) for v in (acc.overall, acc.x, acc.y))
    assert (acc.correct, acc.correct_x, acc.correct_y) == (0, 0, 0)


def test_fractions_are_the_counts_over_n():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 32, (500, 2))
    acc = accuracy(target + rng.normal(0, 1.0, (500, 2)), target)
    assert acc.overall == acc.correct / 500 and acc.x == acc.correct_x / 500 and acc.y == acc.correct_y / 500
    assert 0 < acc.correct < acc.correct_x


@pytest.mark.parametrize(
    "pred, target, tol, match",
    [
        (np.zeros((3, 2)), np.zeros((4, 2)), 1.0, "differ in shape"),
        (np.zeros((3, 3)), np.zeros((3, 3)), 1.0, r"\(N, 2\)"),
        (np.zeros(2), np.zeros(2), 1.0, r"\(N, 2\)"),
        (np.zeros((3, 2)), np.zeros((3, 2)), -0.1, "tol"),
        (np.zeros((3, 2)), np.zeros((3, 2)), math.nan, "tol"),
    ],
)
def test_bad_inputs_are_rejected(pred, target, tol, match):
    with pytest.raises(ValueError, match=match):
        accuracy(pred, target, tol=tol)


def test_blob_fractions_split_none_single_and_many():
    f0, f1, fmany = blob_fractions(np.array([0, 1, 1, 2, 5]))
    assert (f0, f1, fmany) == (0.2, 0.4, 0.4)
    assert blob_fractions(np.array([1, 1, 1])).one == 1.0


def test_blob_fractions_of_nothing_are_nan():
    assert all(math.isnan(f) for f in blob_fractions(np.array([], dtype=int)))


@pytest.mark.parametrize("bad", [np.array([1, -1]), np.array([1.0, 2.0]), np.ones((2, 2), dtype=int)])
def test_blob_fractions_reject_bad_counts(bad):
    with pytest.raises(ValueError):
        blob_fractions(bad)


def test_failure_modes_count_none_one_and_several():
    modes = failure_modes(np.array([0, 1, 1, 2, 5, 1, 0]))
    assert (modes.n_none, modes.n_one, modes.n_several, modes.n) == (2, 3, 2, 7)
    assert (modes.none, modes.one, modes.several) == (2 / 7, 3 / 7, 2 / 7)  # count / n, exactly
    assert modes == FailureModes(n_none=2, n_one=3, n_several=2)


def test_failure_modes_of_nothing_are_zero_counts_and_nan_fractions():
    modes = failure_modes(np.array([], dtype=np.int64))
    assert modes.n == 0 and all(math.isnan(f) for f in (modes.none, modes.one, modes.several))


@pytest.mark.parametrize("bad", [np.array([1, -1]), np.array([1.0, 2.0]), np.ones((2, 2), dtype=int)])
def test_failure_modes_reject_bad_counts(bad):
    with pytest.raises(ValueError, match="blob"):
        failure_modes(bad)


def test_blob_fractions_agree_with_failure_modes():
    blobs = np.random.default_rng(1).integers(0, 4, 333)
    modes = failure_modes(blobs)
    assert tuple(blob_fractions(blobs)) == (modes.none, modes.one, modes.several)
