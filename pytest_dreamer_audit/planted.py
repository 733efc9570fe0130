"""Planted models: checkpoints edited so that an explanation of them must fail a named check.

Each transform takes a checkpoint in the reference format (the plain dict of seven state_dicts,
``docs/checkpoint-format.md``: ``{"RSSM": {...}, "ActionModel": {...}, ...}``) and returns a new
one in the same format; the input is never modified. :func:`reference_state` and
:func:`agent_from_state` convert between an agent and that dict, so a planted model is audited
exactly like a trained one (rolled out, explained, checked). A failure that no weight edit can
express has a test double instead (:class:`ScreenReadingAgent`).

Which default trust check (``results/trustworthy.TRUST_CHECKS``) must fail which planted model
(:data:`MUST_FAIL`; ``research/planted_matrix.py`` measures the whole matrix):

- :func:`permute_actor`: 6, deletion against permuted actors (a policy unrelated to this world
  model is one of its own controls, so it passes one time in 20, as the p-value says);
- :func:`actor_reads_only` with the least surprising categoricals: 6 (deleting the top-ranked
  entries does not reach what it reads: p = 1.0 on the bundled agent);
- :func:`untrained`: 6 (nothing was learned; a draw from the null like the permuted actor);
- :func:`posterior_is_prior`: 6 and 7 (the surprise is 0 everywhere, deleting changes nothing,
  so the deletion checks are undefined and fail);
- :func:`posterior_ignores_deter`: 4, the posterior reads its memory (``|rho| = 1``);
- :func:`actor_blind_to_latent`: 6 and 7 (no deletion reaches the policy);
- :func:`reward_reads_one`: 8, the reward head predicts the rewards (its rollouts and
  explanation are the trained agent's, so no check of the explanation can tell; a
  permuted-head deletion control on the reward head was tried and the trained head itself
  passed it on only 2 of 3 rollout seeds);
- :class:`ScreenReadingAgent`: 3 and 4, the posterior-only sanity checks (``|rho| = 1``, or a
  constant score, under every score).

Two more break the world model's imagination, not the explanation, and must fail
``assert_imagination_beats_persistence`` (``analysis/imagination.py``):
:func:`permute_recurrent_core` (the GRU's tensors permuted) and :func:`untrained_prior` (the
prior head re-initialised).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .errors import ConfigError
from .model.agent import DreamerAgent, LatentState

__all__ = [
    "MUST_FAIL",
    "ReferenceState",
    "ScreenReadingAgent",
    "actor_blind_to_latent",
    "actor_reads_only",
    "agent_from_state",
    "least_surprising",
    "permute_actor",
    "permute_recurrent_core",
    "planted_models",
    "posterior_ignores_deter",
    "posterior_is_prior",
    "reference_state",
    "reward_reads_one",
    "untrained",
    "untrained_prior",
]

ReferenceState = dict[str, dict[str, Tensor]]
"""A checkpoint in the reference format: state_dict name (``"RSSM"``) -> parameter -> tensor."""


def reference_state(agent: DreamerAgent) -> ReferenceState:
    """The agent's weights in the reference format (detached CPU copies)."""
    return {
        key: {name: t.detach().cpu().clone() for name, t in module.state_dict().items()}
        for key, module in agent.present_modules().items()
    }


def agent_from_state(state: Mapping[str, Mapping[str, Tensor]], like: DreamerAgent) -> DreamerAgent:
    """A copy of ``like`` (sizes, metadata, device) holding the weights of ``state``.

    Raises:
        ConfigError: ``state`` lacks one of ``like``'s networks.
    """
    clone = copy.deepcopy(like)
    for key, module in clone.present_modules().items():
        if key not in state:
            raise ConfigError(f"the planted state has no {key!r}; it has {sorted(state)}")
        module.load_state_dict({n: t.to(like.device) for n, t in state[key].items()}, strict=True)
    return clone.eval()


def _copy(state: Mapping[str, Mapping[str, Tensor]]) -> ReferenceState:
    return {key: {name: t.clone() for name, t in module.items()} for key, module in state.items()}


def _deter_size(state: Mapping[str, Mapping[str, Tensor]]) -> int:
    return int(state["RSSM"]["rnn.weight_hh"].shape[1])


def _generator(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 7919 + salt)


def permute_actor(state: Mapping[str, Mapping[str, Tensor]], seed: int) -> ReferenceState:
    """Each ``ActionModel`` tensor becomes a seeded permutation of its own entries: the same
    values and scale, a policy unrelated to this world model."""
    planted = _copy(state)
    for index, name in enumerate(sorted(planted["ActionModel"])):
        tensor = planted["ActionModel"][name]
        order = torch.randperm(tensor.numel(), generator=_generator(seed, index))
        planted["ActionModel"][name] = tensor.flatten()[order].reshape(tensor.shape)
    return planted


def permute_recurrent_core(state: Mapping[str, Mapping[str, Tensor]], seed: int) -> ReferenceState:
    """Each tensor of the RSSM's GRU (``rnn.*``) becomes a seeded permutation of its own entries:
    the same scale, a memory whose dynamics no longer mean what was learned."""
    planted = _copy(state)
    rssm = planted["RSSM"]
    for index, name in enumerate(sorted(n for n in rssm if n.startswith("rnn."))):
        order = torch.randperm(rssm[name].numel(), generator=_generator(seed, 500 + index))
        rssm[name] = rssm[name].flatten()[order].reshape(rssm[name].shape)
    return planted


def _first_layer(planted: ReferenceState, module: str) -> Tensor:
    """The ``[hidden, deter + stoch]`` input weights of an MLP head (``model.0.weight``)."""
    if module not in planted:
        raise ConfigError(f"the checkpoint has no {module}; it has {sorted(planted)}")
    return planted[module]["model.0.weight"]


def _keep_categoricals(
    planted: ReferenceState, module: str, keep: Sequence[int], classes: int
) -> ReferenceState:
    weight = _first_layer(planted, module)
    deter = _deter_size(planted)
    categoricals = (weight.shape[1] - deter) // classes
    if categoricals * classes != weight.shape[1] - deter:
        raise ConfigError(
            f"{module} reads {weight.shape[1] - deter} stochastic inputs, not a multiple of "
            f"{classes} classes; pass the checkpoint's classes"
        )
    bad = sorted(c for c in keep if not 0 <= c < categoricals)
    if bad:
        raise ConfigError(f"categoricals {bad} do not exist; there are {categoricals}")
    mask = torch.zeros(weight.shape[1], dtype=torch.bool)
    for c in keep:
        mask[deter + c * classes : deter + (c + 1) * classes] = True
    weight[:, ~mask] = 0.0
    return planted


def actor_reads_only(
    state: Mapping[str, Mapping[str, Tensor]], categoricals: Sequence[int], *, classes: int = 20
) -> ReferenceState:
    """The actor reads only ``categoricals`` of the stochastic state (neither the others nor the
    deterministic state): every other input column of its first layer is zeroed. With the
    agent's least surprising categoricals (:func:`least_surprising`) it acts on what the
    observations never change, which deleting the top-ranked entries cannot touch."""
    return _keep_categoricals(_copy(state), "ActionModel", categoricals, classes)


def least_surprising(surprise: Tensor, valid: Tensor, count: int) -> list[int]:
    """The ``count`` categoricals with the lowest mean surprise over valid steps.

    Shape:
        - surprise: ``[L, B, C]`` (``analysis.scores.surprise``); valid: ``[L, B]`` bool
    """
    mean = surprise[valid.to(surprise.device)].mean(dim=0)  # [C]
    return [int(c) for c in torch.argsort(mean, stable=True)[:count]]


def reward_reads_one(
    state: Mapping[str, Mapping[str, Tensor]], categorical: int, *, classes: int = 20
) -> ReferenceState:
    """The reward head reads one categorical of the stochastic state and nothing else."""
    return _keep_categoricals(_copy(state), "RewardDecoder", [categorical], classes)


def actor_blind_to_latent(state: Mapping[str, Mapping[str, Tensor]]) -> ReferenceState:
    """The actor reads only the deterministic state: its stochastic input columns are zeroed,
    so no deletion of posterior entries can change the policy."""
    planted = _copy(state)
    _first_layer(planted, "ActionModel")[:, _deter_size(planted) :] = 0.0
    return planted


def posterior_ignores_deter(state: Mapping[str, Mapping[str, Tensor]]) -> ReferenceState:
    """The posterior reads only the encoded observation: the deterministic-state columns of
    ``fc_posterior.0.weight`` are zeroed (the posterior becomes a function of the screen)."""
    planted = _copy(state)
    planted["RSSM"]["fc_posterior.0.weight"][:, : _deter_size(planted)] = 0.0
    return planted


def posterior_is_prior(state: Mapping[str, Mapping[str, Tensor]]) -> ReferenceState:
    """The posterior network computes the prior exactly: its first layer reads the
    deterministic state with the prior's weights and ignores the embedding, its second layer is
    the prior's. Needs equal hidden widths (true for every reference checkpoint)."""
    planted = _copy(state)
    rssm, deter = planted["RSSM"], _deter_size(planted)
    weight = rssm["fc_posterior.0.weight"]
    if weight.shape[0] != rssm["fc_prior.0.weight"].shape[0]:
        raise ConfigError(
            f"the posterior's hidden width {weight.shape[0]} differs from the prior's "
            f"{rssm['fc_prior.0.weight'].shape[0]}: no weight edit makes them equal"
        )
    weight.zero_()
    weight[:, :deter] = rssm["fc_prior.0.weight"]
    for name in ("fc_posterior.0.bias", "fc_posterior.2.weight", "fc_posterior.2.bias"):
        rssm[name] = rssm[name.replace("posterior", "prior")].clone()
    return planted


def _fan_in(weight: Tensor) -> int:
    """PyTorch's fan-in: dimension 1 times the kernel (for a transposed convolution too, whose
    weight is ``[in, out, k, k]``: PyTorch initialises it from ``out * k * k``)."""
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return int(weight.shape[1]) * receptive


def untrained(state: Mapping[str, Mapping[str, Tensor]], seed: int) -> ReferenceState:
    """Fresh weights at the same sizes, drawn as PyTorch initialises them: every Linear and
    convolution weight and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (the bound of the
    default Kaiming-uniform init with ``a = sqrt(5)``), the GRU's ``U(-1/sqrt(hidden), ...)``."""
    planted = _copy(state)
    for m, (_, module) in enumerate(sorted(planted.items())):
        generator = _generator(seed, 1000 + m)
        for name in sorted(module):
            tensor = module[name]
            if name.startswith("rnn."):
                bound = 1.0 / math.sqrt(module["rnn.weight_hh"].shape[1])
            else:
                bound = 1.0 / math.sqrt(_fan_in(module[name.rsplit(".", 1)[0] + ".weight"]))
            fresh = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            module[name] = ((2 * fresh - 1) * bound).to(tensor.dtype)
    return planted


def untrained_prior(state: Mapping[str, Mapping[str, Tensor]], seed: int) -> ReferenceState:
    """The prior head (``fc_prior``) at fresh weights, drawn as :func:`untrained` draws them;
    every other network keeps its trained weights (the posterior, so the rollouts, unchanged)."""
    planted = _copy(state)
    prior = {name: t for name, t in planted["RSSM"].items() if name.startswith("fc_prior.")}
    planted["RSSM"].update(untrained({"RSSM": prior}, seed)["RSSM"])
    return planted


class ScreenReadingAgent(DreamerAgent):
    """A test double whose posterior is a fixed function of the screen, whatever its weights:
    each categorical peaks at the chicken's row (channel 0), offset by the categorical. Its
    "embedding" is that row, passed through untouched. No weight edit expresses this (the
    encoder's convolutions would have to compute an argmax), hence the subclass.

    Build it with :meth:`from_agent`; randomizing any of its weights leaves its posteriors
    unchanged, so a sanity check on what the posterior produces must fail it.
    """

    @classmethod
    def from_agent(cls, agent: DreamerAgent) -> ScreenReadingAgent:
        """The double with ``agent``'s sizes, weights (prior, actor, heads) and metadata."""
        planted = cls(agent.sizes, heads=frozenset(agent.present_modules()))
        planted.metadata = agent.metadata
        planted.load_state_dict(agent.state_dict())
        return planted.to(agent.device).eval()

    def encode(self, obs: Tensor) -> Tensor:
        """Shape: obs ``[N, channels, 10, 10]`` -> ``[N, 1]`` the chicken's row."""
        return obs[:, 0].sum(dim=2).argmax(dim=1)[:, None].float()

    def posterior(self, deter: Tensor, embedding: Tensor, *, noise: object = None) -> LatentState:
        """Shape: deter ``[B, deter]``, embedding ``[B, 1]`` -> logits ``[B, C, K]``."""
        row = embedding[:, 0].long()
        cats, classes = self.sizes.categoricals, self.sizes.classes
        peak = (row[:, None] + torch.arange(cats, device=row.device)[None]) % classes
        one_hot = torch.nn.functional.one_hot(peak, classes).float()
        return LatentState(4.0 * one_hot, one_hot, deter)


MUST_FAIL: dict[str, tuple[int, ...]] = {
    "permuted actor": (6,),
    "actor reads the least surprising": (6,),
    "untrained": (6,),
    "posterior = prior": (6, 7),
    "posterior ignores deter": (4,),
    "actor blind to the latent": (6, 7),
    "reward reads one categorical": (8,),
    "screen-reading posterior": (3, 4),
}
"""Each planted model of :func:`planted_models` -> the numbers of the default trust checks
(``results/trustworthy.TRUST_CHECKS``) that must fail it. The permuted actor and the untrained
network fail check 6 by chance only as often as a p-value of 0.05 says (they are draws from its
null). Only check 8 reads the reward head: the head that reads one categorical leaves the
rollouts and the explanation the trained agent's."""


def planted_models(
    agent: DreamerAgent, *, least: Sequence[int], seed: int
) -> dict[str, DreamerAgent]:
    """Every planted model of ``agent``, by the names of :data:`MUST_FAIL`.

    Args:
        agent: the trained agent.
        least: its least surprising categoricals (:func:`least_surprising` on its rollouts):
            the categoricals the "reads the least surprising" actor keeps; the first is the one
            the reward head reads.
        seed: seeds the permutation and the fresh weights.
    """
    state = reference_state(agent)
    classes = agent.sizes.classes
    edits: dict[str, ReferenceState] = {
        "permuted actor": permute_actor(state, seed),
        "actor reads the least surprising": actor_reads_only(state, least, classes=classes),
        "untrained": untrained(state, seed),
        "posterior = prior": posterior_is_prior(state),
        "posterior ignores deter": posterior_ignores_deter(state),
        "actor blind to the latent": actor_blind_to_latent(state),
        "reward reads one categorical": reward_reads_one(state, least[0], classes=classes),
    }
    models = {name: agent_from_state(edit, agent) for name, edit in edits.items()}
    models["screen-reading posterior"] = ScreenReadingAgent.from_agent(agent)
    return models
