"""How alike two explanations are (``results/similarity.py``), pinned against the mutants that
survived (or had no test in) ``python tests/run_mutation.py
pytest_dreamer_audit/results/similarity.py --tests ...`` (issue 35): matched cosines of
prototypes of any scale (norms below 1 included) and any dtype, computed in float64 and equal to
the best pairing found by trying every permutation, and the top-steps table read as a set of
``(episode, step)`` with step 0 kept and ``-1`` dropped."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pytest_dreamer_audit.results.similarity import jaccard, matched_cosines, top_pairs


def _best_pairing(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The cosines of the permutation with the largest total, tried one by one (float64)."""
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = other / np.linalg.norm(other, axis=1, keepdims=True)
    cosine = a @ b.T
    best = max(
        itertools.permutations(range(len(b))),
        key=lambda perm: sum(cosine[i, j] for i, j in enumerate(perm)),
    )
    return np.array([cosine[i, j] for i, j in enumerate(best)])


@pytest.mark.parametrize("scale", [1e-3, 0.5, 1.0, 40.0])
def test_matched_cosines_are_the_best_pairing_at_any_scale(scale: float) -> None:
    # kills matched_cosines_19 (norms floored at 1: prototypes shorter than 1 not made unit)
    rng = np.random.default_rng(3)
    reference = rng.random((4, 6))
    other = reference[[2, 0, 3, 1]] + 0.2 * rng.random((4, 6))
    cosines = matched_cosines(scale * reference, scale * other)
    assert cosines.dtype == np.float64
    assert cosines.shape == (4,)
    np.testing.assert_allclose(cosines, _best_pairing(reference, other), rtol=1e-12)
    assert (cosines > 0.9).all()
    assert (cosines <= 1.0 + 1e-12).all()
    np.testing.assert_allclose(matched_cosines(scale * reference, reference), 1.0, rtol=1e-12)


def test_matched_cosines_are_computed_in_float64_from_float32_prototypes() -> None:
    # kills matched_cosines_3, _5 (float32 prototypes kept float32)
    rng = np.random.default_rng(4)
    reference = rng.random((3, 50)).astype(np.float32)
    other = rng.random((3, 50)).astype(np.float32)
    cosines = matched_cosines(reference, other)
    assert cosines.dtype == np.float64
    expected = _best_pairing(reference.astype(np.float64), other.astype(np.float64))
    np.testing.assert_allclose(cosines, expected, rtol=1e-13)


def test_a_zero_prototype_has_cosine_zero_with_anything() -> None:
    reference = np.array([[0.0, 0.0], [1.0, 1.0]])
    other = np.array([[2.0, 2.0], [0.0, 3.0]])
    np.testing.assert_allclose(matched_cosines(reference, other), [0.0, 1.0], atol=1e-15)


def test_top_pairs_reads_every_pick_with_step_zero_and_drops_the_missing() -> None:
    # kills top_pairs_1 (int(None)), _2, _3 (no table), _4 (> 0), _5 (>= 1): step 0 is a pick
    table = np.array([[3, -1, 0], [-1, -1, -1], [5, 2, 2]])
    pairs = top_pairs(table)
    assert pairs == {(0, 3), (0, 0), (2, 5), (2, 2)}
    assert all(type(b) is int for b, _ in pairs)
    assert all(type(t) is int for _, t in pairs)
    assert top_pairs(np.array([[0]])) == {(0, 0)}
    assert top_pairs(np.full((2, 3), -1)) == set()
    assert jaccard(top_pairs(table), top_pairs(np.array([[0, 3], [1, -1]]))) == pytest.approx(2 / 5)
    assert math.isnan(jaccard(top_pairs(np.array([[-1]])), set()))
