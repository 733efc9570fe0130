from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.claims import score_event_test
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.results.semantics import (
    FactAssociation,
    event_mask,
    fact_associations,
    fact_values,
    factor_event_precision,
    factor_fact_spearman,
    factor_highlights,
)
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    agent = tiny_agent(seed=2)
    trajectory = run_rollouts(agent, "freeway", episodes=4, steps=12, seed=1)
    return explain(trajectory, ExplainConfig(rank=3, top_k=3, stability_refits=0))


@pytest.fixture
def crafted(explanation: Explanation) -> Explanation:
    """Factor 0 rises with (step, episode), factor 1 falls with it, factor 2 is constant; the
    last two steps of episode 0 are padding, with activations that would spoil every measure."""
    steps, episodes = explanation.valid.shape
    valid = np.ones((steps, episodes), dtype=bool)
    valid[-2:, 0] = False
    step = np.broadcast_to(np.arange(steps, dtype=np.float64)[:, None], (steps, episodes))
    order = step + 0.01 * np.arange(episodes)
    activations = np.stack([order, -order, np.ones_like(step)], -1)
    activations[~valid] = [1e6, 1e6, 5.0]
    return dataclasses.replace(
        explanation, valid=valid, factor_activations=activations.astype(np.float32)
    )


def test_event_precision_counts_each_factors_most_exciting_valid_observations(
    crafted: Explanation,
) -> None:
    late = np.zeros(crafted.valid.shape, dtype=bool)
    late[-3:] = True  # the last 3 steps of every episode (2 of them padding in episode 0)
    # Factor 0's top 10 valid observations: steps 11 (3 episodes), 10 (3), 9 (4) -> all late.
    # Factor 1's: steps 0, 1 and the last two episodes of step 2 -> none. Factor 2 is constant:
    # the stable sort keeps time-major order, so its top 10 are steps 0-2, none late.
    np.testing.assert_allclose(factor_event_precision(crafted, late, 10), [1.0, 0.0, 0.0])
    # k = 11 reaches step 8 for factor 0: 10 of 11 are late.
    np.testing.assert_allclose(factor_event_precision(crafted, late, 11), [10 / 11, 0.0, 0.0])


def test_event_precision_at_top_k_is_the_gallerys_examples(explanation: Explanation) -> None:
    mask = explanation.fact("chicken_row") == explanation.fact("chicken_row").max()
    expected = [
        np.mean([mask[t, b] for t, b in explanation.factor_examples[j]])
        for j in range(explanation.rank)
    ]
    np.testing.assert_allclose(factor_event_precision(explanation, mask, 3), expected)


def test_fact_spearman_per_factor_over_valid_steps(crafted: Explanation) -> None:
    rank = np.arange(48).reshape(12, 4)  # time-major: the order of factor 0's activations
    rho = factor_fact_spearman(crafted, rank)
    assert rho[0] == pytest.approx(1.0)  # exactly monotone once the padding is left out
    assert rho[1] == pytest.approx(-1.0)
    assert math.isnan(rho[2])
    assert np.isnan(factor_fact_spearman(crafted, np.zeros(crafted.valid.shape))).all()
    # The name of a recorded fact works as well as an array of it.
    by_name = factor_fact_spearman(crafted, "chicken_row")
    by_array = factor_fact_spearman(crafted, crafted.fact("chicken_row"))
    np.testing.assert_array_equal(by_name, by_array)


def test_resolving_events_and_facts_refuses_what_does_not_fit(explanation: Explanation) -> None:
    shape = explanation.valid.shape
    assert event_mask(explanation, lambda e: e.fact("collision") > 0).dtype == bool
    assert fact_values(explanation, "chicken_row").dtype == np.float64
    with pytest.raises(
        ConfigError, match=r"a fact must be a \[steps, episodes\] = \(12, 4\) array"
    ):
        fact_values(explanation, np.zeros(3))
    with pytest.raises(ConfigError, match="a fact must hold numbers, got an array of dtype <U1"):
        fact_values(explanation, np.full(shape, "x"))
    with pytest.raises(ConfigError, match="records no fact 'lives'"):
        factor_fact_spearman(explanation, "lives")
    nan_row = fact_values(explanation, "chicken_row").copy()
    nan_row[0, 0] = math.nan
    with pytest.raises(ConfigError, match="but 1 valid steps hold NaN or infinity"):
        factor_fact_spearman(explanation, nan_row)
    padded = dataclasses.replace(explanation, valid=explanation.valid.copy())
    padded.valid[0, 0] = False  # the same NaN on a padding row is ignored
    assert np.isfinite(factor_fact_spearman(padded, nan_row)).any()
    assert factor_event_precision(explanation, "collision", np.int64(2)).shape == (3,)
    for k in (0, 49, True, 2.0):
        with pytest.raises(ConfigError, match=r"k must be an integer from 1 to 48 .*got"):
            factor_event_precision(explanation, "collision", k)  # type: ignore[arg-type]


def test_some_factor_coincides_passes_with_the_best_factor_and_fails_with_all(
    explanation: Explanation, crafted: Explanation
) -> None:
    # Random activations: factor 0's ten best observations, whatever their steps, are the event.
    rng = np.random.default_rng(7)
    activations = rng.random((12, 4, 3)).astype(np.float32)
    noisy = dataclasses.replace(explanation, factor_activations=activations)
    top = np.argsort(-activations[..., 0].reshape(-1), kind="stable")[:10]
    own = np.zeros(48, dtype=bool)
    own[top] = True
    own = own.reshape(12, 4)
    match = A.assert_some_factor_coincides(noisy, own, min_precision=0.9, k=10)
    assert match == A.FactorMatch(0, 1.0)
    # Factor 0 of the crafted explanation rises with the step: its picks are the last steps
    # of every episode, and so is this event. The circular shift calls that a finding; the
    # same steps of other episodes hit it as often, so it is the step's, not the event's.
    late = np.zeros(crafted.valid.shape, dtype=bool)
    late[-3:] = True
    with pytest.raises(
        AssertionError,
        match=r"the best, factor 0, in 100\.0%, not beyond chance at level 0\.05: it beats "
        r"circular shifts \(p = 0\.001\) but not the facts of other episodes at the same "
        r"steps, so the step explains it \(time\)",
    ):
        A.assert_some_factor_coincides(crafted, late, min_precision=0.9, k=10)
    middle = np.zeros(crafted.valid.shape, dtype=bool)
    middle[8:10] = True  # 8 of 46 valid steps; factor 0's top 10 hold the 4 of step 9
    # Factors 1 and 2 pick the first steps of their episodes: they make no claims.
    with pytest.raises(
        AssertionError,
        match=r"no factor's top-10 observations coincide with the event enough: the best, "
        r"factor 0, in 40\.0%, below the required 50\.0% \(base rate 17\.4%; tested on the rank "
        r"correlation of its activation with the event, \+0\.449 against best-of-factors null "
        r"95% quantiles [+-]\d\.\d{3} \(circular shifts\) and [+-]\d\.\d{3} \(other episodes\), "
        r"p = [\d.e-]+; effect [+-]\d\.\d{3} \[.*\] over other episodes; per factor: 0: 40\.0%, "
        r"1: 0\.0%, 2: 0\.0%; making no claims: 1 episode start \(100% of picks\); 2 episode "
        r"start \(100% of picks\)\)\nEvidence: /e",
    ):
        A.assert_some_factor_coincides(crafted, middle, min_precision=0.5, k=10, evidence="/e")
    # 4 episodes have 24 pairings: no p-value below 1/24, so level 0.001 is refused outright.
    with pytest.raises(
        AssertionError,
        match=r"cannot claim anything at level 0\.001: 4 episode\(s\) give the episode-swap "
        r"null .* at most 24 pairings, so no p-value can go below 1/24 = 0\.0417, above the "
        r"level 0\.001; record at least 7 episodes \(--dreamer-episodes\)",
    ):
        A.assert_some_factor_coincides(crafted, middle, min_precision=0.4, k=10, level=0.001)


def test_some_factor_tracks_passes_with_the_signed_correlation(crafted: Explanation) -> None:
    falling = -np.arange(48.0).reshape(12, 4)
    match = A.assert_some_factor_tracks(crafted, falling, min_abs_spearman=0.99)
    # Factors 0 and 1 both reach |rho| = 1 (mirror images), but factor 1's top picks are the
    # episode start, so factor 0 is named, with its sign: its activation falls as the fact rises.
    assert match.factor == 0
    assert match.value == pytest.approx(-1.0)
    with pytest.raises(
        AssertionError,
        match=r"no factor tracks 'chicken_row': the best, factor 0, has Spearman [+-]\d\.\d{3}, "
        r"below the required \|rho\| >= 1\.000 \(best-of-factors null 95% quantiles of "
        r"\|rho\| \d\.\d{3} \(circular shifts\) and \d\.\d{3} \(other episodes\), p = "
        r"[\d.e-]+; effect .* over other episodes; per factor: 0: [+-]\d\.\d{3}, 1: .*, 2: n/a; "
        r"making no claims",
    ):
        A.assert_some_factor_tracks(crafted, "chicken_row", min_abs_spearman=1.0)
    with pytest.raises(AssertionError, match="constant over the valid steps"):
        A.assert_some_factor_tracks(crafted, np.ones(crafted.valid.shape), min_abs_spearman=0.1)


def test_fact_associations_apply_the_measure_that_fits_each_fact(
    explanation: Explanation,
) -> None:
    rows = {row.name: row for row in fact_associations(explanation)}
    names = list(rows)
    # In the game's order; the categorical fact split into one event per action that ran.
    executed = explanation.fact("executed_action")[explanation.valid]
    ran = [f"executed_action={explanation.action_names[a]}" for a in np.unique(executed)]
    assert names == [
        "chicken_row",
        "move_ready",
        "car_adjacent",
        "up_hits",
        *ran,
        "sticky",
        "collision_visible",  # the transition facts an observation can show, as it shows them
        "scored_visible",
    ]
    row = rows["chicken_row"]
    assert (row.kind, row.k) == ("graded", 0)
    assert math.isnan(row.base_rate)
    # the table ranks every fact in one pass: the same values up to float rounding
    np.testing.assert_allclose(
        row.per_factor, factor_fact_spearman(explanation, "chicken_row"), rtol=1e-12, atol=1e-15
    )
    row = rows["car_adjacent"]
    assert (row.kind, row.k) == ("event", 20)  # ClaimConfig's k
    np.testing.assert_array_equal(
        row.per_factor, factor_event_precision(explanation, "car_adjacent", 20)
    )
    mask = explanation.fact("car_adjacent") != 0
    assert row.base_rate == pytest.approx(mask[explanation.valid].mean())
    first = ran[0]
    action = explanation.action_names.index(first.split("=")[1])
    np.testing.assert_array_equal(
        rows[first].per_factor,
        factor_event_precision(explanation, explanation.fact("executed_action") == action, 20),
    )
    # k is capped at the number of valid observations; without valid steps there is no table.
    assert {r.k for r in fact_associations(explanation, k=10_000) if r.kind == "event"} == {48}
    empty = dataclasses.replace(explanation, valid=np.zeros_like(explanation.valid))
    assert fact_associations(empty) == []


def test_fact_association_best_factor_and_json() -> None:
    event = FactAssociation("collision", "event", (0.2, 0.6, math.nan), 0.1, 5)
    graded = FactAssociation("chicken_row", "graded", (0.1, -0.4, 0.3), math.nan, 0)
    undefined = FactAssociation("x", "graded", (math.nan, math.nan), math.nan, 0)
    assert (event.best_factor, graded.best_factor, undefined.best_factor) == (1, 1, -1)
    assert graded.to_json() == {
        "name": "chicken_row",
        "kind": "graded",
        "per_factor": [0.1, -0.4, 0.3],
        "base_rate": None,
        "k": 0,
        "null_q95": None,
        "p_values": [None, None, None],
        "level": 0.05,
        "swap_q95": None,
        "shift_p_values": [None, None, None],
        "effects": [None, None, None],
        "effect_low": [None, None, None],
        "effect_high": [None, None, None],
        "correlations": [None, None, None],
        "uncontrolled_p_values": [None, None, None],
        "controlled_for": "",
    }
    assert event.to_json()["per_factor"] == [0.2, 0.6, None]
    assert FactAssociation.from_json(event.to_json()).per_factor[:2] == (0.2, 0.6)
    assert FactAssociation.from_json(event.to_json()) == event or math.isnan(event.base_rate)
    with pytest.raises(ValueError, match="1 p_values for 3 factors"):
        FactAssociation.from_json({**event.to_json(), "p_values": [0.5]})


@given(st.integers(0, 10_000), st.integers(1, 48))
@settings(max_examples=30, deadline=None)
def test_event_precision_is_the_hit_rate_of_each_factors_k_best_and_ignores_episode_order(
    explanation: Explanation, seed: int, k: int
) -> None:
    rng = np.random.default_rng(seed)
    base = explanation
    # 48 distinct values per factor, 1 apart: no two within the tie tolerance
    activations = np.stack([rng.permutation(48) + 1.0 for _ in range(3)], -1)
    activations = activations.reshape(12, 4, 3).astype(np.float32)
    valid = rng.random((12, 4)) < 0.8
    valid[0] = True  # at least 4 valid observations
    mask = rng.random((12, 4)) < 0.3
    e = dataclasses.replace(base, factor_activations=activations, valid=valid)
    count = int(valid.sum())
    width = min(k, count)
    precision = factor_event_precision(e, mask, width)
    for j in range(3):
        ranked = sorted(zip(activations[..., j][valid], mask[valid], strict=True), reverse=True)
        assert precision[j] == pytest.approx(np.mean([hit for _, hit in ranked[:width]]))
    order = rng.permutation(4)
    shuffled = dataclasses.replace(
        base, factor_activations=activations[:, order], valid=valid[:, order]
    )
    np.testing.assert_allclose(factor_event_precision(shuffled, mask[:, order], width), precision)


def test_factor_highlights_name_only_significant_claims() -> None:
    significant, not_significant = (0.01, 0.01), (0.2, 0.2)
    rows = [
        FactAssociation("common", "event", (1.0, 0.99), 0.95, 5, 0.97, significant),
        FactAssociation("rare", "event", (0.4, 0.0), 0.01, 5, 0.2, significant),  # +0.39, -0.01
        FactAssociation("loud", "event", (0.9, 0.9), 0.1, 5, 0.5, not_significant),
        FactAssociation("row", "graded", (0.1, -0.5), math.nan, 0, 0.3, significant),
        FactAssociation("speed", "graded", (-0.3, math.nan), math.nan, 0, 0.3, (0.01, math.nan)),
    ]
    assert factor_highlights(rows, 0) == (rows[1], rows[4])  # |-0.3| > |0.1|
    # Factor 1: "rare" is significant but below its base rate (it avoids the event), "loud" is
    # high but not significant, "common" is the only event above chance.
    assert factor_highlights(rows, 1) == (rows[0], rows[3])
    assert factor_highlights([], 0) == (None, None)
    assert rows[2].claim == -1
    assert rows[1].claim == 0
    assert rows[3].claim == 1
    with pytest.raises(
        ConfigError, match=r"factor 2 is out of range: 'common' has values for factors 0 to 1"
    ):
        factor_highlights(rows, 2)


def _own_steps(episodes: int) -> np.ndarray:
    """Three steps of 40 per rollout, no two rollouts sharing one: ``[B, 3]``."""
    return np.array([[2 + 6 * b, 3 + 6 * b, 4 + 6 * b] for b in range(episodes)])


def test_score_event_test_finds_picks_planted_on_an_event_and_not_on_chance() -> None:
    """Top picks placed on each rollout's own event steps (3 of 40, different per rollout) beat
    both nulls; the same picks against an unrelated event are at chance; and an event at the
    same steps of every rollout, which the picks' timing alone explains, is "time"."""
    from pytest_dreamer_audit.testing import fake_explanation

    e = fake_explanation(steps=40, episodes=6, top_k=3, seed=3)
    own = _own_steps(6)
    event = np.zeros(e.valid.shape, dtype=bool)
    event[own.T, np.arange(6)] = True  # [L, B]: each rollout's own three steps
    planted = dataclasses.replace(e, top_observations=own)
    found = score_event_test(planted, event)
    assert found.precision == 1.0
    assert found.base_rate == pytest.approx(3 / 40)
    # 720 pairings enumerated: only the identity pairs every pick with an event; Holm over
    # the two directions doubles it.
    assert found.p_above == pytest.approx(2 / 720)
    assert found.null_q95 < 0.5
    # No other rollout has an event at these steps, so a pairing scores the share of episodes
    # it leaves in place: 3 of 6 or more in 56 of the 720 pairings (7.8%), 2 in 135 more.
    assert found.swap_q95 == 0.5
    assert found.verdict() == "above"
    assert not found.time_only
    assert found.effect_low <= found.effect <= found.effect_high
    assert found.effect > 0.8
    assert found.level == 0.05
    unrelated = np.zeros(e.valid.shape, dtype=bool)
    unrelated[[0, 1, 39]] = True  # no rollout picks these steps
    chance = score_event_test(planted, unrelated)
    assert chance.precision == 0.0
    assert chance.p_above == 1.0
    assert chance.null_q05 <= chance.base_rate <= chance.null_q95
    shared = np.zeros(e.valid.shape, dtype=bool)
    shared[[5, 17, 30]] = True  # every rollout's steps 5, 17, 30
    timed = score_event_test(
        dataclasses.replace(e, top_observations=np.tile([5, 17, 30], (6, 1))), shared
    )
    assert timed.precision == 1.0
    assert timed.shift_p_above <= 0.01  # what the circular shift alone used to claim
    assert timed.p_above == 1.0  # every pairing of episodes gives the same precision
    assert (timed.verdict(), timed.time_only) == ("chance", True)


def test_score_event_test_verdict_uses_the_configured_level() -> None:
    from pytest_dreamer_audit.testing import fake_explanation

    e = fake_explanation(steps=40, episodes=6, top_k=3, seed=3)
    own = _own_steps(6)
    event = np.zeros(e.valid.shape, dtype=bool)
    event[own.T, np.arange(6)] = True
    picks = own.copy()
    picks[:, 2] = 2  # two of three picks on the event
    planted = dataclasses.replace(e, top_observations=picks)
    loose = score_event_test(planted, event, ClaimConfig(level=0.2))
    strict = score_event_test(planted, event, ClaimConfig(level=1e-9))
    assert (loose.level, strict.level) == (0.2, 1e-9)
    assert loose.p_above == strict.p_above <= 0.2
    assert (loose.verdict(), strict.verdict()) == ("above", "chance")
