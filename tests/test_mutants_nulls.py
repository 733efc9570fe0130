"""The nulls at their edges, written against the mutants that survived
``tox -e mutation -- pytest_dreamer_audit/results/nulls.py`` (benchmarks/mutation.md): padding
steps that leave picks without a partner, picks at step 0, a factor without picks, draws with
exactly two pairs, ties and p-values exactly at the level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_dreamer_audit.results.episode_swaps import EpisodeSwaps
from pytest_dreamer_audit.results.nulls import (
    CircularShifts,
    average_ranks,
    max_adjusted,
    paired_means,
    recentred_means,
    spearman_null,
)


def _brute_recentred(hits: np.ndarray, at: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each draw's partner mean minus the picks' own mean over the same picks, plus their mean."""
    result = []
    for row in source:
        has = row >= 0
        if not has.any():
            result.append(math.nan)
            continue
        result.append(hits[row[has]].mean() - hits[at[has]].mean() + hits[at].mean())
    return np.array(result)


def test_recentred_means_over_picks_that_lose_their_partner_in_some_draws() -> None:
    # Episodes of 6, 3 and 5 analysed steps, padding after; valid order is time-major.
    valid = np.arange(6)[:, None] < np.array([6, 3, 5])[None, :]
    swaps = EpisodeSwaps.draw(valid, draws=999)  # 3! = 6 pairings, all of them
    steps, episode = np.nonzero(valid)
    hits = np.zeros(len(steps))
    hits[1] = 1.0  # step 0 of episode 1: a hit a wrong fill value (+1) would pick up
    hits[(steps == 4) & (episode == 2)] = 1.0
    at = np.flatnonzero(((steps == 0) & (episode == 0)) | ((steps == 5) & (episode == 0)))
    at = np.concatenate([at, np.flatnonzero((steps == 4) & (episode == 2))])
    source = swaps.source(at)  # [6, 3]: step 5 of episode 0 has a partner only in itself
    assert ((source == -1).sum(axis=1) > 0).sum() >= 4  # most draws leave some pick out
    got = recentred_means(hits, at, source)
    np.testing.assert_allclose(got, _brute_recentred(hits, at, source))
    identity = np.flatnonzero((swaps.perms == np.arange(3)).all(axis=1))[0]
    assert got[identity] == pytest.approx(hits[at].mean())  # the real pairing is the observation


def test_a_factor_without_picks_has_no_mean_in_any_draw() -> None:
    hits = np.array([1.0, 0.0, 1.0])
    none = np.zeros(0, dtype=np.int64)
    got = recentred_means(hits, none, np.zeros((4, 0), dtype=np.int64))
    assert got.shape == (4,)
    assert np.isnan(got).all()
    # No partner at all in a draw: NaN for that draw only.
    at = np.array([0, 2])
    source = np.array([[1, -1], [-1, -1]])
    np.testing.assert_allclose(recentred_means(hits, at, source), [0.0 - 1.0 + 1.0, np.nan])
    np.testing.assert_allclose(paired_means(hits, source, axis=1), [0.0, np.nan])


def _brute_swapped(activations: np.ndarray, values: np.ndarray, swaps: EpisodeSwaps) -> np.ndarray:
    """Pearson of the ranks over each draw's pairs, recentred by the real pairing's over them."""
    ranks_a, ranks_v = average_ranks(activations), average_ranks(values)
    every = np.arange(len(values))
    observed = [np.corrcoef(ranks_a[:, j], ranks_v)[0, 1] for j in range(activations.shape[1])]
    result = np.full((swaps.draws, activations.shape[1]), np.nan)
    for d, row in enumerate(swaps.source(every)):
        has = row >= 0
        for j in range(activations.shape[1]):
            paired = np.corrcoef(ranks_a[has, j], ranks_v[row[has]])[0, 1]
            own = np.corrcoef(ranks_a[has, j], ranks_v[has])[0, 1]
            result[d, j] = paired - own + observed[j]
    return result


@pytest.mark.parametrize("long", [5, 160])
def test_a_swap_draw_with_exactly_two_pairs_is_still_scored(long: int) -> None:
    # Episode 0 is analysed for ``long`` steps, episode 1 for 1: swapped, only the two step-0
    # observations have partners, and a Pearson of two pairs is +-1, not undefined, even when
    # their ranks are neighbours among 161 (a variance of 0.5, far above float noise).
    valid = np.arange(long)[:, None] < np.array([long, 1])[None, :]
    swaps = EpisodeSwaps.draw(valid, draws=999)
    n = long + 1
    rng = np.random.default_rng(long)
    others = rng.permutation([x for x in range(n) if x not in (2, 3)]).astype(np.float64)
    values = np.concatenate([[2.0, 3.0], others])  # steps 0 of both episodes: neighbours
    values[-1] = values[-2]  # a tie among the others
    activations = np.stack([-values, rng.random(n)], axis=1)  # neighbours too, reversed
    observed, null = spearman_null(activations, values, swaps)
    swapped = int(np.flatnonzero(swaps.perms[:, 0] == 1)[0])
    assert (swaps.source(np.arange(n))[swapped] >= 0).sum() == 2
    assert np.isfinite(null[swapped]).all()
    np.testing.assert_allclose(null, _brute_swapped(activations, values, swaps))
    np.testing.assert_allclose(null[1 - swapped], observed)  # the identity draw


def test_a_factor_without_picks_has_no_shifted_partners() -> None:
    valid = np.arange(6)[:, None] < np.array([6, 2, 4])[None, :]  # padding after each end
    shifts = CircularShifts.draw(valid, draws=5, seed=2)
    # An empty list is float64 to NumPy: the indices must still be taken as ints.
    assert shifts.source([]).shape == (5, 0)
    # Step 0 of episode 1 (valid index 1) moves only within episode 1's two steps.
    moved = shifts.source([1])[:, 0]
    assert set(moved.tolist()) <= {1, 4}
    np.testing.assert_array_equal(moved == 1, shifts.shifts[:, 1] == 0)


def test_one_episode_has_one_pairing_and_the_swap_null_is_the_observation() -> None:
    valid = np.ones((6, 1), dtype=bool)
    swaps = EpisodeSwaps.draw(valid, draws=999)
    assert swaps.exact
    assert swaps.draws == 1
    activations = np.array([[0.1, 3.0], [0.4, 1.0], [0.2, 1.0], [0.9, 2.0], [0.5, 0.0], [0.3, 5.0]])
    values = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    observed, null = spearman_null(activations, values, swaps)
    assert null.shape == (1, 2)
    np.testing.assert_allclose(null[0], observed)
    assert observed[0] == pytest.approx(
        np.corrcoef(average_ranks(activations)[:, 0], average_ranks(values))[0, 1]
    )


def test_draws_where_no_claimable_factor_is_defined_beat_every_factor() -> None:
    # Factor 1 is constant under every draw (NaN), factor 0 may not claim: no draw is defined.
    observed = np.array([0.8, 0.4])
    null = np.array([[0.9, np.nan], [0.1, np.nan], [0.2, np.nan]])
    adjusted, q95 = max_adjusted(observed, null, np.array([False, True]))
    np.testing.assert_allclose(adjusted, [np.nan, 1.0])  # (1 + 3) / (1 + 3)
    assert math.isnan(q95)
    # One defined draw: it alone sets the quantile; the undefined ones still count against.
    null[1, 1] = 0.3
    adjusted, q95 = max_adjusted(observed, null, np.array([False, True]))
    np.testing.assert_allclose(adjusted, [np.nan, (1 + 2) / (1 + 3)])
    assert q95 == pytest.approx(0.3)
