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
from .nulls import CircularShifts, average_ranks, max_adjusted, spearman_null

__all__ = ["Nulls", "NullTest", "graded_test", "graded_tests"]


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
class NullTest:
    """Each factor's value under both nulls (maxT over the claimable factors within each).

    Attributes:
        values: ``[r]`` the measured Spearman (rank-biserial for a 0/1 event). shift_p,
            swap_p: ``[r]`` each null's maxT-adjusted p-value (NaN: the factor makes no
            claims). p_values: their elementwise maximum. shift_q95, swap_q95: the 95%
            quantile of the best claimable factor's ``rho`` (two-sided tests: ``|rho|``) under
            each null. effects: ``[r]`` value minus the swap null's mean; effect_low,
            effect_high: its episode-bootstrap 95% interval.
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


def graded_test(
    nulls: Nulls,
    activations: np.ndarray,
    values: np.ndarray,
    claimable: np.ndarray,
    one_sided: bool = False,
) -> NullTest:
    """Each factor's Spearman with a fact against both nulls: maxT on ``|rho|``, or on ``rho``
    when ``one_sided`` (a yes/no event given as 0/1: the rank-biserial correlation, ``2 AUC -
    1`` up to ties, of the factor's whole activation with the event; positive when the
    activation is higher where the event holds).

    Shape:
        - activations: ``[n, r]``; values: ``[n]`` (valid order); claimable: ``[r]``
    """
    return graded_tests(nulls, activations, values[:, None], claimable, [one_sided])[0]


def graded_tests(
    nulls: Nulls,
    activations: np.ndarray,
    values: np.ndarray,
    claimable: np.ndarray,
    one_sided: list[bool],
) -> list[NullTest]:
    """:func:`graded_test` for ``F`` facts at once (``values`` ``[n, F]``), sharing the
    ranks of the activations and each null's lookups.

    Shape:
        - activations: ``[n, r]``; values: ``[n, F]``; claimable: ``[r]``; one_sided: ``F``
    """
    rho, shifted = spearman_null(activations, values, nulls.shifts)  # [F, r], [F, D, r]
    _, swapped = spearman_null(activations, values, nulls.swaps)
    resampled = bootstrap.weighted_spearman(
        average_ranks(activations), average_ranks(values), nulls.episode, nulls.weights
    )  # [R, F, r]
    tests = []
    for f, single in enumerate(one_sided):
        side = (lambda x: x) if single else np.abs
        shift_p, shift_q95 = max_adjusted(side(rho[f]), side(shifted[f]), claimable)
        swap_p, swap_q95 = max_adjusted(
            side(rho[f]), side(swapped[f]), claimable, nulls.swaps.exact
        )
        centre = _mean(swapped[f])
        low, high = bootstrap.interval(resampled[:, f], centre)
        tests.append(
            NullTest(rho[f], shift_p, swap_p, shift_q95, swap_q95, rho[f] - centre, low, high)
        )
    return tests


def _mean(null: np.ndarray) -> np.ndarray:
    """The null's mean per column over its defined draws (NaN where none is)."""
    defined = ~np.isnan(null)
    total = np.where(defined, null, 0.0).sum(axis=0)
    count = defined.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
