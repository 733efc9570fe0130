"""The episode-swap null at its edges, written against the mutants that survived
``tox -e mutation -- pytest_dreamer_audit/results/episode_swaps.py`` (benchmarks/mutation.md):
the defaults, a single draw, a factor with no picks, the level 1 and the 170-episode float
limit of the resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.episode_swaps import EpisodeSwaps, min_episodes
from pytest_dreamer_audit.results.nulls import NULL_DRAWS


def test_the_defaults_are_the_null_draws_and_seed_zero() -> None:
    valid = np.ones((4, 8), dtype=bool)  # 8! > 999: drawn, so the seed and count show
    default = EpisodeSwaps.draw(valid)
    assert default.draws == NULL_DRAWS == 999
    np.testing.assert_array_equal(default.perms, EpisodeSwaps.draw(valid, 999, seed=0).perms)


def test_a_single_draw_is_allowed_and_resolves_only_one_half() -> None:
    valid = np.ones((3, 3), dtype=bool)  # 3! = 6 > 1 draw: drawn, not enumerated
    swaps = EpisodeSwaps.draw(valid, draws=1)
    assert not swaps.exact
    assert swaps.perms.shape == (1, 3)
    assert sorted(swaps.perms[0].tolist()) == [0, 1, 2]
    assert swaps.resolution == pytest.approx(1 / 2)  # max(1/3!, 1/(1 + 1))
    # Exactly as many draws as permutations enumerates them.
    assert EpisodeSwaps.draw(valid, draws=6).exact
    assert not EpisodeSwaps.draw(valid, draws=5).exact


def test_a_factor_with_no_picks_has_no_partners_in_any_draw() -> None:
    valid = np.ones((5, 3), dtype=bool)
    valid[3:, 2] = False  # padding steps after episode 2 ends
    swaps = EpisodeSwaps.draw(valid, draws=999)
    # An empty list is float64 to NumPy: the indices must still be taken as ints.
    assert swaps.source([]).shape == (6, 0)
    # A pick at step 0 of episode 0 always has a partner: step 0 is analysed everywhere.
    assert (swaps.source([0]) >= 0).all()
    # A pick at step 4 of episode 0 loses its partner whenever episode 2 is swapped in.
    late = int(np.flatnonzero(np.nonzero(valid)[0] == 4)[0])
    partners = swaps.source([late])[:, 0]
    assert (partners[swaps.perms[:, 0] == 2] == -1).all()
    assert (partners[swaps.perms[:, 0] != 2] >= 0).all()


def test_level_one_needs_a_single_episode_and_above_one_is_refused() -> None:
    assert min_episodes(1.0) == 1
    assert min_episodes(0.5) == 2  # 1/2! == 0.5: at the level is enough
    assert min_episodes(1 / 6) == 3
    for bad in (1.5, 2.0, -0.1):
        with pytest.raises(ConfigError, match=r"the level must be in \(0, 1\]"):
            min_episodes(bad)


def test_the_resolution_floor_stops_where_a_factorial_leaves_float_range() -> None:
    def swaps(episodes: int, exact: bool) -> EpisodeSwaps:
        one = np.arange(episodes, dtype=np.int64)[None, :]
        empty = np.zeros(0, dtype=np.int64)
        return EpisodeSwaps(one, exact, np.zeros((1, episodes), np.int64), empty, empty)

    assert swaps(170, exact=True).resolution == pytest.approx(1 / math.factorial(170), rel=1e-9)
    assert swaps(170, exact=True).resolution > 0.0
    assert swaps(171, exact=True).resolution == 0.0  # 1/171! underflows: no floor, no error
    assert swaps(171, exact=False).resolution == pytest.approx(1 / 2)


def test_a_mask_stored_as_zeros_and_ones_is_read_as_a_mask() -> None:
    valid = np.arange(6)[:, None] < np.array([6, 4, 5])[None, :]  # padding after each end
    stored = valid.astype(np.uint8)  # as a mask comes back from an .npz or JSON
    swaps, reference = EpisodeSwaps.draw(stored, 999), EpisodeSwaps.draw(valid, 999)
    np.testing.assert_array_equal(swaps.index, reference.index)
    assert (swaps.index[~valid] == -1).all()
    assert sorted(swaps.index[valid].tolist()) == list(range(15))
