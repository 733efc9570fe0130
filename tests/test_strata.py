"""The control for another recorded fact (``results/strata.py``): a factor that follows fact G
is not credited with fact F when G explains F, and is when it does not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pytest_dreamer_audit.results import assertions as A
from pytest_dreamer_audit.results.claims import _adjusted, _Raw, score_associations
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.semantics import fact_associations, factor_event_test
from pytest_dreamer_audit.results.strata import (
    PicksTest,
    confounder,
    determines,
    shuffles,
    strata_of,
)
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


def test_a_fact_is_determined_by_itself_and_by_what_it_is_a_function_of() -> None:
    row = np.array([0.0, 3, 3, 9, 5, 0])
    assert determines(row, row)
    assert determines(row, (row == 9).astype(float))  # a function of the row
    assert not determines(row, np.array([0.0, 1, 0, 0, 0, 0]))  # two values within row 3
    assert not determines(np.zeros(6), row)


def test_a_control_that_determines_the_fact_is_no_control() -> None:
    rng = np.random.default_rng(0)
    row = rng.integers(0, 10, 500).astype(float)
    factor = row + rng.random(500)
    bottom = (row == 9).astype(float)
    # without the fact's values, the row would control "bottom", which it determines: a
    # shuffle within the rows moves nothing, so every claim would be "explained by row"
    assert confounder("bottom", factor, [("row", row)])[0] == "row"  # type: ignore[index]
    assert confounder("bottom", factor, [("row", row)], bottom) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_the_factor_assertions_report_a_fact_another_fact_explains_as_that_fact(
    seed: int,
) -> None:
    e = _world(seed, linked=False)
    test = factor_event_test(e, "near")
    assert test.control is not None
    assert test.control.by == "row"
    assert float(test.p_values[0]) <= 0.05 < float(test.controlled_p_values[0])
    with pytest.raises(AssertionError, match=r"explained by row: it beats circular shifts and "
                       r"the facts of other episodes \(p = [\d.e-]+\) but not shuffles within "
                       r"the values of row"):  # fmt: skip
        A.assert_some_factor_coincides(e, "near", min_precision=0.1)
    # a graded fact that is the row plus noise of its own: tracked only through the row
    rng = np.random.default_rng(seed)
    noisy_row = e.fact("row") + 3 * rng.random(e.valid.shape)
    with pytest.raises(AssertionError, match=r"explained by row"):
        A.assert_some_factor_tracks(e, noisy_row, min_abs_spearman=0.3)
    # the row itself, given as an array, is not its own control: the factor tracks it
    match = A.assert_some_factor_tracks(e, e.fact("row").astype(float), min_abs_spearman=0.3)
    assert match.factor == 0
    assert match.value > 0.9


@pytest.mark.parametrize("seed", [1, 2])
def test_the_factor_assertions_credit_a_fact_the_factor_marks_within_the_controls_values(
    seed: int,
) -> None:
    e = _world(seed, linked=True)
    test = factor_event_test(e, "near")
    assert test.control is not None
    assert test.control.by == "row"
    assert float(test.controlled_p_values[0]) <= 0.05
    assert A.assert_some_factor_coincides(e, "near", min_precision=0.1).factor == 0


def _scored_world(seed: int, linked: bool) -> Explanation:
    """:func:`_world` with a score that follows the row (plus its own noise) and picks its top
    5 steps per rollout; when ``linked``, the event also holds where the score's own noise is
    high within each row, as a score that marks the event itself would."""
    e = _world(seed, linked=False)
    rng = np.random.default_rng(seed + 100)
    row = e.fact("row").astype(float)
    own = rng.random(e.valid.shape)
    scores = row + 2.0 * own
    near = e.fact("near").astype(bool)
    if linked:
        near = (row >= 5) & (rng.random(e.valid.shape) < np.where(own > 0.7, 0.7, 0.1))
    top = np.argsort(-scores, axis=0, kind="stable")[:5].T  # [B, 5] steps, best first
    facts = np.stack([row.astype(np.int32), near.astype(np.int32)], -1)
    return dataclasses.replace(
        e, observation_scores=scores.astype(np.float32), top_observations=top, facts=facts
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_the_score_table_reports_an_event_another_fact_explains_as_that_fact(seed: int) -> None:
    e = _scored_world(seed, linked=False)
    near = {s.name: s for s in score_associations(e)}["near"]
    # the picks sit in the high rows, where the event can happen: beyond the shifts and the
    # other episodes, not beyond shuffles of the event within the row
    assert near.controlled_for == "row"
    assert near.uncontrolled_p_above <= 0.05
    assert near.verdict() == "chance"
    assert near.explained_by_other
    assert not near.time_only
    with pytest.raises(AssertionError, match=r"explained by row"):
        A.assert_top_observations_coincide(e, "near", min_precision=0.1)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_score_table_credits_an_event_the_picks_mark_within_the_controls_values(
    seed: int,
) -> None:
    e = _scored_world(seed, linked=True)
    near = {s.name: s for s in score_associations(e)}["near"]
    assert near.controlled_for == "row"
    assert near.verdict() == "above"
    assert not near.explained_by_other
    assert A.assert_top_observations_coincide(e, "near", min_precision=0.1) > near.base_rate


def test_an_event_read_from_a_fact_is_not_controlled_for_that_fact() -> None:
    rng = np.random.default_rng(4)
    bricks = rng.integers(0, 30, 600).astype(float)  # 30 values, each repeated: > 10 strata
    score = -bricks + rng.random(600)
    few = (bricks <= 10).astype(float)
    other = rng.integers(0, 3, 600).astype(float) + (bricks <= 5)
    # the fact the name reads is skipped by name, and by its values when given as an array
    assert confounder("bricks_left<=10", score, [("bricks_left", bricks), ("o", other)])[0] == "o"  # type: ignore[index]
    assert determines(bricks, few)  # constant within each of its 30 values, not its 10 bins
    assert confounder("", score, [("bricks_left", bricks), ("o", other)], few)[0] == "o"  # type: ignore[index]
    assert confounder("executed_action!=up", score, [("executed_action=up", few)]) is None
    # every fact is a function of one whose values are all distinct: that is no reason
    assert not determines(rng.random(600), few)


def test_labels_name_what_held_a_score_row_back_not_another_rows_correction() -> None:
    # A and B beat both nulls at 0.001; C at 0.03 (its third null 0.002). A fails its third
    # null (0.9): C's final p rises to 0.06 through Holm, which is not C's control's doing.
    def raw(name: str, p: float) -> _Raw:
        return _Raw(name, 0.5, 0.2, (0.0,) * 4, (p / 2, 1.0, p, 1.0), (0.0,) * 3)

    raws = [raw("a", 0.001), raw("b", 0.001), raw("c", 0.03)]
    controls = [PicksTest("g", 0.9, 1.0), None, PicksTest("g", 0.002, 1.0)]
    a, b, c = _adjusted(raws, controls, 5, 80, 0.05, one_sided=True)
    assert a.explained_by_other  # its own third null held it back
    assert a.uncontrolled_p_above == pytest.approx(0.003)  # 0.001 x 3 in the same family
    assert b.verdict() == "above"
    assert c.verdict() == "chance"
    assert c.p_above == pytest.approx(0.03 * 2)  # second of three
    assert c.uncontrolled_p_above == pytest.approx(0.06)
    assert not c.explained_by_other
    # under the shifts alone (0.015), c would pass in this family: its swap held it back
    assert c.time_only
