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


def test_scipys_pairs_past_the_numpy_limit_are_the_heaviest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kills mutmut_19/22 of max_weight_assignment (SciPy called with maximize=None/False):
    # the pairing past NUMPY_LARGEST must be SciPy's *maximizing* one, not any pairing.
    rng = np.random.default_rng(3)
    for shape in ((257, 260), (260, 257)):  # the real limit: SciPy's side of it
        weights = rng.normal(size=shape)
        rows, cols = max_weight_assignment(weights)
        expected_rows, expected_cols = linear_sum_assignment(weights, maximize=True)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(cols, expected_cols)
    monkeypatch.setattr(assignment, "NUMPY_LARGEST", 1)
    weights = np.array([[1.0, 9.0, 0.0], [9.0, 8.0, 0.0], [0.0, 0.0, 5.0]])
    rows, cols = max_weight_assignment(weights)  # through SciPy: 9 + 9 + 5, not 1 + 8 + 5
    assert rows.tolist() == [0, 1, 2]
    assert cols.tolist() == [1, 0, 2]
    assert rows.dtype == cols.dtype == np.int64


def test_the_refusal_names_what_was_found() -> None:
    # Kills mutmut_12/13 of max_weight_assignment (the message's text altered: "XX...XX",
    # "nan or infinity"): the whole message, not a fragment of it.
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(
            ValueError, match=r"^the weights must be finite numbers \(NaN or infinity found\)$"
        ):
            max_weight_assignment(np.array([[0.0, bad], [1.0, 2.0]]))


def test_integer_and_boolean_weights_are_their_values() -> None:
    # Kills mutmut_3/5 of max_weight_assignment (np.asarray without dtype=np.float64): the
    # cost is the negated weights, and negating unsigned or 8-bit integers wraps around
    # (-uint8(1) == 255, -int8(-128) == -128) while negating booleans raises.
    unsigned = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    rows, cols = max_weight_assignment(unsigned)
    assert (rows.tolist(), cols.tolist()) == ([0, 1], [1, 0])  # 1 + 2, not 0 + 0
    signed = np.array([[-128, 0], [0, -128]], dtype=np.int8)
    rows, cols = max_weight_assignment(signed)
    assert (rows.tolist(), cols.tolist()) == ([0, 1], [1, 0])  # 0 + 0, not -256
    flags = np.array([[False, True, False], [True, False, False]])
    rows, cols = max_weight_assignment(flags)
    assert (rows.tolist(), cols.tolist()) == ([0, 1], [1, 0])
    wide = np.array([[3, 7], [5, 1], [6, 2]], dtype=np.int64)  # transposed path, integers
    rows, cols = max_weight_assignment(wide)
    assert (rows.tolist(), cols.tolist()) == ([0, 2], [1, 0])  # 7 + 6


def test_duplicated_rows_pair_in_order_as_scipy_does() -> None:
    # Kills mutmut_58 of _shortest_augmenting_paths (`reduced <= slack` in the Dijkstra step):
    # it still reaches the best total, but breaks exact ties the other way. matched_cosines
    # reports each reference prototype's own matched cosine, so with two identical reference
    # prototypes the tie decides which of them is reported as matched well: the first, as
    # SciPy (the previous matcher) pairs them.
    for weights, expected in (
        ([[1.0, 0.0], [1.0, 0.0]], [0, 1]),
        ([[2.0, 1.0], [2.0, 1.0]], [0, 1]),
        ([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]], [0, 1, 2]),
    ):
        matrix = np.array(weights)
        rows, cols = max_weight_assignment(matrix)
        assert rows.tolist() == list(range(len(weights)))
        assert cols.tolist() == expected
        assert cols.tolist() == linear_sum_assignment(matrix, maximize=True)[1].tolist()


def test_huge_weights_pair_as_scipy_does() -> None:
    # The review's case: differences of weights near the float64 limit overflowed and picked
    # the worse pairing (cols [1, 0]); scaled by a power of two first, the pairing is SciPy's.
    weights = np.array([[-6.71356151e307, 1.59297173e308], [-1.31266550e308, 1.24224113e308]])
    _, cols = max_weight_assignment(weights)
    assert cols.tolist() == linear_sum_assignment(weights, maximize=True)[1].tolist() == [0, 1]
    assert max_weight_assignment(weights / 1e300)[1].tolist() == [0, 1]


def test_complex_weights_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^the weights must be real numbers \(complex found\)$"):
        max_weight_assignment(np.array([[1.0 + 2.0j, 0.0]]))
