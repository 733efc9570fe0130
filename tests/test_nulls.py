"""The nulls behind every claim: circular shifts, p-values, maxT, Holm, Spearman under shifts,
and the two worlds that decide whether a claim means anything (a true effect is found; pure
noise makes claims no more often than the level)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata, spearmanr

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.claims import claims_table
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.nulls import (
    CircularShifts,
    average_ranks,
    holm,
    max_adjusted,
    p_value,
    spearman_columns,
    spearman_null,
)
from pytest_dreamer_audit.results.semantics import fact_associations
from pytest_dreamer_audit.testing import fake_explanation

masks = st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).random((9, 4)) < 0.7)


@given(masks, st.integers(0, 1000))
@settings(max_examples=40, deadline=None)
def test_every_draw_moves_values_only_within_their_episode(valid: np.ndarray, seed: int) -> None:
    shifts = CircularShifts.draw(valid, draws=7, seed=seed)
    n = int(valid.sum())
    source = shifts.source(np.arange(n))  # [7, n]
    episode = np.nonzero(valid)[1]
    for row in source:
        assert sorted(row.tolist()) == list(range(n))  # a permutation of the valid observations
        np.testing.assert_array_equal(episode[row], episode)  # that never leaves an episode
    values = np.random.default_rng(seed).random(n)
    for b in range(valid.shape[1]):  # and is a rotation of the episode's sequence
        mine = episode == b
        for d, row in enumerate(source):
            expected = np.roll(values[mine], shifts.shifts[d, b])
            np.testing.assert_array_equal(values[row][mine], expected)


def test_shifts_are_seeded_and_refuse_bad_input() -> None:
    valid = np.ones((5, 3), dtype=bool)
    first = CircularShifts.draw(valid, 11, seed=4).shifts
    np.testing.assert_array_equal(first, CircularShifts.draw(valid, 11, seed=4).shifts)
    assert not np.array_equal(first, CircularShifts.draw(valid, 11, seed=5).shifts)
    assert first.min() >= 0
    assert first.max() <= 4
    with pytest.raises(ConfigError, match="at least 1 draw"):
        CircularShifts.draw(valid, 0)
    with pytest.raises(ConfigError, match=r"\[steps, episodes\] mask"):
        CircularShifts.draw(np.ones(4, dtype=bool))
    with pytest.raises(
        ConfigError, match="^valid has no episodes: a null shifts each episode's own steps$"
    ):
        CircularShifts.draw(np.ones((4, 0), dtype=bool))


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=50),
    st.floats(0, 1) | st.just(math.nan),
    st.randoms(use_true_random=False),
)
def test_p_values_lie_in_zero_one_and_ignore_the_order_of_the_draws(
    null: list[float], observed: float, rng: object
) -> None:
    p = float(p_value(observed, np.asarray(null)))
    shuffled = list(null)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    if math.isnan(observed):
        assert math.isnan(p)
        return
    assert 1 / (len(null) + 1) <= p <= 1.0
    assert p == float(p_value(observed, np.asarray(shuffled)))
    # a draw within float noise (1e-12) of the observation counts as at least as extreme
    assert p == (1 + sum(v >= observed - 1e-12 for v in null)) / (len(null) + 1)


def test_holm_matches_the_hand_computation() -> None:
    p = np.array([0.01, 0.04, math.nan, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 with multipliers 4, 3, 2, 1, kept monotone
    np.testing.assert_allclose(holm(p), [0.04, 0.09, math.nan, 0.09, 0.5])
    assert np.isnan(holm([math.nan, math.nan])).all()
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]


@given(st.lists(st.floats(1e-4, 1), min_size=1, max_size=20))
def test_holm_never_lowers_a_p_value_and_keeps_their_order(raw: list[float]) -> None:
    adjusted = holm(raw)
    assert (adjusted >= np.asarray(raw) - 1e-12).all()
    assert (adjusted <= 1).all()
    order = np.argsort(raw, kind="stable")
    assert (np.diff(adjusted[order]) >= -1e-12).all()


def test_max_adjusted_compares_each_factor_with_the_best_of_the_claimable_ones() -> None:
    observed = np.array([0.9, 0.5, 0.95])
    null = np.array([[0.1, 0.6, 0.99], [0.2, 0.3, 0.99], [0.8, 0.1, 0.99], [0.4, 0.2, 0.99]])
    adjusted, q95 = max_adjusted(observed, null, np.array([True, True, False]))
    # Factor 2 makes no claims: its (high) null does not count, and it gets no p-value.
    np.testing.assert_allclose(adjusted, [1 / 5, 3 / 5, math.nan])  # 0.9 beats all; 0.5 two
    assert q95 == pytest.approx(np.quantile([0.6, 0.3, 0.8, 0.4], 0.95))
    everyone, _ = max_adjusted(observed, null)
    np.testing.assert_allclose(everyone, [1.0, 1.0, 1.0])  # the 0.99 draws beat them all
    nobody, q = max_adjusted(observed, null, np.zeros(3, dtype=bool))
    assert np.isnan(nobody).all()
    assert math.isnan(q)


def test_spearman_under_shifts_is_scipys_spearman_of_the_shifted_values() -> None:
    rng = np.random.default_rng(0)
    valid = rng.random((15, 3)) < 0.9
    n = int(valid.sum())
    activations = rng.random((n, 2))
    activations[:5, 1] = 0.5  # ties
    values = rng.integers(0, 4, n).astype(float)  # many ties
    shifts = CircularShifts.draw(valid, 5, seed=1)
    observed, null = spearman_null(activations, values, shifts)
    for j in range(2):
        assert observed[j] == pytest.approx(spearmanr(activations[:, j], values).statistic)
        for d in range(5):
            moved = values[shifts.source(np.arange(n))[d]]
            assert null[d, j] == pytest.approx(spearmanr(activations[:, j], moved).statistic)
    np.testing.assert_allclose(spearman_columns(activations, values), observed)
    assert np.isnan(spearman_columns(activations, np.ones(n))).all()


# --- the two worlds ------------------------------------------------------------------------------


def _world(seed: int, signal: float) -> Explanation:
    """16 episodes x 50 steps, 10 factors whose activations drift like a random walk (time
    structure a naive null would mistake for signal), and an event that comes in runs. With
    ``signal`` > 0, factor 3 is uniform noise in [0, 1] plus ``signal`` where the event holds."""
    rng = np.random.default_rng(seed)
    base = fake_explanation(steps=50, episodes=16, rank=10, top_k=5, seed=seed)
    steps, episodes, rank = base.factor_activations.shape
    walk = np.cumsum(rng.normal(size=(steps, episodes, rank)), axis=0)
    activations = np.exp(0.3 * walk)
    starts = rng.random((steps, episodes)) < 0.04
    event = np.zeros((steps, episodes), dtype=bool)
    for offset in range(3):  # runs of 3 steps
        event[offset:] |= starts[: steps - offset]
    if signal:
        activations[..., 3] = rng.random((steps, episodes)) + signal * event
    facts = base.facts.copy()
    names = base.fact_names
    facts[..., names.index("collision")] = 0
    facts[:-1, :, names.index("collision")] = event[1:]  # seen as collision_visible at t
    facts[..., names.index("chicken_row")] = rng.integers(0, 10, (steps, episodes))
    return dataclasses.replace(base, factor_activations=activations.astype(np.float32), facts=facts)


def test_a_factor_that_truly_marks_an_event_is_found_with_a_small_p_value() -> None:
    table = {row.name: row for row in fact_associations(_world(seed=1, signal=0.6))}
    row = table["collision_visible"]
    assert row.claim == 3
    assert row.p_values[3] <= 0.01  # 0.008: the smallest maxT p (0.001) times Holm's 8 facts
    assert row.per_factor[3] > row.null_q95 > row.base_rate
    # Nothing else is claimed for it, and the unrelated facts claim nothing.
    assert [j for j, yes in enumerate(row.significant) if yes] == [3]
    assert table["chicken_row"].claim == -1


def test_a_world_of_noise_makes_claims_no_more_often_than_the_level() -> None:
    # Any claim of any factor about any fact counts as a false positive of its explanation.
    claims = ClaimConfig(draws=199)
    worlds = 120
    false = sum(
        any(row.claim >= 0 for row in claims_table(_world(seed, 0.0), claims).facts)
        for seed in range(100, 100 + worlds)
    )
    # Measured: 4 of 120 worlds (3.3%) at level 0.05. The bound is the level plus three binomial
    # standard deviations (0.05 + 3 * 0.020): the family-wise control must hold.
    assert false / worlds <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / worlds)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 4, 1000]),
)
def test_ranks_equal_scipy_rankdata_with_ties(
    rows: int, columns: int, seed: int, levels: int
) -> None:
    values = np.random.default_rng(seed).integers(0, levels, (rows, columns)).astype(float)
    np.testing.assert_array_equal(average_ranks(values), rankdata(values, axis=0))


def test_ranks_of_a_column_with_nan_are_nan_and_other_columns_are_kept() -> None:
    values = np.array([[1.0, 3.0], [np.nan, 1.0], [2.0, 1.0]])
    ranks = average_ranks(values)
    assert np.isnan(ranks[:, 0]).all()
    np.testing.assert_array_equal(ranks[:, 1], [3.0, 1.5, 1.5])


def test_untested_facts_read_no_uninitialised_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # fact_rows ranked the tested facts into np.empty and read the untested ones' garbage: with
    # INT64_MIN there the multiplier overflowed (a RuntimeWarning, an error under -W error).
    # Every np.empty is poisoned here; the rows must not change and nothing may warn.
    world = _world(seed=1, signal=0.6)
    clean = fact_associations(world)
    untested = [row.name for row in clean if np.isnan(row.p_values).all()]
    assert untested  # facts no factor can be tested on (constant over the valid steps)
    real_empty = np.empty

    def poisoned(shape: Any, dtype: Any = float, **kwargs: Any) -> np.ndarray:
        out = real_empty(shape, dtype=dtype, **kwargs)
        out.fill(np.iinfo(out.dtype).min if out.dtype.kind in "iu" else np.nan)
        return out

    monkeypatch.setattr(np, "empty", poisoned)
    again = fact_associations(world)
    np.testing.assert_equal(
        [dataclasses.asdict(r) for r in again], [dataclasses.asdict(r) for r in clean]
    )
