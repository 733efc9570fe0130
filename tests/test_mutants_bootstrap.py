"""The episode bootstrap (``results/bootstrap.py``) pinned value by value, against the mutants
that survived ``python tests/run_mutation.py pytest_dreamer_audit/results/bootstrap.py --tests
...`` (issue 35): the seeded draw counts, resampled means computed by hand (a resample that
drew one pick, none, or fractional weights), the resampled Spearman against the Pearson
correlation of the rank rows repeated by their episode's count (``scipy.stats.spearmanr`` for
the identity resample), its constant-side threshold at exactly ``1e-9``, ranks far from zero,
and the percentile interval's exact quantiles, per column, in float64, NaN columns silent."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from pytest_dreamer_audit.results import bootstrap

# ---- episode_weights -------------------------------------------------------------------------


def test_episode_weights_count_the_seeded_draws_of_every_episode() -> None:
    # kills episode_weights_10 (episode 0 never drawn), _20 (each draw counted twice)
    weights = bootstrap.episode_weights(5, 40, seed=11)
    draws = np.random.default_rng(11).integers(0, 5, size=(40, 5))
    expected = np.stack([np.bincount(row, minlength=5) for row in draws]).astype(np.float64)
    np.testing.assert_array_equal(weights, expected)
    assert weights.dtype == np.float64
    np.testing.assert_array_equal(weights.sum(axis=1), np.full(40, 5.0))
    assert weights[:, 0].sum() > 0  # the first episode is drawn too


# ---- weighted_means --------------------------------------------------------------------------

# 5 picks of 2 factors over 3 episodes. Factor 0: picks from episodes 0, 0, 1, 2, 2; factor 1:
# from 0, 1, 1, 0, 1 (none from episode 2).
_HITS = np.array([[1, 0], [0, 1], [1, 1], [1, 1], [0, 0]])
_EPISODE = np.array([[0, 0], [0, 1], [1, 1], [2, 0], [2, 1]])
_WEIGHTS = np.array(
    [
        [1.0, 1.0, 1.0],  # every episode once
        [0.0, 0.0, 3.0],  # episode 2 only: factor 1 drew no pick
        [2.0, 1.0, 0.0],
        [0.0, 1.0, 0.0],  # episode 1 once: factor 0 drew a single pick
        [0.0, 0.0, 0.0],  # nothing drawn
    ]
)


def _means_by_hand(hits: np.ndarray, episode: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each resample's weighted mean of each factor's hits, one pick at a time."""
    out = np.full((weights.shape[0], hits.shape[1]), np.nan)
    for r, row in enumerate(weights):
        for j in range(hits.shape[1]):
            w = row[episode[:, j]]
            if w.sum() > 0:
                out[r, j] = float((w * hits[:, j]).sum() / w.sum())
    return out


def test_weighted_means_are_the_hand_computed_means_and_nan_where_nothing_was_drawn() -> None:
    # kills weighted_means_28 (every pick counted in every episode), _45 (None, not NaN), _49
    # (nothing drawn reads 0), _50 (a single drawn pick reads NaN), _51 (times the count), _52
    # (total not divided)
    means = bootstrap.weighted_means(_HITS, _EPISODE, _WEIGHTS)
    assert means.dtype == np.float64
    np.testing.assert_allclose(means, _means_by_hand(_HITS, _EPISODE, _WEIGHTS), rtol=1e-12)
    expected = np.array(
        [
            [3 / 5, 3 / 5],
            [1 / 2, np.nan],
            [3 / 5, (2 * 0 + 1 + 1 + 2 * 1 + 0) / (2 + 1 + 1 + 2 + 1)],
            [1.0, 2 / 3],
            [np.nan, np.nan],
        ]
    )
    np.testing.assert_allclose(means, expected, rtol=1e-12)


def test_weighted_means_do_not_depend_on_the_scale_of_the_weights() -> None:
    # kills weighted_means_59 (a resample that drew less than one pick's worth is not divided)
    scaled = bootstrap.weighted_means(_HITS, _EPISODE, 0.25 * _WEIGHTS)
    np.testing.assert_allclose(scaled, bootstrap.weighted_means(_HITS, _EPISODE, _WEIGHTS))
    assert scaled[3, 0] == 1.0  # one pick drawn with weight 0.25, and it hit


# ---- weighted_spearman -----------------------------------------------------------------------


def _steps() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """14 steps of 4 episodes (5, 3, 4 and 2 steps); 2 factors' activations (ties in the
    second), 2 facts: a 0/1 one that never happens in episode 3, and a count."""
    rng = np.random.default_rng(5)
    episode = np.repeat(np.arange(4), [5, 3, 4, 2])
    activations = np.stack([rng.random(14), np.round(rng.random(14), 1)], axis=1)
    facts = np.stack([(rng.random(14) < 0.5).astype(np.float64), rng.integers(0, 4, 14)], 1)
    facts[episode == 3, 0] = 0.0
    facts[0, 0], facts[5, 0] = 1.0, 1.0
    ranks_a = np.stack([stats.rankdata(activations[:, j]) for j in range(2)], axis=1)
    ranks_v = np.stack([stats.rankdata(facts[:, f]) for f in range(2)], axis=1)
    return activations, facts, ranks_a, ranks_v, episode


def _spearman_by_repetition(
    ranks_a: np.ndarray, ranks_v: np.ndarray, episode: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Each resample's Pearson correlation of the rank rows repeated by their episode's count;
    NaN where one side is constant."""
    out = np.full((weights.shape[0], ranks_v.shape[1], ranks_a.shape[1]), np.nan)
    for r, row in enumerate(weights):
        repeated = np.repeat(np.arange(len(episode)), row[episode].astype(np.int64))
        for f in range(ranks_v.shape[1]):
            for j in range(ranks_a.shape[1]):
                x, y = ranks_a[repeated, j], ranks_v[repeated, f]
                if np.ptp(x) > 0 and np.ptp(y) > 0:
                    out[r, f, j] = np.corrcoef(x, y)[0, 1]
    return out


_SPEARMAN_WEIGHTS = np.vstack(
    [
        np.ones((1, 4)),  # the sample itself
        [[0.0, 0.0, 0.0, 3.0]],  # episode 3 only: the 0/1 fact is constant there
        [[2.0, 0.0, 1.0, 1.0]],
        bootstrap.episode_weights(4, 6, seed=3),
    ]
)


def test_weighted_spearman_is_the_correlation_of_the_repeated_rank_rows() -> None:
    # kills weighted_spearman_52 (cov plus the means' product), _53 (times n), _56, _59, _60,
    # _61, _62 (var_a), _64, _67, _69, _70 (var_v)
    activations, facts, ranks_a, ranks_v, episode = _steps()
    rho = bootstrap.weighted_spearman(ranks_a, ranks_v, episode, _SPEARMAN_WEIGHTS)
    assert rho.shape == (len(_SPEARMAN_WEIGHTS), 2, 2)
    expected = _spearman_by_repetition(ranks_a, ranks_v, episode, _SPEARMAN_WEIGHTS)
    np.testing.assert_allclose(rho, expected, rtol=1e-10, atol=1e-12)
    # The identity resample is the sample's Spearman.
    for f in range(2):
        for j in range(2):
            reference = stats.spearmanr(activations[:, j], facts[:, f]).statistic
            assert rho[0, f, j] == pytest.approx(reference, rel=1e-12)
    assert np.isnan(rho[1, 0]).all()
    assert not np.isnan(rho[1, 1]).any()
    assert np.isfinite(rho[2]).all()


def test_weighted_spearman_takes_ranks_from_any_origin() -> None:
    # kills weighted_spearman_9, _13 (ranks not centred), _10, _14 (centred on the mean of
    # every column): ranks offset by 1e8 lose every digit to cancellation unless centred
    _, _, ranks_a, ranks_v, episode = _steps()
    rho = bootstrap.weighted_spearman(ranks_a, ranks_v, episode, _SPEARMAN_WEIGHTS)
    shifted = bootstrap.weighted_spearman(
        ranks_a + np.array([0.0, 1e8]), ranks_v + np.array([1e8, -3e7]), episode, _SPEARMAN_WEIGHTS
    )
    np.testing.assert_allclose(shifted, rho, rtol=1e-9, atol=1e-9)


def _two_steps(spread: float) -> np.ndarray:
    """Two steps' ranks ``[spread, -spread]`` (one factor): their sum of squares is
    ``2 * spread**2`` around a mean of exactly 0."""
    return np.array([[spread], [-spread]])


_RISING = np.array([[1.0], [2.0]])  # sum of squares 0.5
_TWO_EPISODES = np.array([0, 1])


@pytest.mark.parametrize("side", ["a", "v"])
def test_a_side_whose_sum_of_squares_is_at_most_1e_9_is_constant(side: str) -> None:
    # kills weighted_spearman_7 (onehot 2: sums doubled), _77 (None, not NaN), _81 (either side
    # defined is enough), _82, _84 (>= 1e-9), _83, _85 (threshold 1 + 1e-9)
    at = math.sqrt(0.5e-9)
    assert 2 * (at * at) == 1e-9  # exactly on the threshold
    weights = np.ones((1, 2))

    def rho(spread: float) -> float:
        tiny, rising = _two_steps(spread), _RISING
        a, v = (tiny, rising) if side == "a" else (rising, tiny)
        out = bootstrap.weighted_spearman(a, v, _TWO_EPISODES, weights)
        assert out.dtype == np.float64
        assert out.shape == (1, 1, 1)
        return float(out[0, 0, 0])

    assert math.isnan(rho(at))  # exactly 1e-9
    assert math.isnan(rho(math.sqrt(0.375e-9)))  # 7.5e-10: below even when doubled
    assert rho(math.sqrt(1e-9)) == pytest.approx(-1.0)  # 2e-9: defined, falling
    assert rho(-math.sqrt(1e-9)) == pytest.approx(1.0)
    # The other side alone (sum of squares 0.5) is defined against a real spread.
    out = bootstrap.weighted_spearman(_RISING, _RISING, _TWO_EPISODES, weights)
    assert out[0, 0, 0] == pytest.approx(1.0)


def test_ranks_on_a_vanishing_scale_are_nan_without_floating_point_warnings() -> None:
    # kills weighted_spearman_44, _46 (division by zero not silenced): the variances' product
    # underflows to 0 under a nonzero covariance
    ranks_a = np.array([[0.0], [1e-160], [2e-160]])
    ranks_v = np.array([[0.0], [1e-160], [1e-160]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho = bootstrap.weighted_spearman(ranks_a, ranks_v, np.arange(3), np.ones((2, 3)))
    assert rho.shape == (2, 1, 1)
    assert np.isnan(rho).all()


# ---- interval --------------------------------------------------------------------------------


def test_interval_is_the_2_5_and_97_5_percentiles_of_each_column_minus_its_centre() -> None:
    # kills interval_2 (tail 0.1), _5 (tail 1/60), _34, _37 (low over every column), _42, _45
    # (high over every column)
    rng = np.random.default_rng(2)
    resampled = np.stack([rng.permutation(41).astype(np.float64), 2.0 * rng.permutation(41)], 1)
    centre = np.array([10.0, 0.5])
    low, high = bootstrap.interval(resampled, centre)
    # 41 values 0..40 (and 0, 2, ..., 80): the 2.5% quantile sits at position 1, 97.5% at 39.
    np.testing.assert_allclose(low, [1.0 - 10.0, 2.0 - 0.5], rtol=1e-12)
    np.testing.assert_allclose(high, [39.0 - 10.0, 78.0 - 0.5], rtol=1e-12)
    reference = np.quantile(resampled - centre, [0.025, 0.975], axis=0)
    np.testing.assert_allclose(np.stack([low, high]), reference, rtol=1e-12)


def test_interval_ignores_nan_resamples_and_is_nan_silently_where_all_are() -> None:
    # kills interval_14 (one verdict for the whole array: the all-NaN column warns)
    rng = np.random.default_rng(4)
    resampled = rng.normal(size=(60, 3))
    resampled[:7, 0] = np.nan  # some resamples undefined
    resampled[:, 1] = np.nan  # every resample undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = bootstrap.interval(resampled, 0.25)
    kept = resampled[7:, 0] - 0.25
    assert low[0] == pytest.approx(np.quantile(kept, 0.025), rel=1e-12)
    assert high[0] == pytest.approx(np.quantile(kept, 0.975), rel=1e-12)
    assert math.isnan(low[1])
    assert math.isnan(high[1])
    assert low[2] == pytest.approx(np.quantile(resampled[:, 2] - 0.25, 0.025), rel=1e-12)
    assert high[2] == pytest.approx(np.quantile(resampled[:, 2] - 0.25, 0.975), rel=1e-12)


def test_interval_subtracts_the_centre_in_float64() -> None:
    # kills interval_9, _11 (float32 resamples minus a Python float stay float32)
    resampled = (0.1 * np.arange(1, 82)).astype(np.float32)[:, None]
    low, high = bootstrap.interval(resampled, 0.05)
    shifted = resampled.astype(np.float64) - 0.05
    assert low.dtype == np.float64
    # float32 arithmetic is off by about 1e-8 here; float64 by about 1e-16.
    np.testing.assert_allclose(low, np.quantile(shifted, 0.025, axis=0), rtol=1e-12, atol=0)
    np.testing.assert_allclose(high, np.quantile(shifted, 0.975, axis=0), rtol=1e-12, atol=0)
    shifted32 = resampled - np.float32(0.05)
    assert abs(low[0] - np.quantile(shifted32, 0.025)) > 1e-10  # the test can tell them apart
