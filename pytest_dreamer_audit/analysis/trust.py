"""Trust metrics of an explanation: stability, confidence, sanity and deletion faithfulness.

Deletion by the surprise ranking is nearly circular (surprise is KL(posterior || prior), and
deleting replaces the posterior by the prior, so the top-ranked entries move any reader of the
latent most): :func:`controlled_deletion` compares the trained actor with permuted actors on the
same deletions, and the p-value, not the ratio, is the check.

Each function returns plain floats; ``TrustMetrics`` (``explanation.py``) documents their meaning.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.agent import DreamerAgent, LatentState
from ..model.networks import DenseModel
from ..results import similarity
from ..results.nulls import spearman_columns

__all__ = [
    "DELETION_CHUNK",
    "DELETION_CONTROLS",
    "DELETION_DRAWS",
    "DELETION_FRACTION",
    "ControlledDeletion",
    "EntryDeletion",
    "controlled_deletion",
    "deletion_effects",
    "matched_cosines",
    "mode_one_hot",
    "permuted_module",
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


DELETION_FRACTION = 0.2
"""Share of the valid (step, episode, categorical) entries deleted by the controlled deletion:
the top-ranked, the bottom-ranked or a random share. On the bundled agent (16 x 50, seeds
7100, 7200, 7300) the trained actor beats all 39 permuted actors at 0.2 on every seed; at 0.1
it fell inside them on one seed (4.88 against a median of 5.22) and at 0.02 on two."""
DELETION_CONTROLS = 19
"""Permuted actors behind the deletion p-value: its smallest value is 1 / (1 + 19) = 0.05."""
DELETION_DRAWS = 2
"""Random entry sets averaged for the random deletion."""


@dataclass(frozen=True)
class EntryDeletion:
    """One actor's total-variation change when a share of the ranked entries is deleted (each
    deleted categorical's posterior class replaced by the prior's most likely class), averaged
    over the valid steps.

    Attributes:
        top, bottom: deleting the top-ranked and the bottom-ranked entries.
        random: deleting random entries (mean over :data:`DELETION_DRAWS` draws).
    """

    top: float
    bottom: float
    random: float

    @property
    def top_ratio(self) -> float:
        """``top / random``; NaN when random deletions never change the policy."""
        return self.top / self.random if self.random > 0 else math.nan

    @property
    def bottom_ratio(self) -> float:
        """``bottom / random``; NaN when random deletions never change the policy."""
        return self.bottom / self.random if self.random > 0 else math.nan


@dataclass(frozen=True)
class ControlledDeletion:
    """The trained actor's entry deletion and the same deletion through permuted actors.

    Attributes:
        trained: the trained actor's :class:`EntryDeletion`.
        controls: one per permuted actor (each actor tensor a seeded permutation of its own
            entries: a policy of the same scale that does not read this latent the way the
            trained one does), on the same states, with the same entries deleted.
    """

    trained: EntryDeletion
    controls: tuple[EntryDeletion, ...]

    @property
    def control_ratios(self) -> Tensor:
        """``[n]`` the permuted actors' top ratios (NaN where one never changes)."""
        return torch.tensor([c.top_ratio for c in self.controls], dtype=torch.float64)

    @property
    def p_value(self) -> float:
        """``(1 + #{control ratio >= trained ratio}) / (1 + n)``: small when the trained actor
        depends on the top-ranked entries more selectively than policies unrelated to this
        latent; NaN when the trained ratio is. A control that never changes counts as beaten."""
        ratio = self.trained.top_ratio
        if math.isnan(ratio):
            return math.nan
        ratios = self.control_ratios
        beaten = int((ratios[~ratios.isnan()] >= ratio).sum())
        return (1 + beaten) / (1 + len(self.controls))


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def permuted_module(module: ModuleT, seed: int) -> ModuleT:
    """A copy of ``module`` whose every parameter tensor is a seeded permutation of its own
    entries (the same values and scale, in an order that encodes nothing)."""
    clone = copy.deepcopy(module)
    with torch.no_grad():
        for index, (_, tensor) in enumerate(sorted(clone.named_parameters())):
            generator = torch.Generator().manual_seed(seed * 1009 + index)
            order = torch.randperm(tensor.numel(), generator=generator).to(tensor.device)
            tensor.copy_(tensor.flatten()[order].reshape(tensor.shape))
    return clone


def _entry_sets(scores: Tensor, fraction: float, seed: int) -> list[Tensor]:
    """Boolean ``[N, C]`` masks: the top-ranked, the bottom-ranked, then the random entries."""
    flat = scores.flatten()
    count = max(1, round(fraction * flat.numel()))
    order = torch.argsort(flat, descending=True, stable=True)
    generator = torch.Generator().manual_seed(seed)
    chosen = [order[:count], order[-count:]] + [
        torch.randperm(flat.numel(), generator=generator)[:count].to(flat.device)
        for _ in range(DELETION_DRAWS)
    ]
    masks = []
    for index in chosen:
        mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        mask[index] = True
        masks.append(mask.reshape(scores.shape))
    return masks


def _policies(actor: DenseModel, deter: Tensor, classes: list[Tensor]) -> list[Tensor]:
    """The actor's action distribution for one deterministic state and several one-hot
    stochastic states, each given by its class indices into the flattened ``C * K`` inputs.

    The first layer's deterministic half is computed once and its stochastic half gathered
    (one column per categorical: the input is one-hot), which is what makes 20 actors on 6
    variants of every state cheap.

    Shape:
        - deter: ``[N, D]``; classes: each ``[N, C]`` int64 in ``[0, C * K)``; output: each
          ``[N, actions]``
    """
    first, rest = actor.model[0], actor.model[1:]
    if not isinstance(first, nn.Linear):
        raise TypeError(f"the actor's first layer is a {type(first).__name__}, not a Linear")
    width = deter.shape[1]
    shared = F.linear(deter, first.weight[:, :width], first.bias)  # [N, H]
    columns = first.weight[:, width:].T.contiguous()  # [C * K, H]
    return [
        torch.softmax(rest(shared + F.embedding_bag(c, columns, mode="sum")), dim=-1)
        for c in classes
    ]


def _changes(policies: list[Tensor]) -> list[float]:
    """Mean total variation between ``policies[0]`` and each other one."""
    return [float(0.5 * (p - policies[0]).abs().sum(dim=-1).mean()) for p in policies[1:]]


def controlled_deletion(
    actor: DenseModel,
    deter: Tensor,
    posterior_logits: Tensor,
    prior_logits: Tensor,
    scores: Tensor,
    *,
    fraction: float = DELETION_FRACTION,
    controls: int = DELETION_CONTROLS,
    seed: int = 0,
) -> ControlledDeletion:
    """Delete the top-ranked, bottom-ranked and random entries for the trained ``actor`` and for
    ``controls`` permuted copies of it: no new rollouts, the same states and deletions (the
    controls' bottom-ranked deletion is not needed and is not computed: NaN).

    Shape:
        - deter: ``[N, deter]`` (the valid steps); logits: ``[N, C, K]``; scores: ``[N, C]``
          (higher first)
    """
    with torch.inference_mode():
        device = deter.device
        categoricals, classes = posterior_logits.shape[1:]
        offsets = torch.arange(categoricals, device=device) * classes
        posterior = posterior_logits.argmax(dim=-1) + offsets  # [N, C]
        prior = prior_logits.argmax(dim=-1) + offsets
        top, bottom, *randoms = [
            torch.where(mask, prior, posterior)
            for mask in _entry_sets(scores.to(device), fraction, seed)
        ]
        trained_changes = _changes(_policies(actor, deter, [posterior, top, bottom, *randoms]))
        trained = EntryDeletion(
            trained_changes[0], trained_changes[1], sum(trained_changes[2:]) / len(randoms)
        )
        permuted = []
        for i in range(controls):
            policy = permuted_module(actor, seed + 1 + i)
            changes = _changes(_policies(policy, deter, [posterior, top, *randoms]))
            permuted.append(EntryDeletion(changes[0], math.nan, sum(changes[1:]) / len(randoms)))
    return ControlledDeletion(trained, tuple(permuted))
