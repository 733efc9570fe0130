"""The nulls at their edges, written against the mutants that survived
``tox -e mutation -- pytest_dreamer_audit/results/nulls.py`` (benchmarks/mutation.md): padding
steps that leave picks without a partner, picks at step 0, a factor without picks, draws with
exactly two pairs, ties and p-values exactly at the level."""

from __future__ import annotations

import dataclasses
import math
import tracemalloc

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results import nulls
from pytest_dreamer_audit.results.episode_swaps import EpisodeSwaps
from pytest_dreamer_audit.results.nulls import (
    CircularShifts,
    average_ranks,
    max_adjusted,
    p_value,
    paired_means,
    rank_scores,
    recentred_means,
    spearman_columns,
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


# The rest of the module (issue 35): the mutants that survived the whole-module run.


def test_two_observations_are_perfectly_ranked_and_fewer_have_no_spearman() -> None:
    # kills spearman_columns_1, _2, _3, _4, _5, _6, _7, _standardized_26, _35
    # Two distinct values have ranks 1, 2: centred -0.5, 0.5, a norm of sqrt(0.5) below 1.
    activations = np.array([[1.0, 2.0, 5.0], [2.0, 1.0, 5.0]])
    got = spearman_columns(activations, np.array([3.0, 4.0]))
    np.testing.assert_allclose(got, [1.0, -1.0, np.nan])
    assert got[0] == pytest.approx(spearmanr(activations[:, 0], [3.0, 4.0]).statistic)
    half = math.sqrt(0.5)
    np.testing.assert_allclose(rank_scores(activations[:, :2]), [[-half, half], [half, -half]])
    for rows in (1, 0):  # fewer than two rows: no correlation, one NaN per column
        got = spearman_columns(activations[:rows], np.array([3.0, 4.0])[:rows])
        assert got.shape == (3,)
        assert got.dtype == np.float64
        assert np.isnan(got).all()


def test_a_nan_column_leaves_the_other_columns_spearman_alone() -> None:
    # kills _standardized_3 (every column centred by the grand mean, NaN with a NaN column)
    activations = np.array([[0.3, np.nan, 1.0], [0.1, 2.0, 3.0], [0.7, 1.0, 3.0], [0.2, 0.0, 2.0]])
    values = np.array([1.0, 0.0, 2.0, 0.0])
    got = spearman_columns(activations, values)
    assert math.isnan(got[1])
    for j in (0, 2):
        assert got[j] == pytest.approx(spearmanr(activations[:, j], values).statistic)
    scores = rank_scores(activations)
    assert np.isnan(scores[:, 1]).all()
    ranks = rankdata(activations[:, 2])  # [1, 3.5, 3.5, 2]
    np.testing.assert_allclose(scores[:, 2], (ranks - 2.5) / np.linalg.norm(ranks - 2.5))


def test_integer_values_with_ties_get_half_ranks() -> None:
    # kills average_ranks_3, _5 (integer input ranked into an integer array: 2.5 -> 2)
    values = np.array([[3, 1], [1, 1], [3, 2], [2, 1]])
    got = average_ranks(values)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, rankdata(values, axis=0))
    np.testing.assert_array_equal(got[:, 0], [3.5, 1.0, 3.5, 2.0])
    np.testing.assert_array_equal(average_ranks(np.array([True, False, True])), [2.5, 1.0, 2.5])


def test_the_slack_is_one_part_in_a_trillion_of_the_observation_and_at_least_1e_12() -> None:
    # kills p_value_13 (slack divided by |observed|), _19 (at least 2e-12), _24 (strict >)
    observed = 0.5
    edge = np.float64(observed) - 1e-12  # exactly the observation less its slack
    assert p_value(observed, np.array([edge])) == 1.0  # (1 + 1) / (1 + 1)
    assert p_value(observed, np.array([edge]), exact=True) == 1.0
    assert p_value(observed, np.array([observed - 0.5e-12])) == 1.0
    assert p_value(observed, np.array([observed - 1.5e-12])) == 0.5  # beyond the slack
    big = 1e6  # the slack grows with the observation: 1e-6 here
    assert p_value(big, np.array([big - 0.5e-6, big - 1.5e-6])) == pytest.approx(2 / 3)
    np.testing.assert_allclose(
        p_value(np.array([-big, 0.5]), np.array([[-big - 0.5e-6, 0.4], [-big - 1.5e-6, 0.5]])),
        [2 / 3, 2 / 3],
    )


def test_a_float32_observation_keeps_its_slack() -> None:
    # kills p_value_4, _6 (observed left in float32: the 1e-12 slack rounds away)
    observed = np.asarray(np.float32(0.1))  # as a float32 activation would give it
    assert observed.dtype == np.float32
    noise = np.array([np.float64(observed) - 5e-13, np.float64(observed) - 1e-6])
    assert p_value(observed, noise) == pytest.approx(2 / 3)  # float noise is not beaten
    np.testing.assert_allclose(
        p_value(np.stack([observed, observed]), noise[:, None]), [2 / 3, 2 / 3]
    )


def test_shifts_of_empty_and_one_step_episodes_and_the_null_they_give() -> None:
    # kills CircularShifts.draw_53 (one-step episodes shifted by 1), _shifted_products_16 (an
    # episode without valid steps sent to an FFT of length 0), _17 (one-step episodes skipped)
    lengths = np.array([5, 1, 0, 3, 1])
    valid = np.arange(5)[:, None] < lengths[None, :]
    shifts = CircularShifts.draw(valid, draws=40, seed=3)
    assert (shifts.shifts[:, [1, 2, 4]] == 0).all()  # in 0 .. n_b - 1, and 0 with no steps
    assert (shifts.shifts[:, [0, 3]] < lengths[[0, 3]]).all()
    n = int(valid.sum())
    rng = np.random.default_rng(7)
    activations = np.stack([rng.permutation(n), rng.random(n)], axis=1).astype(np.float64)
    values = rng.permutation(n).astype(np.float64)
    values[3] = values[4]  # a tie
    episode = np.nonzero(valid)[1]
    singles = np.flatnonzero(np.isin(episode, [1, 4]))
    assert (np.abs(rank_scores(values[:, None])[singles, 0]) > 0.05).all()  # not at the median
    observed, null = spearman_null(activations, values, shifts)
    assert null.shape == (40, 2)
    for d, row in enumerate(shifts.source(np.arange(n))):
        for j in range(2):
            expected = spearmanr(activations[:, j], values[row]).statistic
            assert null[d, j] == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(observed, [spearmanr(a, values).statistic for a in activations.T])


def test_one_draw_is_enough_and_the_default_seed_is_zero() -> None:
    # kills CircularShifts.draw_1 (default seed 1), _2, _3 (one draw refused)
    valid = np.ones((7, 4), dtype=bool)
    single = CircularShifts.draw(valid, draws=1)
    assert single.draws == 1
    assert single.shifts.shape == (1, 4)
    with pytest.raises(ConfigError, match="at least 1 draw"):
        CircularShifts.draw(valid, draws=0)
    np.testing.assert_array_equal(
        CircularShifts.draw(valid, draws=50).shifts, CircularShifts.draw(valid, 50, seed=0).shifts
    )


def test_draws_in_several_blocks_each_get_their_own_pairing() -> None:
    # kills spearman_null_86 (every block given every draw), _89 (fully paired blocks set to NaN),
    # and _70 by a timeout (a block starting at every draw: 4097 blocks of up to 3813 draws)
    # Episodes of 6 and 5 steps: no fast path. 100 facts of 11 observations make blocks of
    # 2**22 // 1100 = 3813 draws: the first block holds only the identity (fully paired), the
    # second ends with the swap, where step 5 of episode 0 has no partner.
    valid = np.arange(6)[:, None] < np.array([6, 5])[None, :]
    swaps = EpisodeSwaps.draw(valid, draws=999)
    perms = np.concatenate([np.tile([0, 1], (4096, 1)), [[1, 0]]])
    swaps = dataclasses.replace(swaps, perms=perms, exact=False)
    rng = np.random.default_rng(5)
    activations = rng.random((11, 2))
    values = rng.random((11, 100))
    observed, null = spearman_null(activations, values, swaps)
    assert null.shape == (100, 4097, 2)
    np.testing.assert_allclose(null[:, :-1], np.broadcast_to(observed[:, None], (100, 4096, 2)))
    row = swaps.source(np.arange(11))[-1]
    has = row >= 0
    assert has.sum() == 10
    ranks_a, ranks_v = average_ranks(activations), average_ranks(values)
    for f in range(0, 100, 9):
        for j in range(2):
            swapped = np.corrcoef(ranks_a[has, j], ranks_v[row[has], f])[0, 1]
            own = np.corrcoef(ranks_a[has, j], ranks_v[has, f])[0, 1]
            assert null[f, -1, j] == pytest.approx(swapped - own + observed[f, j])


def _peak_bytes(
    activations: np.ndarray, values: np.ndarray, null: CircularShifts | EpisodeSwaps
) -> int:
    """The most memory ``spearman_null`` holds at once beyond the null it returns."""
    spearman_null(activations, values, null)  # warm: NumPy's FFT plans are cached once
    tracemalloc.start()
    try:
        _, result = spearman_null(activations, values, null)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - result.nbytes


def test_the_draws_are_built_a_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # kills _gathered_sums_32, _33, _34, spearman_null_73, _74, _75 (a block that starts at
    # draw 0 or runs to the last draw: every draw built at once, the bound _CHUNK exists for)
    monkeypatch.setattr(nulls, "_CHUNK", 256)
    rng = np.random.default_rng(0)
    # Shifts: 12 episodes x 2 facts x 4 factors = 96 products a draw, blocks of 2 draws; all
    # 1000 at once would gather 1000 x 96 floats (768 kB).
    shifts = CircularShifts.draw(np.ones((8, 12), dtype=bool), draws=1000, seed=1)
    assert _peak_bytes(rng.random((96, 4)), rng.random((96, 2)), shifts) < 150_000
    # Swaps of episodes of 6 and 5 steps (the general loop): 11 observations x 2 facts, blocks
    # of 11 draws; all 1000 at once would hold several [1000, 11] arrays (88 kB each).
    valid = np.arange(6)[:, None] < np.array([6, 5])[None, :]
    swaps = EpisodeSwaps.draw(valid, draws=999)
    perms = rng.permuted(np.tile([0, 1], (1000, 1)), axis=1)
    swaps = dataclasses.replace(swaps, perms=perms, exact=False)
    assert _peak_bytes(rng.random((11, 2)), rng.random((11, 2)), swaps) < 150_000


def test_a_mask_of_truthy_numbers_is_read_as_bool() -> None:
    # kills CircularShifts.draw_7, _9 (the mask not cast to bool: a 2 or a 0.5 broke the
    # episodes' lengths; found by the session-13 review of the equivalents)
    shifts = CircularShifts.draw(np.array([[2, 1], [0, 1], [1, 0]]), 3, seed=0)
    same = CircularShifts.draw(np.array([[2, 1], [0, 1], [1, 0]]) != 0, 3, seed=0)
    assert shifts.lengths.tolist() == [2, 2]
    np.testing.assert_array_equal(shifts.shifts, same.shifts)
    np.testing.assert_array_equal(shifts.position, same.position)


def test_a_null_of_python_objects_reads_none_as_a_draw_that_beats_the_observation() -> None:
    # kills p_value_9, _11 (the null not cast to float64: None raised a TypeError); the
    # equivalence of max_adjusted_38 rests on this reading
    assert p_value(0.7, np.array([0.5, None], dtype=object)) == p_value(
        0.7, np.array([0.5, np.nan])
    )
    assert p_value(0.7, np.array([0.5, None], dtype=object)) == pytest.approx(2 / 3)
