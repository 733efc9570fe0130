"""Importance scores from an NMF: per row, per (step, episode, categorical), per observation.

Definitions (r factors, D rows of unit norm, A the activations):

* ``"activation"``: a row's score is ``||A_i||_2``. In the per-step layout a categorical's
  share is ``sqrt(sum_j (A_ij * ||D_j[c]||)^2)``, the activation mass flowing into its block.
* ``"reconstruction"``: ``||(A D)_i||_2`` (the notebook's score); per categorical, the norm of
  the reconstruction's block ``c``.
* ``"surprise"``: ``KL(posterior || prior)`` of each categorical, independent of the NMF.

An observation aggregates its categoricals: the L2 norm of their scores for the two NMF scores
(the Frobenius norm of the observation's activations) and the sum of the KLs for surprise (the
KL of the joint distribution, since the categoricals are independent). Every array is then
divided by its maximum over valid entries, so 1 marks the most important entry.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from .factorize import Factorization, FlatRows, unflatten_rows

__all__ = [
    "categorical_scores",
    "factor_activations",
    "normalize_valid",
    "observation_scores",
    "surprise",
    "top_observations",
]


_CHUNK_ENTRIES = 1 << 20
"""Logits per chunk of :func:`surprise` (4 MB of float32): its five temporaries of the logits'
size were 410 MB at 1024 x 50, most of ``explain``'s peak before the first fit (issue 33)."""


def surprise(posterior_logits: Tensor, prior_logits: Tensor) -> Tensor:
    """``KL(posterior || prior)`` per categorical, in nats, a chunk of steps at a time (the
    same numbers: every categorical's KL is computed alone).

    Shape:
        - logits: ``[L, B, C, K]``; output: ``[L, B, C]``
    """
    out = torch.empty(posterior_logits.shape[:-1], device=posterior_logits.device)
    per_step = max(1, math.prod(posterior_logits.shape[1:]))
    chunk = max(1, _CHUNK_ENTRIES // per_step)
    for start in range(0, posterior_logits.shape[0], chunk):
        steps = slice(start, start + chunk)
        log_post = torch.log_softmax(posterior_logits[steps].float(), dim=-1)
        log_prior = torch.log_softmax(prior_logits[steps].float(), dim=-1)
        out[steps] = (log_post.exp() * (log_post - log_prior)).sum(dim=-1).clamp(min=0)
    return out


def categorical_scores(
    kind: str, rows: FlatRows, fit: Factorization, kl: Tensor | None = None
) -> Tensor:
    """Un-normalised score of each (step, episode, categorical), 0 at invalid steps.

    Shape:
        - output: ``[L, B, C]``
    """
    if kind == "surprise":
        if kl is None:
            raise ConfigError("the surprise score needs the KL divergence of each categorical")
        steps, episodes, _, _ = rows.shape
        mask = torch.zeros(steps, episodes, dtype=torch.bool, device=kl.device)
        mask[rows.step, rows.episode] = True
        return kl * mask[..., None]
    a, d = fit.activations, fit.prototypes
    if rows.categorical is not None:  # pooled: one row per categorical already
        per_row = a.norm(dim=1) if kind == "activation" else (a @ d).norm(dim=1)
        return unflatten_rows(per_row, rows)
    cats, classes = rows.shape[2], rows.shape[3]
    if kind == "activation":
        block_norms = d.reshape(d.shape[0], cats, classes).norm(dim=2)  # [r, C]
        per_cat = torch.sqrt((a * a) @ (block_norms * block_norms))  # [N, C]
    else:
        per_cat = (a @ d).reshape(-1, cats, classes).norm(dim=2)
    return unflatten_rows(per_cat, rows)


def observation_scores(kind: str, per_categorical: Tensor) -> Tensor:
    """Aggregate ``[L, B, C]`` categorical scores to ``[L, B]`` (see the module docstring)."""
    if kind == "surprise":
        return per_categorical.sum(dim=-1)
    return per_categorical.norm(dim=-1)


def normalize_valid(values: Tensor, valid: Tensor) -> Tensor:
    """Divide by the maximum over valid entries; invalid entries become 0.

    ``valid`` is ``[L, B]`` and broadcasts over trailing axes of ``values``.
    """
    mask = valid.reshape(*valid.shape, *([1] * (values.dim() - valid.dim())))
    masked = values * mask
    peak = masked.max()
    return masked / peak if float(peak) > 0 else masked


def top_observations(scores: Tensor, valid: Tensor, k: int) -> Tensor:
    """The ``k`` highest-scoring valid steps of each rollout, best first; -1 pads.

    Shape:
        - scores, valid: ``[L, B]``; output: ``[B, k]`` int64
    """
    steps = scores.shape[0]
    ranked = torch.where(valid, scores, torch.full_like(scores, -1.0)).T  # [B, L]
    width = min(k, steps)
    values, index = torch.topk(ranked, width, dim=1)
    index = torch.where(values >= 0, index, torch.full_like(index, -1))
    if width < k:
        index = torch.cat([index, index.new_full((index.shape[0], k - width), -1)], dim=1)
    return index


def factor_activations(rows: FlatRows, fit: Factorization) -> Tensor:
    """How strongly each observation excites each factor: the maximum of ``A[:, j]`` over the
    observation's rows (0 at invalid steps). Each factor's dataset examples are its largest
    values (``results/picks.py``).

    Shape:
        - output: ``[L, B, r]``
    """
    per_row = unflatten_rows(fit.activations, rows)  # [L, B, C, r] or [L, B, r]
    return per_row.amax(dim=2) if rows.categorical is not None else per_row
