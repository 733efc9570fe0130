"""Trust metrics of an explanation: stability, confidence, sanity and deletion faithfulness.

Each function returns plain floats; ``TrustMetrics`` (``explanation.py``) documents their meaning.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..model.agent import DreamerAgent, LatentState
from ..results import similarity
from ..results.nulls import spearman_columns

__all__ = [
    "DELETION_CHUNK",
    "deletion_effects",
    "matched_cosines",
    "mode_one_hot",
    "spearman",
    "topk_jaccard",
]


def spearman(x: Tensor, y: Tensor) -> float:
    """Spearman rank correlation of two equally long vectors (NaN when one is constant): the
    claims' own ``nulls.spearman_columns``, so that one rule ranks everywhere (and no audit
    imports ``scipy.stats``, 1.4 s)."""
    if x.numel() < 2:
        return math.nan
    a = x.detach().double().cpu().numpy().reshape(-1, 1)
    b = y.detach().double().cpu().numpy().reshape(-1)
    return float(spearman_columns(a, b)[0])


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
    """Each categorical's most likely class, one-hot: ``[..., K]`` logits -> ``[..., K]`` (in
    one pass, in the logits' dtype)."""
    return torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)


DELETION_CHUNK = 4096
"""States per actor pass of :func:`deletion_effects`: its temporaries stay cache-sized, so its
time per state does not grow with the rollouts (``benchmarks/scaling.md``)."""


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
    flat_deter = deter.reshape(steps * episodes, -1)
    flat_logits = [
        logits.reshape(steps * episodes, *logits.shape[2:])
        for logits in (posterior_logits, prior_logits)
    ]
    changes = []
    with torch.inference_mode():
        for start in range(0, steps * episodes, DELETION_CHUNK):
            part = slice(start, start + DELETION_CHUNK)
            chunk_deter = flat_deter[part].to(agent.device)
            policies = []
            for flat in flat_logits:
                chunk = flat[part].to(agent.device)
                state = LatentState(chunk, mode_one_hot(chunk), chunk_deter)
                policies.append(torch.softmax(agent.policy_logits(state), dim=-1))
            changes.append(0.5 * (policies[0] - policies[1]).abs().sum(dim=-1))
    return torch.cat(changes).reshape(steps, episodes)
