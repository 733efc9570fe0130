"""Each factor's ``k`` most exciting observations, with ties said and broken across episodes.

A factor's activation often saturates: in the pooled layout many observations reach the same
activation to three digits, and "the top 5" is then whichever came first in the array. The rule
here: observations whose activation is within ``TIE_TOLERANCE`` (relative to the factor's
largest activation) of the ``k``-th largest form the tie group; those above the group are picked
first, by activation; the remaining places go to the tie group round-robin over episodes (the
earliest tied step of each episode, episodes in order, then the second of each, ...), so tied
picks come from as many episodes as possible and the choice is deterministic. The tie fraction
of a factor is the share of its ``k`` picks taken from a tie group larger than the places left:
those picks stand for observations that were not shown. NumPy only.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["TIE_TOLERANCE", "top_picks"]

TIE_TOLERANCE = 1e-3
"""Activations closer than this fraction of the factor's largest activation count as tied."""


def top_picks(
    activations: np.ndarray, episode: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` picks of every factor and each factor's tie fraction.

    Args:
        activations: ``[n, r]`` each valid observation's activation of each factor (valid
            observations time-major, as ``factor_activations[valid]``).
        episode: ``[n]`` the episode of each valid observation.
        k: picks per factor, 1 to n.

    Shape:
        - output: ``(order [k, r] indices into the n valid observations, best first;
          tie_fraction [r] in [0, 1])``
    """
    n, rank = activations.shape
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ConfigError(
            f"k must be an integer from 1 to {n} (the explanation's valid observations), got {k!r}"
        )
    k = int(k)
    order = np.empty((k, rank), dtype=np.int64)
    tied = np.zeros(rank)
    for j in range(rank):
        order[:, j], tied[j] = _one_factor(activations[:, j], episode, k)
    return order, tied


def _one_factor(values: np.ndarray, episode: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    ranked = np.argsort(-values, kind="stable")
    boundary = values[ranked[k - 1]]
    tolerance = TIE_TOLERANCE * max(float(values.max()), 0.0)
    above = ranked[values[ranked] > boundary + tolerance]
    group = np.flatnonzero(np.abs(values - boundary) <= tolerance)  # time-major order
    places = k - len(above)
    if len(group) <= places:
        return ranked[:k], 0.0
    # round-robin over episodes: the i-th tied step of each episode, episodes in order
    members = episode[group]
    by_episode = np.lexsort((group, members))
    first_of_run = np.r_[True, members[by_episode][1:] != members[by_episode][:-1]]
    run_start = np.maximum.accumulate(np.where(first_of_run, np.arange(len(group)), 0))
    occurrence = np.empty(len(group), dtype=np.int64)
    occurrence[by_episode] = np.arange(len(group)) - run_start
    chosen = group[np.lexsort((group, members, occurrence))[:places]]
    chosen = chosen[np.argsort(-values[chosen], kind="stable")]
    return np.concatenate([above, chosen]), places / k
