"""Trust metrics of an explanation: stability, confidence, sanity and deletion faithfulness.

Each function returns plain floats; ``TrustMetrics`` (``explanation.py``) documents their meaning.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..model.agent import DreamerAgent, LatentState
from ..results import similarity

__all__ = [
    "deletion_effects",
    "matched_cosines",
    "mode_one_hot",
    "spearman",
    "topk_jaccard",
]


def spearman(x: Tensor, y: Tensor) -> float:
    """Spearman rank correlation of two equally long vectors (NaN when one is constant)."""
    from scipy.stats import spearmanr

    if x.numel() < 2:
        return math.nan
    a = x.detach().double().cpu().numpy()
    b = y.detach().double().cpu().numpy()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def matched_cosines(reference: Tensor, other: Tensor) -> Tensor:
    """Cosine of each reference prototype with its Hungarian-matched partner in ``other``
    (:func:`~pytest_dreamer_audit.results.similarity.matched_cosines` on tensors).

    Shape:
        - reference, other: ``[r, M]`` prototype rows (any scale); output: ``[r]`` float64
    """
    return torch.from_numpy(
        similarity.matched_cosines(
            reference.detach().double().cpu().numpy(), other.detach().double().cpu().numpy()
        )
    )


def topk_jaccard(first: Tensor, second: Tensor) -> float:
    """Jaccard overlap of two ``[B, k]`` top-step tables, as sets of (episode, step) pairs."""
    return similarity.jaccard(
        similarity.top_pairs(first.cpu().numpy()), similarity.top_pairs(second.cpu().numpy())
    )


def mode_one_hot(logits: Tensor) -> Tensor:
    """Each categorical's most likely class, one-hot: ``[..., K]`` logits -> ``[..., K]``."""
    return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def deletion_effects(
    agent: DreamerAgent, deter: Tensor, posterior_logits: Tensor, prior_logits: Tensor
) -> Tensor:
    """Total-variation change of the action distribution when a step's posterior is deleted.

    The actor sees ``cat[deter, mode of each posterior categorical]``; deletion replaces the
    posterior by the prior (its mode), i.e. forgets what the observation added.

    Shape:
        - deter: ``[L, B, deter]``; logits: ``[L, B, C, K]``; output: ``[L, B]``
    """
    steps, episodes = deter.shape[:2]
    flat_deter = deter.reshape(steps * episodes, -1).to(agent.device)
    with torch.inference_mode():
        policies = []
        for logits in (posterior_logits, prior_logits):
            flat = logits.reshape(steps * episodes, *logits.shape[2:]).to(agent.device)
            state = LatentState(flat, mode_one_hot(flat), flat_deter)
            policies.append(torch.softmax(agent.policy_logits(state), dim=-1))
        change = 0.5 * (policies[0] - policies[1]).abs().sum(dim=-1)
    return change.reshape(steps, episodes)
