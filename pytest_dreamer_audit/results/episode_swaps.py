"""The episode-swap null: a game fact from *another* episode, step for step. NumPy only.

A circular shift (``results/nulls.py``) keeps each episode's own fact and moves it in time; it
spreads whatever every episode shares at its start (the chicken at the bottom row, a fact's
fixed start value) over the whole episode, so "the picks sit where episodes start" can pass it
as a finding. The episode-swap null keeps that structure: draw ``d`` shows, beside the latents
of episode ``b`` at step ``t``, the fact of episode ``perm[d, b]`` at the same step ``t``. The
environment seeds make the episodes independent and alike, so under "the latents know nothing
about their own episode's fact" every permutation of the episodes is as likely as the real
pairing: a permutation test, exact when every permutation is enumerated.

Pairs exist only where both steps are analysed (episodes end at different steps): a pick whose
partner step is not analysed drops out of that draw (:meth:`EpisodeSwaps.source` returns -1).

**Resolution.** ``B`` episodes have ``B!`` pairings, so no p-value can go below ``1 / B!``
(1/24 at B = 4, 1/120 at B = 5); drawn permutations add the usual ``1 / (draws + 1)``.
:meth:`EpisodeSwaps.resolution` gives that floor and :func:`too_few_episodes` the reason to
refuse a claim when it exceeds the level.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["EpisodeSwaps", "min_episodes", "too_few_episodes"]


@dataclass(frozen=True)
class EpisodeSwaps:
    """``draws`` pairings of the ``B`` episodes' latents with the facts of other episodes.

    Valid observations are indexed time-major (``values[valid]`` order), as everywhere else.

    Attributes:
        perms: ``[D, B]`` in draw ``d`` episode ``b``'s latents meet episode ``perms[d, b]``'s
            facts. exact: the draws are every permutation once (``B! <= draws``), so a
            p-value counts the draws at least as extreme (the identity among them) over ``D``;
            otherwise they are drawn uniformly and the p-value is ``(1 + count) / (1 + D)``.
        index: ``[L, B]`` the valid index of each step (-1 where not analysed).
        steps, episode: ``[n]`` the step and episode of each valid observation.
    """

    perms: np.ndarray
    exact: bool
    index: np.ndarray
    steps: np.ndarray
    episode: np.ndarray

    @classmethod
    def draw(cls, valid: np.ndarray, draws: int = 999, seed: int = 0) -> EpisodeSwaps:
        """Enumerate every permutation when there are at most ``draws`` of them, else draw
        ``draws`` uniform permutations (seeded: reproducible) of a ``[L, B]`` valid mask's
        episodes."""
        if draws < 1:
            raise ConfigError(f"a null needs at least 1 draw, got {draws}")
        valid = np.asarray(valid, dtype=bool)
        if valid.ndim != 2:
            raise ConfigError(f"valid must be a [steps, episodes] mask, got shape {valid.shape}")
        episodes = valid.shape[1]
        exact = math.factorial(episodes) <= draws
        if exact:
            perms = np.array(list(itertools.permutations(range(episodes))), dtype=np.int64)
            perms = perms.reshape(-1, episodes)
        else:
            rng = np.random.default_rng(seed)
            perms = rng.permuted(np.tile(np.arange(episodes), (draws, 1)), axis=1)
        index = np.full(valid.shape, -1, dtype=np.int64)
        index[valid] = np.arange(int(valid.sum()))
        steps, episode = np.nonzero(valid)
        return cls(perms, exact, index, steps.astype(np.int64), episode.astype(np.int64))

    @property
    def draws(self) -> int:
        return int(self.perms.shape[0])

    @property
    def resolution(self) -> float:
        """The smallest p-value this null can give: ``1 / B!``, or ``1 / (draws + 1)`` when the
        permutations are drawn and that is larger."""
        episodes = self.perms.shape[1]
        floor = 1.0 / math.factorial(episodes) if episodes < 171 else 0.0
        return floor if self.exact else max(floor, 1.0 / (self.draws + 1))

    def source(self, at: np.ndarray, draws: slice = slice(None)) -> np.ndarray:
        """For valid indices ``at`` (any shape), the valid index of the fact each draw pairs
        with them: the same step of the swapped-in episode, or -1 where that step is not
        analysed.

        Shape:
            - at: ``[...]`` ints; output: ``[D, ...]`` (``D`` the draws selected by ``draws``)
        """
        at = np.asarray(at, dtype=np.int64)
        partner = self.perms[draws][:, self.episode[at]]  # [D, ...]
        return np.asarray(self.index[self.steps[at], partner])


def min_episodes(level: float) -> int:
    """The fewest episodes whose episode-swap null can reach ``level`` (``1 / B! <= level``)."""
    if not 0 < level <= 1:
        raise ConfigError(f"the level must be in (0, 1], got {level!r}")
    episodes = 1
    while 1.0 / math.factorial(episodes) > level:
        episodes += 1
    return episodes


def too_few_episodes(episodes: int, level: float) -> str | None:
    """Why ``episodes`` rollouts cannot make a claim at ``level``, or None when they can."""
    needed = min_episodes(level)
    if episodes >= needed:
        return None
    return (
        f"{episodes} episode(s) give the episode-swap null (facts of other episodes, step for "
        f"step) at most {math.factorial(episodes)} pairings, so no p-value can go below "
        f"1/{math.factorial(episodes)} = {1 / math.factorial(episodes):.3g}, above the level "
        f"{level}; record at least {needed} episodes (--dreamer-episodes)"
    )
