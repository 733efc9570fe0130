"""The statistics of the imagination audit: ROC AUC and the episode-level sign-flip test.

Episodes are the independent units of a rollout batch (steps within an episode are not), so a
paired comparison of two predictors takes one mean difference per episode and flips their
signs: under the null that neither predictor is better, each episode's difference is as likely
positive as negative.
"""

from __future__ import annotations

import math

import numpy as np

from ..results.nulls import average_ranks

__all__ = ["EXACT_EPISODES", "SIGN_FLIP_DRAWS", "roc_auc", "sign_flip_p_values", "sign_patterns"]

EXACT_EPISODES = 16
"""Up to this many episodes the sign-flip test enumerates all ``2^B`` patterns."""
SIGN_FLIP_DRAWS = 9999
"""Seeded sign patterns drawn above :data:`EXACT_EPISODES` episodes."""


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` for the boolean ``labels`` (ties count half); NaN without both."""
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))  # no scipy.stats: 1.2 s
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def sign_patterns(episodes: int, seed: int) -> np.ndarray:
    """``[patterns, episodes]`` of +-1: all of them (identity first) or seeded draws."""
    if episodes <= EXACT_EPISODES:
        bits = (np.arange(2**episodes)[:, None] >> np.arange(episodes)) & 1
        return (1 - 2 * bits).astype(np.float64)
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=(SIGN_FLIP_DRAWS, episodes))


def sign_flip_p_values(differences: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """One-sided p-values that the mean of each column of ``differences`` (one row per
    episode) is above 0: the share of sign patterns whose mean is at least the observed one
    (exact patterns, which include the identity, as a share; drawn ones as ``(1 + hits) /
    (1 + draws)``).

    Shape:
        - differences: ``[E, M]``; patterns: ``[P, E]`` of +-1; output: ``[M]`` (NaN if E = 0)
    """
    if differences.shape[0] == 0:
        return np.full(differences.shape[1], math.nan)
    observed = differences.sum(axis=0)  # sums rank the patterns as means do, one pass fewer
    flipped = patterns @ differences  # [P, M]
    hits = np.count_nonzero(flipped >= observed - 1e-9 * np.maximum(1.0, np.abs(observed)), axis=0)
    exact = (
        differences.shape[0] <= EXACT_EPISODES and patterns.shape[0] == 2 ** differences.shape[0]
    )
    if exact:
        return np.asarray(hits / patterns.shape[0], dtype=np.float64)
    return np.asarray((1 + hits) / (1 + patterns.shape[0]), dtype=np.float64)
