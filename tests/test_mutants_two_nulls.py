"""Every claim against both nulls, checked piece by piece against the building blocks, written
against the mutants that survived ``tox -e mutation -- pytest_dreamer_audit/results/two_nulls.py``
(benchmarks/mutation.md): the seeds of the three draws, one-sided against two-sided, the exact
swap p-values, the swap null's mean over its defined draws and the effect's interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_dreamer_audit.results import bootstrap
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.episode_swaps import EpisodeSwaps
from pytest_dreamer_audit.results.nulls import (
    CircularShifts,
    average_ranks,
    max_adjusted,
    spearman_null,
)
from pytest_dreamer_audit.results.two_nulls import Nulls, _mean, graded_test, graded_tests


def _ragged(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 episodes of 12, 9, 12 and 7 analysed steps (padding after), 3 factors: factor 0
    rises with the fact, factor 1 falls with it, factor 2 is noise; the fact is 0/1."""
    rng = np.random.default_rng(seed)
    valid = np.arange(12)[:, None] < np.array([12, 9, 12, 7])[None, :]
    n = int(valid.sum())
    event = (rng.random(n) < 0.35).astype(np.float64)
    event[0] = 1.0  # a hit at step 0 of episode 0
    noise = rng.random((n, 3))
    activations = np.stack([noise[:, 0] + 2 * event, noise[:, 1] - 2 * event, noise[:, 2]], 1)
    return valid, activations, event


def test_the_three_draws_use_the_seed_plus_zero_one_and_two() -> None:
    valid = np.arange(10)[:, None] < np.array([10, 6, 8, 10, 4, 9])[None, :]
    claims = ClaimConfig(draws=199, bootstrap=50, seed=7)
    nulls = Nulls.draw(valid, claims)
    np.testing.assert_array_equal(nulls.shifts.shifts, CircularShifts.draw(valid, 199, 7).shifts)
    np.testing.assert_array_equal(nulls.swaps.perms, EpisodeSwaps.draw(valid, 199, 8).perms)
    np.testing.assert_array_equal(nulls.weights, bootstrap.episode_weights(6, 50, 9))
    assert nulls.weights.shape == (50, 6)
    np.testing.assert_array_equal(nulls.episode, np.nonzero(valid)[1])
    assert nulls.shifts.draws == 199
    assert not nulls.swaps.exact  # 6! = 720 > 199


@pytest.mark.parametrize("one_sided", [False, True])
def test_each_fact_is_the_building_blocks_put_together(one_sided: bool) -> None:
    valid, activations, event = _ragged(seed=3)
    nulls = Nulls.draw(valid, ClaimConfig(draws=999, bootstrap=200, seed=1))
    assert nulls.swaps.exact  # 4! = 24 <= 999: every pairing, once
    claimable = np.array([True, True, False])
    test = graded_test(nulls, activations, event, claimable, one_sided)
    rho, shifted = spearman_null(activations, event, nulls.shifts)
    _, swapped = spearman_null(activations, event, nulls.swaps)
    side = (lambda x: x) if one_sided else np.abs
    shift_p, shift_q95 = max_adjusted(side(rho), side(shifted), claimable)
    swap_p, swap_q95 = max_adjusted(side(rho), side(swapped), claimable, exact=True)
    np.testing.assert_allclose(test.values, rho)
    np.testing.assert_allclose(test.shift_p, shift_p, equal_nan=True)
    np.testing.assert_allclose(test.swap_p, swap_p, equal_nan=True)
    assert test.shift_q95 == pytest.approx(shift_q95)
    assert test.swap_q95 == pytest.approx(swap_q95)
    np.testing.assert_allclose(test.p_values, np.maximum(shift_p, swap_p), equal_nan=True)
    centre = np.nanmean(swapped, axis=0)
    np.testing.assert_allclose(test.effects, rho - centre)
    resampled = bootstrap.weighted_spearman(
        average_ranks(activations), average_ranks(event[:, None]), nulls.episode, nulls.weights
    )[:, 0]
    low, high = bootstrap.interval(resampled, centre)
    np.testing.assert_allclose(test.effect_low, low)
    np.testing.assert_allclose(test.effect_high, high)
    # Real values: factor 0 rises with the event, factor 1 falls, factor 2 claims nothing.
    assert rho[0] > 0.5 > -0.5 > rho[1]
    assert math.isnan(test.p_values[2])
    assert test.effect_low[0] < test.effects[0] < test.effect_high[0]
    # The exact swap p-value of the best factor is its rank among the 24 pairings (>= 1/24).
    assert test.swap_p[0] == pytest.approx(1 / 24)
    if one_sided:  # only "higher where the event holds" counts: the falling factor is no find
        assert test.p_values[0] < 0.05 < test.p_values[1]
    else:  # |rho|: both directions are finds
        assert max(test.p_values[0], test.p_values[1]) < 0.05


def test_several_facts_at_once_equal_one_at_a_time() -> None:
    valid, activations, event = _ragged(seed=5)
    graded = activations[:, 2] + np.random.default_rng(0).random(len(event))
    values = np.stack([event, graded], axis=1)
    nulls = Nulls.draw(valid, ClaimConfig(draws=199, bootstrap=100, seed=2))
    claimable = np.ones(3, dtype=bool)
    both = graded_tests(nulls, activations, values, claimable, [True, False])
    for f, single in enumerate([True, False]):
        alone = graded_test(nulls, activations, values[:, f], claimable, single)
        for field in ("values", "shift_p", "swap_p", "effects", "effect_low", "effect_high"):
            np.testing.assert_allclose(getattr(both[f], field), getattr(alone, field))
        assert both[f].shift_q95 == pytest.approx(alone.shift_q95)
        assert both[f].swap_q95 == pytest.approx(alone.swap_q95)


def test_the_swap_nulls_mean_skips_undefined_draws() -> None:
    # Columns: two defined draws, none, two (mean 0), exactly one.
    null = np.array(
        [[1.0, np.nan, 0.5, np.nan], [3.0, np.nan, np.nan, -0.25], [np.nan, np.nan, -0.5, np.nan]]
    )
    np.testing.assert_allclose(_mean(null), [2.0, np.nan, 0.0, -0.25], equal_nan=True)
