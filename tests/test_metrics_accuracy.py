"""accuracy and blob_fractions on constructed cases (paper App. A.3, Eq. 1)."""

import math

import numpy as np
import pytest

from metrics import accuracy, blob_fractions

TARGET = np.array([[10.0, 20.0]] * 4)


def test_each_axis_is_scored_separately_and_overall_needs_both():
    pred = TARGET + [[0.0, 0.0], [0.5, 3.0], [3.0, -0.5], [-2.0, 2.0]]  # both, x only, y only, none
    acc = accuracy(pred, TARGET)
    assert (acc.overall, acc.x, acc.y, acc.n) == (0.25, 0.5, 0.5, 4)


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
