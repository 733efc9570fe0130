"""The assignment solver (``results/assignment.py``) against SciPy's and against trying every
permutation: the same pairs wherever the best pairing is unique (continuous weights), the same
best total where ties allow several (small integer weights), every shape, and SciPy's own solver
past ``NUMPY_LARGEST``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pytest_dreamer_audit.results import assignment
from pytest_dreamer_audit.results.assignment import max_weight_assignment


def _check_pairing(weights: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    n, m = weights.shape
    assert rows.dtype == np.int64
    assert cols.dtype == np.int64
    assert len(rows) == len(cols) == min(n, m)
    assert (np.diff(rows) > 0).all()  # ascending, each row once
    assert len(set(cols.tolist())) == len(cols)  # each column once
    assert ((rows >= 0) & (rows < n)).all()
    assert ((cols >= 0) & (cols < m)).all()


@pytest.mark.parametrize("seed", range(4))
def test_continuous_weights_give_scipys_pairs_for_every_shape(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n, m in itertools.product(range(1, 13), repeat=2):
        weights = rng.normal(size=(n, m))
        rows, cols = max_weight_assignment(weights)
        _check_pairing(weights, rows, cols)
        expected_rows, expected_cols = linear_sum_assignment(weights, maximize=True)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(cols, expected_cols)


@pytest.mark.parametrize("seed", range(4))
def test_tied_weights_reach_the_best_total(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for n, m in itertools.product(range(1, 10), repeat=2):
        weights = rng.integers(-2, 3, size=(n, m)).astype(np.float64)
        rows, cols = max_weight_assignment(weights)
        _check_pairing(weights, rows, cols)
        expected_rows, expected_cols = linear_sum_assignment(weights, maximize=True)
        assert weights[rows, cols].sum() == weights[expected_rows, expected_cols].sum()


def test_the_best_total_equals_trying_every_permutation() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        weights = rng.random((5, 7))
        rows, cols = max_weight_assignment(weights)
        best = max(
            sum(weights[i, j] for i, j in enumerate(perm))
            for perm in itertools.permutations(range(7), 5)
        )
        assert weights[rows, cols].sum() == pytest.approx(best, rel=1e-12)


def test_a_known_matrix_and_the_empty_ones() -> None:
    weights = np.array([[1.0, 9.0, 0.0], [9.0, 8.0, 0.0], [0.0, 0.0, 5.0]])
    rows, cols = max_weight_assignment(weights)
    assert rows.tolist() == [0, 1, 2]
    assert cols.tolist() == [1, 0, 2]
    for shape in ((0, 3), (3, 0), (0, 0)):
        rows, cols = max_weight_assignment(np.zeros(shape))
        assert rows.shape == cols.shape == (0,)


def test_scipy_solves_past_the_numpy_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    calls = []

    def recorded(weights: np.ndarray, maximize: bool) -> tuple[np.ndarray, np.ndarray]:
        calls.append(weights.shape)
        return linear_sum_assignment(weights, maximize=maximize)

    monkeypatch.setattr(scipy.optimize, "linear_sum_assignment", recorded)
    monkeypatch.setattr(assignment, "NUMPY_LARGEST", 3)
    weights = np.random.default_rng(0).normal(size=(4, 5))
    rows, cols = max_weight_assignment(weights)
    assert calls == [(4, 5)]
    _check_pairing(weights, rows, cols)
    max_weight_assignment(weights[:3])  # 3 x 5: solved here
    assert calls == [(4, 5)]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.zeros(3), "2-D matrix, got shape (3,)"),
        (np.array([[0.0, np.nan]]), "finite numbers"),
        (np.array([[np.inf, 0.0]]), "finite numbers"),
    ],
)
def test_bad_weights_are_refused(weights: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        max_weight_assignment(weights)
