"""Model parameter randomization: does the explanation depend on what the weights learned?

Adebayo et al. (2018) randomize a network's layers, from the top down (cascading) and one at a
time (independent), and ask whether the explanation changes; Quantus ships it as the model
parameter randomisation test (MPRT). An explanation that survives randomization describes the
inputs or the architecture, not the trained model.

Here the explanation depends on the posteriors, so the layers are those that make them, from the
top down (:data:`LAYERS`): the posterior head, the prior head, the GRU, the state-action embedding,
the encoder's dense layer and its three convolutions. The actor and the other heads do not touch
the posteriors and are left alone.

**Keeping the scale.** Re-initialising a layer (PyTorch's default init) makes the posteriors
almost exactly uniform (entropy 2.995 of ln 20 = 2.996 nats on the bundled agent): "the trained
scores differ from random weights'" then holds for any model. Two steps keep the scale instead:

1. each randomized tensor is a seeded permutation of its own entries: the same values, so the
   same scale and distribution, in an order that no longer encodes anything;
2. permuted weights still produce flat logits (entropy 2.986 with every layer permuted), so the
   randomized logits are rescaled to the trained logits' spread (:func:`match_scale`: one
   factor for the posterior's logits and one for the prior's, the ratio of the mean standard
   deviation over classes at the valid steps). Softmax is unchanged in ranking; the posteriors
   become as peaked as the trained ones.

Every stage reports the randomized posteriors' mean entropy next to the similarity, so a reader
can see that they are not uniform.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from ..model.agent import DreamerAgent
from ..results.config import RANDOMIZATIONS
from ..results.values import StageKind

__all__ = [
    "LAYERS",
    "match_scale",
    "mean_entropy",
    "permute_parameters",
    "permuted_tensors",
    "softmax_",
    "stages",
]

LAYERS: tuple[tuple[str, str], ...] = (
    ("posterior head", "rssm.fc_posterior"),
    ("prior head", "rssm.fc_prior"),
    ("GRU", "rssm.rnn"),
    ("state-action embedding", "rssm.fc_embed_state_action"),
    ("encoder dense", "obs_encoder.fc_1"),
    ("encoder conv 3", "obs_encoder.convolutions.4"),
    ("encoder conv 2", "obs_encoder.convolutions.2"),
    ("encoder conv 1", "obs_encoder.convolutions.0"),
)
"""The layers that make the posteriors, top down: (name in the report, parameter prefix)."""

Stage = tuple[StageKind, str, tuple[int, ...]]
"""(kind: "full", "cascade" or "independent"; name; indices into :data:`LAYERS`)."""


def stages(mode: str) -> list[Stage]:
    """The stages of a randomization run: ``"full"``, one stage with every layer of
    :data:`LAYERS` randomized (the sanity check's default); ``"cascade"``, the cascading stages
    (the top layer, then the top two, ...) and then each layer alone, 16 stages."""
    everything = tuple(range(len(LAYERS)))
    if mode == "full":
        return [("full", "all layers", everything)]
    if mode != "cascade":
        raise ConfigError(
            f"unknown randomization {mode!r}; choose from {', '.join(RANDOMIZATIONS)}"
        )
    cascade: list[Stage] = [
        ("cascade", f"down to {LAYERS[i][0]}", tuple(range(i + 1))) for i in range(len(LAYERS))
    ]
    alone: list[Stage] = [("independent", name, (i,)) for i, (name, _) in enumerate(LAYERS)]
    return cascade + alone


def permuted_tensors(agent: DreamerAgent, layers: Sequence[int], seed: int) -> dict[str, Tensor]:
    """The permuted parameters of :func:`permute_parameters`, by name, without copying the
    agent: parameter name -> a new tensor (only the parameters of ``layers``)."""
    parameters = dict(agent.named_parameters())
    permuted = {}
    with torch.no_grad():
        for index in layers:
            prefix = LAYERS[index][1]
            generator = torch.Generator().manual_seed(seed * 1009 + index)
            for name in sorted(parameters):
                if name.startswith(prefix + "."):
                    tensor = parameters[name].detach()
                    order = torch.randperm(tensor.numel(), generator=generator)
                    permuted[name] = tensor.flatten()[order.to(tensor.device)].reshape(tensor.shape)
    return permuted


def permute_parameters(agent: DreamerAgent, layers: Sequence[int], seed: int) -> DreamerAgent:
    """A copy of ``agent`` whose parameters in ``layers`` (indices into :data:`LAYERS`) are each
    a permutation of their own entries, seeded by ``seed`` and the layer (so that a layer is
    permuted the same way in every stage that randomizes it). The original is not touched."""
    clone = copy.deepcopy(agent)
    parameters = dict(clone.named_parameters())
    with torch.no_grad():
        for name, tensor in permuted_tensors(agent, layers, seed).items():
            parameters[name].copy_(tensor)
    return clone


_CHUNK_ENTRIES = 1 << 20
"""Logits per chunk of the per-categorical reductions below (4 MB of float32): their
temporaries of the logits' size were part of ``explain``'s peak (issue 33)."""


def _per_categorical(reduce: Callable[[Tensor], Tensor], logits: Tensor) -> Tensor:
    """``reduce`` (float32 ``[l, B, C, K]`` to ``[l, B, C]``) applied a chunk of steps at a
    time: the same numbers, each categorical's reduction being its own."""
    out = torch.empty(logits.shape[:-1], device=logits.device)
    chunk = max(1, _CHUNK_ENTRIES // max(1, math.prod(logits.shape[1:])))
    for start in range(0, logits.shape[0], chunk):
        out[start : start + chunk] = reduce(logits[start : start + chunk].float())
    return out


def _entropy(logits: Tensor) -> Tensor:
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


def _centred_squares(x: Tensor) -> Tensor:
    return (x - x.mean(dim=-1, keepdim=True)).square_().sum(dim=-1)


def mean_entropy(logits: Tensor, valid: Tensor) -> float:
    """Mean entropy (nats) of the categoricals over the valid steps.

    Shape:
        - logits: ``[L, B, C, K]``; valid: ``[L, B]`` bool
    """
    entropy = _per_categorical(_entropy, logits)  # [L, B, C]
    return float(entropy[valid.to(entropy.device)].mean())


def _spread(logits: Tensor, valid: Tensor) -> Tensor:
    """Mean standard deviation over the classes (Bessel-corrected) at the valid steps, from
    the centred squares: ``Tensor.std`` over a 20-wide last axis took 6.6x as long (23.6 ms
    against 3.6 ms for ``[50, 64, 20, 20]``, one thread)."""
    squares = _per_categorical(_centred_squares, logits)
    return squares.div_(max(logits.shape[-1] - 1, 1)).sqrt_()[valid.to(logits.device)].mean()


def match_scale(
    randomized: Tensor, trained: Tensor, valid: Tensor, *, in_place: bool = False
) -> Tensor:
    """``randomized`` logits scaled so that their mean standard deviation over the classes at
    valid steps equals the trained logits' (unchanged where the randomized ones are flat).

    Args:
        in_place: scale ``randomized`` itself and return it (for a caller that reads the
            unscaled logits no more: one copy of them fewer, issue 33); the same numbers.

    Shape:
        - randomized, trained: ``[L, B, C, K]``; valid: ``[L, B]``; output: like randomized
    """
    spread = _spread(randomized, valid)
    if float(spread) <= 0:
        return randomized
    factor = (_spread(trained, valid) / spread).to(randomized.dtype)
    return randomized.mul_(factor) if in_place else randomized * factor


def softmax_(logits: Tensor) -> Tensor:
    """``softmax(logits, dim=-1)`` written over ``logits`` and returned, a chunk of steps at
    a time (the same numbers: every categorical's softmax is its own), so no second tensor of
    the logits' size is held.

    Shape:
        - logits: ``[L, ...]`` float32, the classes last; output: the same tensor
    """
    chunk = max(1, _CHUNK_ENTRIES // max(1, math.prod(logits.shape[1:])))
    for start in range(0, logits.shape[0], chunk):
        logits[start : start + chunk] = torch.softmax(logits[start : start + chunk], dim=-1)
    return logits
