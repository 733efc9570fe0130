"""Episode-bootstrap intervals of the claims' effect sizes. NumPy only.

An effect is a measured value minus its null's mean (precision minus the precision of the
facts of other episodes at the same steps; a Spearman minus the same under swaps). Its
uncertainty comes from which episodes happened to be recorded, so the resampling unit is the
episode: each resample draws ``B`` episodes with replacement and weights every pick (or
analysed step) by how often its episode was drawn. The null's mean is held fixed. Steps within
an episode are not resampled: they are not independent.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOOTSTRAP_LEVEL", "episode_weights", "interval", "weighted_means", "weighted_spearman"]

BOOTSTRAP_LEVEL = 0.95
"""Coverage of the percentile intervals."""


def episode_weights(episodes: int, resamples: int, seed: int) -> np.ndarray:
    """How often each episode is drawn in each resample (seeded).

    Shape:
        - output: ``[R, B]`` float64 counts summing to ``B`` per row
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, episodes, size=(resamples, episodes))
    weights = np.zeros((resamples, episodes))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    return weights


def weighted_means(hits: np.ndarray, episode: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Resampled means of picks: ``hits`` ``[P, r]`` (0/1 per pick and factor) whose picks
    belong to episodes ``episode`` ``[P, r]``; NaN for a resample that drew none of them.

    Shape:
        - weights: ``[R, B]``; output: ``[R, r]``
    """
    hits = np.asarray(hits, dtype=np.float64)
    episodes = weights.shape[1]
    columns = np.broadcast_to(np.arange(hits.shape[1]), hits.shape)
    total = np.zeros((episodes, hits.shape[1]))
    count = np.zeros((episodes, hits.shape[1]))
    np.add.at(total, (episode, columns), hits)
    np.add.at(count, (episode, columns), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        drawn = weights @ count
        return np.where(drawn > 0, (weights @ total) / np.where(drawn > 0, drawn, 1.0), np.nan)


def weighted_spearman(
    ranks_a: np.ndarray, ranks_v: np.ndarray, episode: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Resampled Spearman: the weighted Pearson correlation of the full sample's ranks
    (``ranks_a`` ``[n, r]`` with each column of ``ranks_v`` ``[n, F]``) with each step weighted
    by its episode's count (``episode`` ``[n]``). Ranks are not retaken per resample: the
    interval is for the correlation of these ranks, which is the Spearman of the real sample.

    Shape:
        - weights: ``[R, B]``; output: ``[R, F, r]`` (NaN where a side is constant)
    """
    episodes = weights.shape[1]
    onehot = np.zeros((episodes, len(episode)))
    onehot[episode, np.arange(len(episode))] = 1.0
    a = ranks_a - ranks_a.mean(axis=0)  # [n, r]
    v = ranks_v - ranks_v.mean(axis=0)  # [n, F]
    facts, rank = v.shape[1], a.shape[1]

    def resampled(per_step: np.ndarray) -> np.ndarray:
        """Each resample's weighted sum of a per-step quantity, through per-episode sums."""
        return weights @ (onehot @ per_step.reshape(len(episode), -1))

    n = resampled(np.ones(len(episode)))[:, :, None]  # [R, 1, 1]
    sum_a = resampled(a)[:, None, :]  # [R, 1, r]
    sum_v = resampled(v)[:, :, None]  # [R, F, 1]
    products = resampled(v[:, :, None] * a[:, None, :]).reshape(-1, facts, rank)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = products - sum_a * sum_v / n
        var_a = resampled(a**2)[:, None, :] - sum_a**2 / n
        var_v = resampled(v**2)[:, :, None] - sum_v**2 / n
        rho = cov / np.sqrt(var_a * var_v)
    return np.where((var_a > 1e-9) & (var_v > 1e-9), rho, np.nan)


def interval(resampled: np.ndarray, centre: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of ``resampled - centre`` along the first axis.

    Shape:
        - resampled: ``[R, ...]``; centre: ``[...]``; output: two ``[...]`` arrays (NaN where
          every resample is NaN)
    """
    tail = (1 - BOOTSTRAP_LEVEL) / 2
    shifted = np.asarray(resampled, dtype=np.float64) - centre
    defined = ~np.isnan(shifted).all(axis=0)
    low = np.full(shifted.shape[1:], np.nan)
    high = np.full(shifted.shape[1:], np.nan)
    if np.any(defined):
        picked = shifted[:, defined]
        low[defined] = np.nanquantile(picked, tail, axis=0)
        high[defined] = np.nanquantile(picked, 1 - tail, axis=0)
    return low, high
