"""Deletion and insertion curves on every head of the agent.

An importance score ranks every (step, episode, categorical) of the rollouts. Deleting the
top-ranked fraction ``f`` of those entries (replacing the posterior's class by the prior's most
likely one: what the model believed before seeing the observation) and reading every head on the
changed latent states gives a deletion curve; starting from the prior everywhere and inserting
the top-ranked fraction of the posterior gives an insertion curve. The same curves in random
orders (seeded) say what an uninformative ranking gives. A head's output change is measured
against its output on the full posterior (the unmodified state):

- ``actor``: total variation between the action distributions;
- ``value``, ``reward``: absolute difference of the predicted value and reward;
- ``discount``: absolute difference of the predicted continuation probability;
- ``decoder``: root-mean-square difference of the reconstructed observations.

Areas (mean over the fractions): deletion ``score - random`` (> 0: the top-ranked entries matter
more to the head than random ones) and insertion ``random - score`` (> 0: restoring them brings
the head back faster). A head the checkpoint lacks is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..model.agent import DreamerAgent, LatentState
from ..results.values import CurveSet
from .trust import mode_one_hot

__all__ = ["FRACTIONS", "RANDOM_ORDERS", "head_curves"]

FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
"""The fractions of the ranked entries deleted or inserted."""
RANDOM_ORDERS = 3
"""Random orders averaged for the random curves."""


def _heads(agent: DreamerAgent) -> dict[str, Callable[[Tensor], Tensor]]:
    """Head name -> function of model states ``[N, deter + stoch]`` giving ``[N, ...]``."""
    heads: dict[str, Callable[[Tensor], Tensor]] = {
        "actor": lambda s: torch.softmax(agent.action_model(s), dim=-1)
    }
    if agent.value_model is not None:
        heads["value"] = agent.value_model
    if agent.reward_decoder is not None:
        heads["reward"] = agent.reward_decoder
    if agent.discount_model is not None:
        model = agent.discount_model
        heads["discount"] = lambda s: torch.sigmoid(model(s))
    if agent.obs_decoder is not None:
        heads["decoder"] = agent.obs_decoder
    return heads


def _change(name: str, output: Tensor, reference: Tensor) -> Tensor:
    difference = (output - reference).flatten(start_dim=1)
    if name == "actor":
        return 0.5 * difference.abs().sum(dim=1)
    if name == "decoder":
        return difference.pow(2).mean(dim=1).sqrt()
    return difference.abs().mean(dim=1)


def head_curves(
    agent: DreamerAgent,
    deter: Tensor,
    posterior_logits: Tensor,
    prior_logits: Tensor,
    scores: Tensor,
    valid: Tensor,
    *,
    seed: int = 0,
) -> tuple[CurveSet, ...]:
    """Deletion and insertion curves of every head for the ranking ``scores``.

    Shape:
        - deter: ``[L, B, D]``; logits: ``[L, B, C, K]``; scores: ``[L, B, C]`` (higher first);
          valid: ``[L, B]`` bool
    """
    device = agent.device
    valid = valid.to(device)
    post = mode_one_hot(posterior_logits.float()).to(device)
    prior = mode_one_hot(prior_logits.float()).to(device)
    deter = deter.to(device)[valid]  # [N, D]
    post, prior = post[valid], prior[valid]  # [N, C, K]
    flat_scores = scores.to(device)[valid].flatten()  # [N * C]
    entries = flat_scores.numel()
    heads = _heads(agent)

    def states(mask: Tensor) -> Tensor:
        """Model states with the posterior where ``mask`` ([N * C]) holds, else the prior."""
        keep = mask.reshape(post.shape[:2])[..., None]
        stoch = torch.where(keep, post, prior)
        return LatentState(stoch, stoch, deter).model_state

    with torch.inference_mode():
        reference = {name: head(states(torch.ones(entries, dtype=torch.bool, device=device)))
                     for name, head in heads.items()}  # fmt: skip

        def curve(order: Tensor, deleting: bool) -> dict[str, list[float]]:
            values: dict[str, list[float]] = {name: [] for name in heads}
            for fraction in FRACTIONS:
                chosen = torch.zeros(entries, dtype=torch.bool, device=device)
                chosen[order[: round(fraction * entries)]] = True
                model_state = states(~chosen if deleting else chosen)
                for name, head in heads.items():
                    change = _change(name, head(model_state), reference[name])
                    values[name].append(float(change.mean()))
            return values

        ranked = torch.argsort(flat_scores, descending=True, stable=True)
        generator = torch.Generator().manual_seed(seed)
        randoms = [torch.randperm(entries, generator=generator).to(device)
                   for _ in range(RANDOM_ORDERS)]  # fmt: skip
        results = []
        kinds: tuple[tuple[bool, Literal["deletion", "insertion"]], ...] = (
            (True, "deletion"),
            (False, "insertion"),
        )
        for deleting, kind in kinds:
            by_score = curve(ranked, deleting)
            by_chance = [curve(order, deleting) for order in randoms]
            for name in heads:
                score_curve = np.asarray(by_score[name])
                random_curve = np.mean([c[name] for c in by_chance], axis=0)
                gap = score_curve - random_curve if deleting else random_curve - score_curve
                results.append(
                    CurveSet(
                        head=name,
                        kind=kind,
                        fractions=FRACTIONS,
                        score_curve=tuple(map(float, score_curve)),
                        random_curve=tuple(map(float, random_curve)),
                        area=float(gap.mean()),
                    )
                )
    return tuple(results)
