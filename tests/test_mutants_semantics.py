"""Each claim of ``results/semantics.py`` rebuilt from its parts, written against the mutants
that survived ``tox -e mutation -- pytest_dreamer_audit/results/semantics.py``
(benchmarks/mutation.md): an unstable factor that may claim nothing, a factor *below* an event
(no claim one-sided), the claims and ``k`` actually used, the third null asked with the fact's
own name and side, the factor statuses, padding steps, and a precision exactly at the base
rate."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results import semantics
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.results.semantics import (
    FactAssociation,
    claim_context,
    event_mask,
    fact_associations,
    fact_values,
    factor_event_precision,
    factor_event_test,
    factor_fact_test,
    factor_highlights,
    factor_status,
)
from pytest_dreamer_audit.results.two_nulls import Nulls, graded_test
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent

CLAIMS = ClaimConfig(level=0.1, draws=199, bootstrap=50, seed=4)
"""Few draws (p-values are multiples of 1/200) and level 0.1, not the defaults: a claim must
use these."""


@pytest.fixture(scope="module")
def planted() -> tuple[Explanation, np.ndarray]:
    """4 freeway episodes of 16, 12, 16 and 10 analysed steps (padding after, where the
    activations would spoil every measure), and an event ([L, B] bool, 35%, true at step 0 of
    episode 0): factor 0 rises with it, factor 1 falls with it, factor 2 is noise and unstable
    (stability 0.5 < 0.8: it may claim nothing)."""
    trajectory = run_rollouts(tiny_agent(seed=2), "freeway", episodes=4, steps=16, seed=1)
    explained = explain(trajectory, ExplainConfig(rank=3, top_k=3, stability_refits=0))
    rng = np.random.default_rng(5)
    valid = np.arange(16)[:, None] < np.array([16, 12, 16, 10])[None, :]
    event = (rng.random(valid.shape) < 0.35) & valid
    event[0, 0] = True
    noise = rng.random((16, 4, 3))
    activations = np.stack(
        [noise[..., 0] + 2 * event, noise[..., 1] - 2 * event, noise[..., 2]], axis=-1
    )
    activations[~valid] = [9.0, 9.0, 9.0]
    explanation = dataclasses.replace(
        explained,
        valid=valid,
        factor_activations=activations.astype(np.float32),
        factor_stability=np.array([0.95, 0.9, 0.5]),
    )
    return explanation, event


def test_an_event_is_tested_one_sided_over_the_claimable_factors_with_the_claims_given(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills _event_test_5 (claimable dropped: the unstable factor tested), _6/_11/_13 (the
    # event tested two-sided: a factor *below* it claimed as marking it), factor_event_test_6
    # and _9 (`k` dropped).
    explanation, event = planted
    test = factor_event_test(explanation, event, CLAIMS, k=6)
    valid = explanation.valid
    activations = explanation.factor_activations[valid]
    nulls = Nulls.draw(valid, CLAIMS)
    claimable = np.array([True, True, False])
    expected = graded_test(nulls, activations, event[valid].astype(float), claimable, True)
    np.testing.assert_array_equal(test.p_values, expected.p_values)
    np.testing.assert_array_equal(test.test.values, expected.values)
    assert test.k == 6
    np.testing.assert_array_equal(test.values, factor_event_precision(explanation, event, 6))
    assert test.values.tolist() == [1.0, 0.0, test.values[2]]
    assert test.base_rate == pytest.approx(event[valid].mean())
    # Real values: factor 0 marks the event, factor 1 avoids it, factor 2 may claim nothing.
    assert test.test.shift_p[0] == pytest.approx(1 / 200)  # the draws of CLAIMS
    assert test.p_values[0] == pytest.approx(1 / 24)  # the swap's best: 4! pairings
    assert test.p_values[1] > 0.5
    assert math.isnan(test.p_values[2])
    assert [status.claimable for status in test.statuses] == [True, True, False]


def test_a_graded_fact_is_tested_two_sided_with_the_claims_given(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills _graded_test_5 (claimable dropped), _13 (base rate None), _14/_20 (k None or 1)
    # and factor_fact_test_2 (`claims and ClaimConfig()`: the defaults in place of the claims
    # given).
    explanation, _ = planted
    valid = explanation.valid
    fact = -explanation.factor_activations[..., 1].astype(np.float64)  # factor 1 falls with it
    test = factor_fact_test(explanation, fact, CLAIMS)
    activations = explanation.factor_activations[valid]
    nulls = Nulls.draw(valid, CLAIMS)
    expected = graded_test(nulls, activations, fact[valid], np.array([True, True, False]))
    np.testing.assert_array_equal(test.p_values, expected.p_values)
    np.testing.assert_array_equal(test.values, expected.values)
    assert (test.k, math.isnan(test.base_rate)) == (0, True)
    assert test.values[1] == pytest.approx(-1.0)
    assert test.test.shift_p[1] == pytest.approx(1 / 200)  # two-sided: a falling factor
    assert test.p_values[1] == pytest.approx(1 / 24)  # tracks it
    assert math.isnan(test.p_values[2])


def test_the_third_null_is_asked_with_the_facts_own_name_and_side(
    planted: tuple[Explanation, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills factor_event_test_34/_43/_45 and factor_fact_test_29/_38 (the control asked with
    # no name, whose own name is then no longer excluded, or on the wrong side) and _name_1/_3.
    explanation, event = planted
    asked: list[tuple[str, bool]] = []
    real = semantics.fact_control

    def spy(name: str, *args: Any, one_sided: bool, **kwargs: Any) -> Any:
        asked.append((name, one_sided))
        return real(name, *args, one_sided=one_sided, **kwargs)

    monkeypatch.setattr(semantics, "fact_control", spy)
    factor_event_test(explanation, "car_adjacent", CLAIMS)
    factor_event_test(explanation, event, CLAIMS)
    factor_event_test(explanation, lambda e: event, CLAIMS)
    factor_fact_test(explanation, "chicken_row", CLAIMS)
    factor_fact_test(explanation, explanation.fact("chicken_row"), CLAIMS)
    assert asked == [
        ("car_adjacent", True),
        ("", True),
        ("", True),
        ("chicken_row", False),
        ("", False),
    ]


def test_factor_status_is_the_claim_contexts_under_the_claims_given(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills factor_status_1.._6 (no test called it).
    explanation, _ = planted
    statuses = factor_status(explanation, CLAIMS)
    assert statuses == list(claim_context(explanation, CLAIMS).statuses)
    assert [s.factor for s in statuses] == [0, 1, 2]
    assert [s.unstable for s in statuses] == [False, False, True]
    assert [s.stability for s in statuses] == [0.95, 0.9, 0.5]
    # Kills claim_context_33 (the time correlation with the episode in place of the step),
    # _35 (`<=`: the first start_steps + 1 steps counted as the start), _56/_57: each status
    # recomputed from the factor's picks.
    from scipy.stats import spearmanr

    context = claim_context(explanation, CLAIMS)
    steps = np.nonzero(explanation.valid)[0]  # valid steps start at 0 in every episode
    activations = explanation.factor_activations[explanation.valid]
    early = steps < CLAIMS.start_steps
    limit = max(CLAIMS.max_start_fraction, 2 * early.mean())
    for j, status in enumerate(statuses):
        start = early[context.order[:, j]].mean()
        assert status.start_fraction == pytest.approx(start)
        assert status.marks_start == (start > limit)
        assert status.time_spearman == pytest.approx(spearmanr(activations[:, j], steps)[0])
    assert context.order.shape == (CLAIMS.picks(len(steps)), 3)
    # Kills claim_context_59 (the tie fraction) and _74 (`<=`: a stability exactly at the
    # minimum is stable).
    from pytest_dreamer_audit.results.picks import top_picks

    episodes = np.nonzero(explanation.valid)[1]
    _, ties = top_picks(activations, episodes, CLAIMS.picks(len(steps)))
    assert [s.tie_fraction for s in statuses] == pytest.approx(list(ties))
    at = dataclasses.replace(CLAIMS, min_stability=0.9)
    assert [s.unstable for s in factor_status(explanation, at)] == [False, False, True]
    strict = dataclasses.replace(CLAIMS, min_stability=0.92)
    assert [s.unstable for s in factor_status(explanation, strict)] == [False, True, True]
    assert factor_status(explanation) == list(claim_context(explanation, ClaimConfig()).statuses)


def test_a_factor_that_may_claim_nothing_has_no_p_value_in_the_table(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills fact_rows_17 (claimable dropped from the table's tests).
    explanation, _ = planted
    rows = fact_associations(explanation, CLAIMS)
    assert rows
    for row in rows:
        assert math.isnan(row.p_values[2])
        assert math.isnan(row.shift_p_values[2])


def test_an_event_precision_exactly_at_the_base_rate_is_no_highlight() -> None:
    # Kills factor_highlights_15 (`>=`): a factor whose picks hit the event exactly as often
    # as chance does not mark it, however small its p-value.
    at_rate = FactAssociation("collision", "event", (0.25, 0.5), 0.25, 4, 0.3, (0.01, 0.01))
    assert factor_highlights([at_rate], 0) == (None, None)
    assert factor_highlights([at_rate], 1) == (at_rate, None)


def test_a_wrong_shape_names_what_it_should_be(planted: tuple[Explanation, np.ndarray]) -> None:
    # Kills event_mask_4/_5/_10.._13 (the message's words).
    explanation, _ = planted
    with pytest.raises(ConfigError) as caught:
        event_mask(explanation, np.zeros((3, 4), dtype=bool))
    assert str(caught.value) == (
        "an event must be a [steps, episodes] = (16, 4) mask, got shape (3, 4)"
    )
    with pytest.raises(ConfigError) as caught:
        fact_values(explanation, lambda e: np.zeros(5))
    assert str(caught.value) == (
        "a fact must be a [steps, episodes] = (16, 4) array, got shape (5,)"
    )


def _tracking(explanation: Explanation) -> Explanation:
    """Factor 0 tracks the chicken's row, factor 1 marks the steps where the agent moved up
    (both with noise), factor 2 is noise: two facts of the table get small p-values."""
    rng = np.random.default_rng(8)
    noise = rng.random((*explanation.valid.shape, 3))
    row = explanation.fact("chicken_row").astype(np.float64)
    up = explanation.fact("executed_action") == explanation.action_names.index("up")
    activations = np.stack([row + noise[..., 0], 2 * up + noise[..., 1], noise[..., 2]], -1)
    return dataclasses.replace(explanation, factor_activations=activations.astype(np.float32))


def _table_is_each_facts_own_test(explanation: Explanation, claims: ClaimConfig) -> list[Any]:
    """Check every row of the table against the fact's own test (factor_event_test or
    factor_fact_test under the same claims): its best p-value ranked among the facts', each
    factor's p-value multiplied by (facts tested - rank) and floored at the fact's
    Holm-adjusted best; the rows, returned."""
    from pytest_dreamer_audit.results.nulls import holm

    rows = fact_associations(explanation, claims)
    own = [
        factor_event_test(explanation, row.name, claims)
        if row.kind == "event"
        else factor_fact_test(explanation, row.name, claims)
        for row in rows
    ]
    combined = [test.controlled_p_values for test in own]
    best = np.array([np.nan if np.isnan(p).all() else np.nanmin(p) for p in combined])
    tested = np.flatnonzero(~np.isnan(best))
    order = tested[np.argsort(best[tested], kind="stable")]
    floor = holm(best)
    for rank, index in enumerate(order):
        row, test = rows[index], own[index]
        multiplier = len(tested) - rank
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(
                row.uncontrolled_p_values, np.minimum(1, test.p_values * multiplier)
            )
            np.testing.assert_allclose(
                row.shift_p_values, np.minimum(1, test.test.shift_p * multiplier)
            )
            np.testing.assert_allclose(
                row.p_values,
                np.minimum(1, np.maximum(combined[index] * multiplier, floor[index])),
            )
        assert row.controlled_for == ("" if test.control is None else test.control.by)
        np.testing.assert_allclose(row.per_factor, test.values)
        np.testing.assert_allclose(row.correlations, test.test.values)
        np.testing.assert_allclose(row.effects, test.test.effects)
        np.testing.assert_allclose(row.effect_low, test.test.effect_low)
        np.testing.assert_allclose(row.effect_high, test.test.effect_high)
        assert (row.kind, row.k, row.level) == (
            "event" if test.k else "graded",
            test.k,
            claims.level,
        )
        assert row.null_q95 == pytest.approx(test.null_q95)
        assert row.swap_q95 == pytest.approx(test.swap_q95)
        assert row.base_rate == pytest.approx(test.base_rate, nan_ok=True)
    return rows


def test_the_table_is_each_facts_own_test_with_holm_over_the_facts(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills fact_rows_138 (the Holm multiplier `len + rank`), _193 (the level of the claims
    # given) and pins the issue's "secondary factors' Holm multipliers" and "fact-level Holm
    # floor". Factor 0 tracks the row, factor 1 marks moving up: two small p-values.
    rows = {row.name: row for row in _table_is_each_facts_own_test(_tracking(planted[0]), CLAIMS)}
    assert len(rows) == 10
    # Real values: the best of 9 facts tested (4! swap pairings: 1/24 at best) is multiplied
    # by 9, the second by 8 and floored at Holm's 9 * 1/24.
    assert rows["chicken_row"].uncontrolled_p_values[0] == pytest.approx(9 / 24)
    assert rows["executed_action=up"].uncontrolled_p_values[1] == pytest.approx(8 / 24)
    assert rows["executed_action=up"].p_values[1] == pytest.approx(9 / 24)


def test_a_table_event_another_fact_explains_is_its_own_controlled_test() -> None:
    # The factor follows a row; the event holds only in the high rows, so the control's
    # p-value (within the rows) is what the table reports (tests/test_strata.py's world). It
    # does not kill fact_rows_75 (the control of a table's event drawn two-sided): here the
    # one- and two-sided control p-values coincide (benchmarks/mutation.md).
    from pytest_dreamer_audit.testing import fake_explanation

    rng = np.random.default_rng(1)
    e = fake_explanation(steps=50, episodes=16, rank=2, seed=1)
    row = rng.integers(0, 10, e.valid.shape).astype(np.int32)
    activations = np.stack([row + 0.5 * rng.random(e.valid.shape), rng.random(e.valid.shape)], -1)
    near = (rng.random(e.valid.shape) < np.where(row >= 5, 0.3, 0.0)).astype(np.int32)
    world = dataclasses.replace(
        e,
        fact_names=("row", "near"),
        facts=np.stack([row, near], -1),
        factor_activations=activations.astype(np.float32),
        factor_stability=np.ones(2),
    )
    rows = {r.name: r for r in _table_is_each_facts_own_test(world, ClaimConfig(draws=199))}
    assert rows["near"].controlled_for == "row"
    assert rows["near"].p_values[0] > 0.05 >= rows["near"].uncontrolled_p_values[0]


def test_claims_need_one_analysed_step_and_say_so_without_any(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills claim_context_4 (`count == 1` refused) and _5.._7 (the message).
    explanation, _ = planted
    one = np.zeros_like(explanation.valid)
    one[0, 0] = True
    (status, *_) = factor_status(dataclasses.replace(explanation, valid=one), CLAIMS)
    assert (status.start_fraction, status.factor) == (1.0, 0)
    with pytest.raises(ConfigError) as caught:
        factor_status(dataclasses.replace(explanation, valid=np.zeros_like(one)), CLAIMS)
    assert str(caught.value) == "the explanation has no analysed steps, so it can make no claims"


def test_a_start_fraction_exactly_at_the_limit_does_not_mark_the_start(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills claim_context_76 (`>=`). 54 analysed steps, 12 of them in the first 3 steps of an
    # episode: the limit is max(0.5, 2 * 12/54) = 0.5; factor 0's 20 picks are 10 early
    # observations and 10 late ones.
    explanation, _ = planted
    valid = explanation.valid
    activations = np.random.default_rng(3).random((*valid.shape, 3))
    steps = np.arange(16)[:, None] + np.zeros(4, dtype=int)[None, :]
    early = np.flatnonzero(((steps < 3) & valid).reshape(-1))[:10]
    late = np.flatnonzero(((steps >= 5) & valid).reshape(-1))[:10]
    flat = activations[..., 0].reshape(-1)
    flat[early] = 10 + np.arange(10)
    flat[late] = 30 + np.arange(10)
    activations[..., 0] = flat.reshape(valid.shape)
    crafted = dataclasses.replace(explanation, factor_activations=activations.astype(np.float32))
    status = factor_status(crafted, CLAIMS)[0]
    assert CLAIMS.picks(54) == 20
    assert status.start_fraction == 0.5
    assert not status.marks_start


def test_the_third_null_is_drawn_at_a_p_value_exactly_at_the_level_under_its_own_seed(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills fact_control_17 (`>=`: a claim exactly at the level gets no control) and _33, _34,
    # _36, _47 (the strata test drawn over every factor, two-sided, unseeded or with seed + 4).
    from pytest_dreamer_audit.results.semantics import fact_control, other_facts
    from pytest_dreamer_audit.results.strata import confounder, strata_test

    explanation = _tracking(planted[0])
    valid = explanation.valid
    activations = explanation.factor_activations[valid]
    up = (explanation.fact("executed_action=up")[valid] != 0).astype(np.float64)
    test = factor_event_test(explanation, "executed_action=up", CLAIMS).test
    claimable = np.array([True, True, False])
    others = other_facts(explanation)
    p_values = np.array([0.2, CLAIMS.level, math.nan])
    at_level = dataclasses.replace(test, shift_p=p_values, swap_p=p_values)
    control = fact_control(
        "executed_action=up", up, activations, at_level, claimable, others, CLAIMS, one_sided=True
    )
    assert control is not None
    by = confounder("executed_action=up", activations[:, 1], others, up)
    assert by is not None
    assert control.by == by[0] == "collision_visible"
    expected = strata_test(
        activations, up, by, claimable, one_sided=True, draws=CLAIMS.draws, seed=CLAIMS.seed + 3
    )
    np.testing.assert_array_equal(control.p_values, expected.p_values)
    assert math.isnan(control.p_values[2])
    p_values = np.array([0.2, 0.1001, math.nan])
    above = dataclasses.replace(test, shift_p=p_values, swap_p=p_values)
    args = ("executed_action=up", up, activations, above, claimable, others, CLAIMS)
    assert fact_control(*args, one_sided=True) is None


def test_the_table_splits_an_action_fact_by_the_values_at_analysed_steps_only(
    planted: tuple[Explanation, np.ndarray],
) -> None:
    # Kills table_facts_1 (values taken over padding too), _19/_22/_23 (an action index with
    # no name, -1 or one past the last, looked up as a name): the table's executed_action rows.
    from pytest_dreamer_audit.results.semantics import table_facts

    explanation, _ = planted
    facts = explanation.facts.copy()
    column = explanation.fact_names.index("executed_action")
    facts[..., column] = 0  # noop everywhere ...
    facts[5, 1, column] = -1  # ... but one valid step with no action recorded
    facts[6, 2, column] = len(explanation.action_names)  # one past the last name
    facts[14, 1, column] = 2  # and "down" only at a padding step (episode 1 has 12 steps)
    assert not explanation.valid[14, 1]
    crafted = dataclasses.replace(explanation, facts=facts)
    names = [name for name, _, _ in table_facts(crafted) if name.startswith("executed_action")]
    assert names == ["executed_action=-1", "executed_action=noop", "executed_action=3"]
