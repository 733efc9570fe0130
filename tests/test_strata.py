"""The control for another recorded fact (``results/strata.py``): a factor that follows fact G
is not credited with fact F when G explains F, and is when it does not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.semantics import fact_associations
from pytest_dreamer_audit.results.strata import confounder, shuffles, strata_of
from pytest_dreamer_audit.testing import fake_explanation


def test_shuffles_move_values_only_within_their_stratum() -> None:
    strata = np.array([0, 1, 0, 2, 1, 0, 2, 2])
    source = shuffles(strata, draws=50, seed=3)
    for row in source:
        assert sorted(row.tolist()) == list(range(8))
        np.testing.assert_array_equal(strata[row], strata)
    assert len({tuple(row) for row in source}) > 5  # not the identity every time
    np.testing.assert_array_equal(source, shuffles(strata, draws=50, seed=3))


def test_strata_are_the_values_or_at_most_ten_quantile_bins() -> None:
    np.testing.assert_array_equal(strata_of(np.array([9.0, 3, 3, 9, 5])), [2, 0, 0, 2, 1])
    many = strata_of(np.arange(1000.0))
    assert many.max() - many.min() + 1 == 10
    assert np.bincount(many).min() >= 99


def test_the_other_fact_is_the_one_that_best_goes_with_it_and_not_a_sibling() -> None:
    rng = np.random.default_rng(0)
    row = rng.integers(0, 10, 500).astype(float)
    adjacent = ((row > 0) & (rng.random(500) < 0.4)).astype(float)
    noise = rng.random(500)
    assert confounder("adjacent", adjacent, [("noise", noise), ("row", row)])[0] == "row"  # type: ignore[index]
    # the rows of one categorical fact exclude each other: never each other's control
    siblings = [("row", row), ("a=up", adjacent), ("a=noop", 1 - adjacent)]
    assert confounder("a=up", adjacent, siblings)[0] == "row"  # type: ignore[index]
    assert confounder("noise", noise, [("other", rng.random(500))]) is None


def _world(seed: int, linked: bool) -> tuple:
    """A factor that follows a graded fact ``row`` (plus noise); an event ``near`` that holds
    only in rows 5-9 (as Freeway's cars never drive in the bottom row), and, when ``linked``,
    also where the factor is high within each row."""
    rng = np.random.default_rng(seed)
    e = fake_explanation(steps=50, episodes=16, rank=2, seed=seed)
    row = rng.integers(0, 10, e.valid.shape).astype(np.int32)
    own = rng.random(e.valid.shape)
    activations = np.stack([row + 0.5 * own, rng.random(e.valid.shape)], -1)
    chance = np.where(row >= 5, 0.3, 0.0)
    if linked:
        chance = np.where(row >= 5, np.where(own > 0.5, 0.6, 0.05), 0.0)
    near = (rng.random(e.valid.shape) < chance).astype(np.int32)
    facts = np.stack([row, near], -1)
    e = dataclasses.replace(
        e, fact_names=("row", "near"), facts=facts,
        factor_activations=activations.astype(np.float32),
        factor_stability=np.ones(2),
    )  # fmt: skip
    return e


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fact_that_another_fact_explains_is_reported_as_that_fact(seed: int) -> None:
    e = _world(seed, linked=False)
    rows = {r.name: r for r in fact_associations(e, ClaimConfig(draws=199))}
    near = rows["near"]
    assert near.controlled_for == "row"
    assert near.claim == -1
    # beyond the shifts and other episodes (the factor follows the row, which the event
    # needs), not beyond shuffles within the row: reported as the row
    assert near.explained_by_other[0]
    assert rows["row"].claim == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fact_the_factor_marks_within_the_other_facts_values_is_still_claimed(
    seed: int,
) -> None:
    rows = {r.name: r for r in fact_associations(_world(seed, linked=True), ClaimConfig(draws=199))}
    assert rows["near"].controlled_for == "row"
    assert rows["near"].claim == 0
    assert not any(rows["near"].explained_by_other)
