"""The DreamerV2 agent: latent states passed in and returned, the reference forward pass.

``DreamerAgent`` bundles the networks of one checkpoint. It holds weights, never rollout state:
every step takes a :class:`LatentState` and returns new ones, so batches, rollouts and imagined
trajectories are explicit in the caller's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .networks import RSSM, DenseModel, ModelSizes, ObsDecoder, ObsEncoder
from .sampling import NoiseSource, gumbel_argmax

__all__ = [
    "CHECKPOINT_MODULES",
    "AgentMetadata",
    "DreamerAgent",
    "LatentState",
    "build_agent",
]

# Noise streams: one per kind of draw, so that no two draws of a step share random numbers.
STREAM_PRIOR = 0
STREAM_POSTERIOR = 1
STREAM_ACTION = 2

CHECKPOINT_MODULES: dict[str, str] = {
    "RSSM": "rssm",
    "ObsEncoder": "obs_encoder",
    "ActionModel": "action_model",
    "ObsDecoder": "obs_decoder",
    "RewardDecoder": "reward_decoder",
    "ValueModel": "value_model",
    "DiscountModel": "discount_model",
}
"""Checkpoint key of each state_dict -> attribute of :class:`DreamerAgent` holding it."""


class LatentState(NamedTuple):
    """A batch of RSSM states.

    Attributes:
        logits: ``[B, categoricals, classes]`` logits of the stochastic state's distribution.
        stoch: ``[B, categoricals, classes]`` one-hot sample (straight-through when grads are on).
        deter: ``[B, deter]`` the GRU's deterministic state.
    """

    logits: Tensor
    stoch: Tensor
    deter: Tensor

    @property
    def model_state(self) -> Tensor:
        """``cat[deter, stoch]``, shape ``[B, deter + stoch]``: the actor's and heads' input."""
        return torch.cat([self.deter, self.stoch.flatten(start_dim=1)], dim=-1)

    @property
    def probs(self) -> Tensor:
        """``softmax(logits)`` over the classes, shape ``[B, categoricals, classes]``."""
        return torch.softmax(self.logits, dim=-1)


@dataclass(frozen=True)
class AgentMetadata:
    """What a native checkpoint records beyond the tensors.

    Attributes:
        game: MinAtar game the agent was trained on, or None when unknown (reference files).
        pomdp: whether it saw the partially observable channel subset, or None when unknown.
        training: plain values describing the training run (steps, wall time, machine, ...).
    """

    game: str | None = None
    pomdp: bool | None = None
    training: dict[str, Any] = field(default_factory=dict)


def _sample_one_hot(logits: Tensor, noise: NoiseSource | None, stream: int) -> Tensor:
    """One-hot sample per categorical; straight-through gradients when autograd is recording.

    Shape:
        - logits: ``[B, categoricals, classes]``
        - output: same shape, float
    """
    index = gumbel_argmax(logits, noise, stream)
    one_hot = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
    if torch.is_grad_enabled() and logits.requires_grad:
        probs = torch.softmax(logits, dim=-1)
        return one_hot + probs - probs.detach()
    return one_hot


class DreamerAgent(nn.Module):
    """A DreamerV2 agent with the reference MinAtar architecture.

    The four networks needed to act and to audit (``obs_encoder``, ``rssm``, ``action_model``)
    are always present; ``obs_decoder``, ``reward_decoder``, ``value_model`` and
    ``discount_model`` are None when the checkpoint did not carry them.
    """

    obs_decoder: ObsDecoder | None
    reward_decoder: DenseModel | None
    value_model: DenseModel | None
    discount_model: DenseModel | None

    def __init__(
        self,
        sizes: ModelSizes,
        *,
        heads: frozenset[str] = frozenset(CHECKPOINT_MODULES),
        metadata: AgentMetadata | None = None,
    ) -> None:
        super().__init__()
        unknown = set(heads) - set(CHECKPOINT_MODULES)
        if unknown:
            raise ConfigError(
                f"unknown modules {sorted(unknown)}; choose from {sorted(CHECKPOINT_MODULES)}"
            )
        self.sizes = sizes
        self.metadata = metadata if metadata is not None else AgentMetadata()
        self.obs_encoder = ObsEncoder(sizes)
        self.rssm = RSSM(sizes)
        self.action_model = DenseModel(
            sizes.model_state, sizes.actor_hidden, sizes.actor_layers, sizes.actions
        )
        self.obs_decoder = ObsDecoder(sizes) if "ObsDecoder" in heads else None
        for key in ("RewardDecoder", "ValueModel", "DiscountModel"):
            head = (
                DenseModel(sizes.model_state, sizes.head_hidden, sizes.head_layers, 1)
                if key in heads
                else None
            )
            setattr(self, CHECKPOINT_MODULES[key], head)

    @property
    def device(self) -> torch.device:
        """Device of the agent's weights."""
        return self.rssm.rnn.weight_hh.device

    def present_modules(self) -> dict[str, nn.Module]:
        """Checkpoint key -> network, for the networks this agent has."""
        modules = {key: getattr(self, attr) for key, attr in CHECKPOINT_MODULES.items()}
        return {key: module for key, module in modules.items() if module is not None}

    def noise_streams(self) -> dict[int, tuple[int, ...]]:
        """The draws of one :meth:`observe` + :meth:`act` step: stream -> shape without the batch
        axis (what :meth:`NoiseKeys.draw_steps` needs to draw a rollout's noise ahead)."""
        latent = (self.sizes.categoricals, self.sizes.classes)
        return {
            STREAM_PRIOR: latent,
            STREAM_POSTERIOR: latent,
            STREAM_ACTION: (self.sizes.actions,),
        }

    def initial_state(self, batch_size: int) -> LatentState:
        """The all-zero state that starts every episode.

        Shape:
            - logits, stoch: ``[batch_size, categoricals, classes]``; deter: ``[batch_size, deter]``
        """
        s = self.sizes
        zeros = torch.zeros(batch_size, s.categoricals, s.classes, device=self.device)
        return LatentState(
            zeros, zeros.clone(), torch.zeros(batch_size, s.deter, device=self.device)
        )

    def imagine(
        self,
        state: LatentState,
        prev_action: Tensor,
        nonterminal: Tensor | None = None,
        *,
        noise: NoiseSource | None = None,
    ) -> LatentState:
        """The prior step: predict the next state from the previous state and action alone.

        ``nonterminal`` (``[B]`` or ``[B, 1]``, 0 where the previous step ended an episode)
        resets the recurrent inputs as the reference does. ``noise`` makes the stochastic sample
        reproducible per episode (see ``sampling.py``); None uses torch's global generator.

        Shape:
            - prev_action: ``[B, actions]`` one-hot float
            - output: a :class:`LatentState` of batch ``B``
        """
        stoch = state.stoch.flatten(start_dim=1)
        deter = state.deter
        if nonterminal is not None:
            mask = nonterminal.reshape(-1, 1).to(deter.dtype)
            stoch, deter = stoch * mask, deter * mask
        deter = self.rssm.transition(stoch, deter, prev_action)
        logits = self.rssm.fc_prior(deter).reshape(-1, self.sizes.categoricals, self.sizes.classes)
        return LatentState(logits, _sample_one_hot(logits, noise, STREAM_PRIOR), deter)

    def observe(
        self,
        state: LatentState,
        obs: Tensor,
        prev_action: Tensor,
        nonterminal: Tensor | None = None,
        *,
        noise: NoiseSource | None = None,
    ) -> tuple[LatentState, LatentState]:
        """One filtering step: the prior from the past, then the posterior given ``obs``.

        Shape:
            - obs: ``[B, channels, 10, 10]`` float
            - prev_action: ``[B, actions]`` one-hot float
            - output: ``(prior, posterior)``, both of batch ``B`` and sharing ``deter``
        """
        prior = self.imagine(state, prev_action, nonterminal, noise=noise)
        return prior, self.posterior(prior.deter, self.encode(obs), noise=noise)

    def encode(self, obs: Tensor) -> Tensor:
        """The observation's embedding, the posterior's input (any batch: no step depends on
        another, so a replay encodes all its steps at once).

        Shape:
            - obs: ``[N, channels, 10, 10]`` float; output: ``[N, embedding]``
        """
        return self.obs_encoder(obs)

    def posterior(
        self, deter: Tensor, embedding: Tensor, *, noise: NoiseSource | None = None
    ) -> LatentState:
        """The posterior given the deterministic state and an encoded observation.

        Shape:
            - deter: ``[B, deter]``; embedding: ``[B, embedding]``
            - output: a :class:`LatentState` of batch ``B``
        """
        hidden = torch.cat([deter, embedding], dim=-1)
        logits = self.rssm.fc_posterior(hidden).reshape(
            -1, self.sizes.categoricals, self.sizes.classes
        )
        return LatentState(logits, _sample_one_hot(logits, noise, STREAM_POSTERIOR), deter)

    def policy_logits(self, state: LatentState) -> Tensor:
        """The actor's logits over the minimal action set, shape ``[B, actions]``."""
        return self.action_model(state.model_state)

    def act(
        self, state: LatentState, *, greedy: bool = False, noise: NoiseSource | None = None
    ) -> Tensor:
        """Choose actions: argmax of the policy when ``greedy``, else a sample from it.

        Shape:
            - output: ``[B]`` int64 indices into the game's minimal action set
        """
        logits = self.policy_logits(state)
        if greedy:
            return torch.argmax(logits, dim=-1)
        return gumbel_argmax(logits, noise, STREAM_ACTION)

    def one_hot_actions(self, actions: Tensor) -> Tensor:
        """``[B]`` action indices -> ``[B, actions]`` float one-hot (the RSSM's action input)."""
        return F.one_hot(actions, self.sizes.actions).to(torch.float32)

    def arrival_value(
        self, features: Tensor, discount: float, critic: nn.Module | None = None
    ) -> Tensor:
        """The value of arriving in the model states ``features``: ``r(s') + discount *
        P(continue | s') * V(s')``, with ``V`` the checkpoint's value model unless ``critic`` is
        given (a trainer's slow target). Averaged over the prior samples of ``s'`` after an
        action, it is that action's one-step ``Q``.

        Shape:
            - features: ``[..., model_state]``; output: ``[...]``
        """
        critic = critic if critic is not None else self.value_model
        if self.reward_decoder is None or self.discount_model is None or critic is None:
            raise ConfigError(
                "a one-step value needs the checkpoint's RewardDecoder, DiscountModel and "
                "ValueModel (or a critic passed in); this agent lacks at least one of them"
            )
        reward = self.reward_decoder(features).squeeze(-1)
        alive = torch.sigmoid(self.discount_model(features).squeeze(-1))
        value: Tensor = reward + discount * alive * critic(features).squeeze(-1)
        return value


def build_agent(
    sizes: ModelSizes,
    *,
    seed: int | None = None,
    metadata: AgentMetadata | None = None,
) -> DreamerAgent:
    """A freshly initialised agent with every network, in eval mode, on CPU.

    With ``seed`` the initial weights are reproducible (torch's global generator is left alone).
    """
    if seed is None:
        return DreamerAgent(sizes, metadata=metadata).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DreamerAgent(sizes, metadata=metadata).eval()
