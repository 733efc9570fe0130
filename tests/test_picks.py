"""A factor's picks: the strongest first, ties said and spread over episodes, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.picks import TIE_TOLERANCE, top_picks


def test_distinct_activations_are_picked_strongest_first_with_no_ties() -> None:
    values = np.array([[0.1], [0.9], [0.5], [0.7]])
    order, tied = top_picks(values, np.array([0, 0, 1, 1]), 3)
    assert order[:, 0].tolist() == [1, 3, 2]
    assert tied.tolist() == [0.0]


def test_ties_at_the_boundary_are_spread_over_episodes_and_counted() -> None:
    # Time-major valid observations of 3 episodes: 2 strong picks, then 6 saturated ones (1.0
    # within the tolerance) for the last 3 places. Array order alone would take episode 0 twice.
    episode = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    values = np.array([1.0, 1.0, 0.2, 1.0, 2.0, 0.1, 1.0, 3.0, 1.0 - TIE_TOLERANCE, 0.0])
    order, tied = top_picks(values[:, None], episode, 5)
    picks = order[:, 0].tolist()
    assert picks[:2] == [7, 4]  # the strongest, by activation
    assert sorted(episode[picks[2:]].tolist()) == [0, 1, 2]  # one tied pick per episode
    assert picks[2:] == [0, 1, 8]  # each episode's earliest tied step
    assert tied[0] == pytest.approx(3 / 5)  # 3 of 5 picks stand for unshown tied ones
    # Enough places for the whole tie group: nothing is left out, nothing counts as tied.
    _, none_tied = top_picks(values[:, None], episode, 8)
    assert none_tied[0] == 0.0


def test_k_outside_the_valid_observations_is_refused() -> None:
    for k in (0, 5, True):
        with pytest.raises(ConfigError, match=r"k must be an integer from 1 to 4"):
            top_picks(np.ones((4, 2)), np.zeros(4, dtype=int), k)  # type: ignore[arg-type]


@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
@settings(max_examples=50, deadline=None)
def test_picks_are_distinct_and_never_weaker_than_what_they_leave_out(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n = 30
    values = np.round(rng.random((n, 3)), 1)  # coarse: many ties
    episode = rng.integers(0, 4, n)
    order, tied = top_picks(values, episode, k)
    for j in range(3):
        picked = order[:, j]
        assert len(set(picked.tolist())) == k
        left = np.setdiff1d(np.arange(n), picked)
        if len(left):
            slack = TIE_TOLERANCE * values[:, j].max()
            assert values[picked, j].min() >= values[left, j].max() - slack
        assert 0 <= tied[j] <= 1
    again, _ = top_picks(values, episode, k)
    np.testing.assert_array_equal(order, again)
