"""Every claim against both nulls: circular shifts and episode swaps, with effect sizes.

A claim's p-value is the larger of its two (an intersection-union test: it is claimed only
when it beats both, so it controls the error under whichever null is the right one):

- **circular shifts** (``results/nulls.py``) move each episode's own fact in time: they control
  within-episode timing, but spread what every episode shares at its start over the episode;
- **episode swaps** (``results/episode_swaps.py``) pair the latents of episode ``b`` with the
  fact of another episode at the same step: they keep the start structure and everything the
  step index alone predicts, so a finding that survives them is about *this* episode.

A finding that beats the shifts but not the swaps is labelled "time": the same steps of other
episodes show it as well. Effects are the value minus the swap null's mean, with an episode
bootstrap interval (``results/bootstrap.py``). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bootstrap
from .config import ClaimConfig
from .episode_swaps import EpisodeSwaps
from .nulls import (
    CircularShifts,
    average_ranks,
    max_adjusted,
    paired_means,
    spearman_null,
)

__all__ = ["Nulls", "PickTest", "graded_test", "pick_test"]


@dataclass(frozen=True)
class Nulls:
    """The draws every claim about one explanation shares.

    Attributes:
        shifts, swaps: the two nulls' draws. weights: ``[R, B]`` the bootstrap's episode
        counts. episode: ``[n]`` the episode of each analysed observation (valid order).
    """

    shifts: CircularShifts
    swaps: EpisodeSwaps
    weights: np.ndarray
    episode: np.ndarray

    @classmethod
    def draw(cls, valid: np.ndarray, claims: ClaimConfig) -> Nulls:
        """Both nulls and the bootstrap weights for a ``[L, B]`` valid mask (seeded)."""
        shifts = CircularShifts.draw(valid, claims.draws, claims.seed)
        swaps = EpisodeSwaps.draw(valid, claims.draws, claims.seed + 1)
        weights = bootstrap.episode_weights(valid.shape[1], claims.bootstrap, claims.seed + 2)
        return cls(shifts, swaps, weights, shifts.episode)


@dataclass(frozen=True)
class PickTest:
    """Each column's value under both nulls (maxT over the claimable columns within each).

    Attributes:
        values: ``[r]`` the measured value (precision, or Spearman). shift_p, swap_p: ``[r]``
            each null's maxT-adjusted p-value (NaN: the column makes no claims). p_values:
            their elementwise maximum. shift_q95, swap_q95: the 95% quantile of the best
            claimable column's value (graded facts: ``|rho|``) under each null. effects:
            ``[r]`` value minus the swap null's mean; effect_low, effect_high: its episode
            bootstrap 95% interval.
    """

    values: np.ndarray
    shift_p: np.ndarray
    swap_p: np.ndarray
    shift_q95: float
    swap_q95: float
    effects: np.ndarray
    effect_low: np.ndarray
    effect_high: np.ndarray

    @property
    def p_values(self) -> np.ndarray:
        return np.maximum(self.shift_p, self.swap_p)


def pick_test(
    nulls: Nulls,
    order: np.ndarray,
    sources: tuple[np.ndarray, np.ndarray],
    hits: np.ndarray,
    claimable: np.ndarray,
) -> PickTest:
    """The precision of each column's picks at an event, against both nulls.

    Args:
        order: ``[k, r]`` each column's picks (valid indices).
        sources: ``([D, k, r], [D', k, r])`` what the shifts and the swaps move to each pick
            (-1: no partner in that swap).
        hits: ``[n]`` bool, the event at each analysed observation.
        claimable: ``[r]`` the columns whose best enters the maxT null.
    """
    precision = hits[order].mean(axis=0)  # [r]
    shifted = hits.astype(np.float64)[sources[0]].mean(axis=1)  # [D, r]
    swapped = paired_means(hits, sources[1], axis=1)  # [D', r]
    shift_p, shift_q95 = max_adjusted(precision, shifted, claimable)
    swap_p, swap_q95 = max_adjusted(precision, swapped, claimable, nulls.swaps.exact)
    centre = _mean(swapped)
    resampled = bootstrap.weighted_means(hits[order], nulls.episode[order], nulls.weights)
    low, high = bootstrap.interval(resampled, centre)
    return PickTest(precision, shift_p, swap_p, shift_q95, swap_q95, precision - centre, low, high)


def graded_test(
    nulls: Nulls, activations: np.ndarray, values: np.ndarray, claimable: np.ndarray
) -> PickTest:
    """Each factor's Spearman with a graded fact against both nulls (maxT on ``|rho|``).

    Shape:
        - activations: ``[n, r]``; values: ``[n]`` (valid order); claimable: ``[r]``
    """
    rho, shifted = spearman_null(activations, values, nulls.shifts)
    _, swapped = spearman_null(activations, values, nulls.swaps)
    shift_p, shift_q95 = max_adjusted(np.abs(rho), np.abs(shifted), claimable)
    swap_p, swap_q95 = max_adjusted(np.abs(rho), np.abs(swapped), claimable, nulls.swaps.exact)
    centre = _mean(swapped)
    resampled = bootstrap.weighted_spearman(
        average_ranks(activations), average_ranks(values[:, None])[:, 0], nulls.episode,
        nulls.weights,
    )  # fmt: skip
    low, high = bootstrap.interval(resampled, centre)
    return PickTest(rho, shift_p, swap_p, shift_q95, swap_q95, rho - centre, low, high)


def _mean(null: np.ndarray) -> np.ndarray:
    """The null's mean per column over its defined draws (NaN where none is)."""
    defined = ~np.isnan(null)
    total = np.where(defined, null, 0.0).sum(axis=0)
    count = defined.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
