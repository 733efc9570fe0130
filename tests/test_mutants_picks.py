"""A factor's picks (``results/picks.py``) pinned against the mutants that survived ``python
tests/run_mutation.py pytest_dreamer_audit/results/picks.py --tests ...`` (issue 35): the
order of equal activations (stable, so deterministic: earlier steps first, also past numpy's
insertion-sort size), the tolerance relative to the largest activation when that is below 1,
an activation exactly one tolerance from the boundary (tied, not above), and the round-robin
over episodes with several tied steps in each — all against a plain-Python reading of the
rule in the module's docstring."""

from __future__ import annotations

import numpy as np

from pytest_dreamer_audit.results.picks import TIE_TOLERANCE, top_picks


def _by_the_rule(values: np.ndarray, episode: np.ndarray, k: int) -> tuple[list[int], float]:
    """The docstring's rule, one observation at a time: those above the tie group first, by
    activation (earlier first among equals); then the tie group round-robin over episodes
    (each episode's earliest tied step, episodes in order, then the second, ...), the chosen
    ones ordered by activation."""
    n = len(values)
    tolerance = TIE_TOLERANCE * max(float(values.max()), 0.0)
    by_activation = sorted(range(n), key=lambda i: -values[i])  # Python's sort is stable
    boundary = values[by_activation[k - 1]]
    above = [i for i in by_activation if values[i] > boundary + tolerance]
    group = [i for i in range(n) if abs(values[i] - boundary) <= tolerance]
    places = k - len(above)
    if len(group) <= places:
        return by_activation[:k], 0.0
    per_episode: dict[int, list[int]] = {}
    for i in group:
        per_episode.setdefault(int(episode[i]), []).append(i)
    round_robin = [
        steps[turn]
        for turn in range(max(len(steps) for steps in per_episode.values()))
        for _, steps in sorted(per_episode.items())
        if turn < len(steps)
    ]
    chosen = sorted(round_robin[:places], key=lambda i: -values[i])
    return above + chosen, places / k


def _picks(values: np.ndarray, episode: np.ndarray, k: int) -> tuple[list[int], float]:
    order, tied = top_picks(values[:, None], episode, k)
    return order[:, 0].tolist(), float(tied[0])


def test_equal_activations_above_the_ties_come_earliest_first() -> None:
    # kills _one_factor_3, _5 (the ranking's sort not stable: 50 equal activations scrambled)
    rng = np.random.default_rng(0)
    values = rng.random(300)
    saturated = np.sort(rng.choice(300, 50, replace=False))
    values[saturated] = 10.0
    episode = np.arange(300) % 7
    picks, tied = _picks(values, episode, 51)
    assert picks[:50] == saturated.tolist()
    assert (picks, tied) == _by_the_rule(values, episode, 51)


def test_tied_picks_of_two_levels_keep_the_round_robin_among_equals() -> None:
    # kills _one_factor_63, _65 (the chosen ties' sort not stable), _39 (a run starts wherever
    # the episode differs from the first one's)
    rng = np.random.default_rng(1)
    values = np.where(rng.random(90) < 0.5, 1.0, 1.0 - TIE_TOLERANCE / 2)
    episode = np.repeat([0, 1, 2], 30)  # 30 tied steps in each episode
    picks, tied = _picks(values, episode, 45)
    assert (picks, tied) == _by_the_rule(values, episode, 45)
    assert tied == 1.0
    assert np.bincount(episode[picks]).tolist() == [15, 15, 15]


def test_round_robin_takes_the_second_tied_step_of_each_episode_in_turn() -> None:
    # kills _one_factor_39: three episodes with two tied steps each, four places
    episode = np.array([0, 0, 1, 1, 2, 2, 0])
    values = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    picks, tied = _picks(values, episode, 4)
    assert picks == [0, 2, 4, 1]  # the first of each episode, then episode 0's second
    assert tied == 1.0
    assert (picks, tied) == _by_the_rule(values, episode, 4)


def test_the_tolerance_is_relative_to_a_largest_activation_below_one() -> None:
    # kills _one_factor_19 (the tolerance never below 1e-3): 5e-4 apart is not tied at 0.01
    values = np.array([0.01, 0.0095, 0.009, 0.005])
    episode = np.array([0, 1, 2, 3])
    assert _picks(values, episode, 2) == ([0, 1], 0.0)
    # The same activations times 100 are 0.05 apart, far outside 1e-3 of 1.
    assert _picks(100 * values, episode, 2) == ([0, 1], 0.0)
    # Within 1e-5 of 0.0095 (1e-3 of 0.01) is tied: three for the last place.
    values = np.array([0.01, 0.0095, 0.009496, 0.005])
    assert _picks(values, episode, 2) == ([0, 1], 0.5)


def test_an_activation_exactly_one_tolerance_from_the_boundary_is_tied() -> None:
    # kills _one_factor_21 (exactly one tolerance above counted above the group), _27 (exactly
    # one tolerance away not tied); the tolerance is 1e-3 * 1000 = 1.0 exactly
    assert TIE_TOLERANCE * 1000.0 == 1.0
    values = np.array([1000.0, 500.0, 499.0, 0.0])
    episode = np.array([0, 1, 2, 3])
    # k = 3: boundary 499, 500 is tied with it; the group of two fills the two places.
    assert _picks(values, episode, 3) == ([0, 1, 2], 0.0)
    # k = 2: boundary 500, 499 is tied with it; two for one place.
    assert _picks(values, episode, 2) == ([0, 1], 0.5)
    for k in (2, 3):
        assert _picks(values, episode, k) == _by_the_rule(values, episode, k)
