"""Batched rollouts of a DreamerV2 agent in a MinAtar game, recorded as time-major tensors.

All episodes advance in lock-step: each step is one batched forward pass on the agent's device
under ``torch.inference_mode()``, and one host copy each way (observations in, actions out, which
the Python games need). The sampling noise of many steps is drawn in one pass ahead of them, so a
step launches only the networks' kernels. Everything else stays in preallocated buffers until the
end.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, SavedDataError
from ..games import (
    GameTarget,
    check_agent_fits,
    check_episode_seeds,
    game_spec,
    resolve_target,
)
from ..model.agent import DreamerAgent
from ..model.devices import resolve_device
from ..model.sampling import NoiseKeys
from .envs import GameBatch

__all__ = [
    "ReplayedLatents",
    "Trajectory",
    "episode_seeds",
    "load_trajectory",
    "replay_posteriors",
    "run_rollouts",
    "save_trajectory",
]


@dataclass(frozen=True)
class Trajectory:
    """``steps`` x ``episodes`` of agent-environment interaction, time-major.

    Row ``t`` holds observation ``o_t``, the RSSM states computed from it, the action ``a_t``
    the actor chose after seeing it, and what ``a_t`` led to (reward, termination, transition
    facts). Rows after an episode's end are padding: ``valid`` is False there.

    Attributes:
        game, pomdp: the game and whether the agent saw the POMDP channel subset.
        seeds: the seed of each episode (environment and sampling), length ``B``.
        greedy: whether actions were the policy's argmax rather than samples.
        fact_names: names of the last axis of ``facts`` (see ``envs.py``).
        observations: ``[L, B, channels, 10, 10]`` bool, what the agent saw.
        prior_logits, posterior_logits: ``[L, B, categoricals, classes]`` float32.
        stoch_classes: ``[L, B, categoricals]`` int64, the class each posterior sample drew
            (:attr:`stoch` is its one-hot form, made when read; the indices take 2/K of its memory).
        deter: ``[L, B, deter]`` float32.
        actions: ``[L, B]`` int64 indices into the minimal action set.
        rewards: ``[L, B]`` float32. terminals: ``[L, B]`` bool, the episode ended at this step.
        valid: ``[L, B]`` bool, the row is a real step of the episode.
        facts: ``[L, B, F]`` int32 game facts.
    """

    game: str
    pomdp: bool
    seeds: tuple[int, ...]
    greedy: bool
    fact_names: tuple[str, ...]
    observations: Tensor
    prior_logits: Tensor
    posterior_logits: Tensor
    stoch_classes: Tensor
    deter: Tensor
    actions: Tensor
    rewards: Tensor
    terminals: Tensor
    valid: Tensor
    facts: Tensor

    @property
    def steps(self) -> int:
        """L, the number of recorded steps (rows)."""
        return int(self.actions.shape[0])

    @property
    def episodes(self) -> int:
        """B, the number of episodes (columns)."""
        return int(self.actions.shape[1])

    @property
    def stoch(self) -> Tensor:
        """The posterior samples one-hot, ``[L, B, categoricals, classes]`` float32 (made on
        each read from :attr:`stoch_classes`; :meth:`stoch_steps` makes a slice of steps)."""
        return self.stoch_steps(slice(None))

    def stoch_steps(self, steps: slice) -> Tensor:
        """The one-hot posterior samples of ``steps`` only, ``[l, B, categoricals, classes]``
        float32 on the trajectory's device (where memory counts: 1/l of :attr:`stoch`)."""
        classes = int(self.posterior_logits.shape[-1])
        return F.one_hot(self.stoch_classes[steps], classes).to(torch.float32)

    @property
    def posterior_probs(self) -> Tensor:
        """``softmax`` of the posterior logits over classes, ``[L, B, categoricals, classes]``."""
        return torch.softmax(self.posterior_logits, dim=-1)

    @property
    def prior_probs(self) -> Tensor:
        """``softmax`` of the prior logits over classes, ``[L, B, categoricals, classes]``."""
        return torch.softmax(self.prior_logits, dim=-1)

    @property
    def returns(self) -> Tensor:
        """Sum of the valid rewards of each episode, ``[B]``."""
        return (self.rewards * self.valid).sum(dim=0)

    def fact(self, name: str) -> Tensor:
        """One game fact, ``[L, B]`` int32; the error lists the facts this game records."""
        if name not in self.fact_names:
            raise ConfigError(
                f"{self.game} records no fact {name!r}; it records {', '.join(self.fact_names)}"
            )
        return self.facts[..., self.fact_names.index(name)]

    def tensors(self) -> dict[str, Tensor]:
        """The tensor fields by name (for saving and moving)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }

    def select_episodes(self, episodes: Sequence[int]) -> Trajectory:
        """These episodes only, in this order (every tensor's ``[:, episodes]``, a copy).

        Raises:
            ConfigError: no episode, or one out of range or repeated.
        """
        chosen = list(episodes)
        if not chosen or len(set(chosen)) != len(chosen):
            raise ConfigError(f"select_episodes needs distinct episodes, got {chosen}")
        if min(chosen) < 0 or max(chosen) >= self.episodes:
            raise ConfigError(
                f"select_episodes got episodes {chosen}; this trajectory has {self.episodes}"
            )
        index = torch.tensor(chosen, dtype=torch.long, device=self.actions.device)
        kept = {name: t.index_select(1, index) for name, t in self.tensors().items()}
        return self._with(kept, tuple(self.seeds[b] for b in chosen))

    def to(self, device: str | torch.device) -> Trajectory:
        """A copy with every tensor on ``device``."""
        moved = {name: tensor.to(device) for name, tensor in self.tensors().items()}
        return self._with(moved, self.seeds)

    def _with(self, tensors: dict[str, Tensor], seeds: tuple[int, ...]) -> Trajectory:
        """This trajectory's game and settings with other tensors (and their seeds)."""
        return Trajectory(
            game=self.game,
            pomdp=self.pomdp,
            seeds=seeds,
            greedy=self.greedy,
            fact_names=self.fact_names,
            **tensors,
        )


def episode_seeds(seed: int, episodes: int) -> list[int]:
    """The seeds of a rollout's episodes: ``seed, seed + 1, ...`` (each episode its own)."""
    check_episode_seeds(seed, episodes)
    return list(range(seed, seed + episodes))


def run_rollouts(
    agent: DreamerAgent,
    game: str | None = None,
    *,
    pomdp: bool | None = None,
    episodes: int,
    steps: int,
    seed: int = 0,
    greedy: bool = False,
    device: str | torch.device | None = None,
    seeds: Sequence[int] | None = None,
) -> Trajectory:
    """Roll ``agent`` out for ``episodes`` x ``steps`` in lock-step and record everything.

    Args:
        agent: the agent; it is not modified (a copy moves when ``device`` differs).
        game: a MinAtar game name; None takes it from the checkpoint's native metadata.
        pomdp: observe the POMDP channel subset; None takes the metadata's flag, else True.
        episodes, steps: B and L.
        seed: episode ``b`` uses seed ``seed + b`` for the game and for sampling.
        greedy: act by the policy's argmax instead of sampling.
        device: where the networks run; None keeps the agent's device, ``"auto"`` picks CUDA.
        seeds: explicit per-episode seeds instead of ``seed + b`` (length ``episodes``).

    Returns:
        A :class:`Trajectory` on the agent's (or ``device``'s) device.
    """
    playing = resolve_target(
        game,
        pomdp,
        recorded_game=agent.metadata.game,
        recorded_pomdp=agent.metadata.pomdp,
        source="the agent",
    )
    check_agent_fits(playing, agent.sizes.channels, agent.sizes.actions, source="the agent")
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    if seeds is None:
        seed_list = episode_seeds(seed, episodes)
    else:
        seed_list = [int(s) for s in seeds]
        if len(seed_list) != episodes:
            raise ConfigError(f"got {len(seed_list)} seeds for {episodes} episodes; give one each")
    target = agent.device if device is None else resolve_device(device)
    if target != agent.device:
        agent = copy.deepcopy(agent).to(target)
    with torch.inference_mode():
        return _roll(
            agent.eval(),
            GameBatch(playing.spec.name, pomdp=playing.pomdp, episodes=episodes),
            seed_list,
            steps,
            greedy,
        )


def _roll(
    agent: DreamerAgent, games: GameBatch, seeds: list[int], steps: int, greedy: bool
) -> Trajectory:
    device, sizes, batch = agent.device, agent.sizes, games.episodes
    latent = (steps, batch, sizes.categoricals, sizes.classes)
    prior_logits = torch.empty(latent, device=device)
    posterior_logits = torch.empty(latent, device=device)
    stoch_classes = torch.empty(latent[:3], dtype=torch.int64, device=device)
    deter = torch.empty(steps, batch, sizes.deter, device=device)
    actions = torch.empty(steps, batch, dtype=torch.int64, device=device)
    observations = np.zeros((steps, batch, len(games.channels), 10, 10), dtype=bool)
    rewards = np.zeros((steps, batch), dtype=np.float32)
    terminals = np.zeros((steps, batch), dtype=bool)
    valid = np.zeros((steps, batch), dtype=bool)
    facts = np.zeros((steps, batch, len(games.fact_names)), dtype=np.int32)

    obs, observation_facts = games.reset(seeds)
    state = agent.initial_state(batch)
    prev_action = torch.zeros(batch, sizes.actions, device=device)
    noise_by_step = NoiseKeys.from_seeds(seeds, device).draw_steps(agent.noise_streams(), steps)
    active = np.ones(batch, dtype=bool)
    n_obs_facts = observation_facts.shape[1]
    for t, noise in zip(range(steps), noise_by_step, strict=True):
        observations[t] = obs
        obs_tensor = torch.from_numpy(obs).to(device=device, dtype=torch.float32, non_blocking=True)
        prior, state = agent.observe(state, obs_tensor, prev_action, noise=noise)
        action = agent.act(state, greedy=greedy, noise=noise)
        prior_logits[t], posterior_logits[t] = prior.logits, state.logits
        stoch_classes[t], deter[t], actions[t] = state.stoch.argmax(dim=-1), state.deter, action
        action_host = action.cpu().numpy()  # the one sync per step: the games need the action
        result = games.step(action_host, active)
        valid[t] = active
        rewards[t], terminals[t] = result.reward, result.terminal
        facts[t, :, :n_obs_facts] = observation_facts
        facts[t, :, n_obs_facts:] = result.transition_facts
        active = active & ~result.terminal
        obs, observation_facts = result.obs, result.observation_facts
        obs[~active] = False  # padding rows: the frame after the end is not part of the episode
        observation_facts[~active] = 0
        prev_action = agent.one_hot_actions(action)

    def host(array: np.ndarray) -> Tensor:
        return torch.from_numpy(array).to(device)

    return Trajectory(
        game=games.spec.name,
        pomdp=games.pomdp,
        seeds=tuple(seeds),
        greedy=greedy,
        fact_names=games.fact_names,
        observations=host(observations),
        prior_logits=prior_logits,
        posterior_logits=posterior_logits,
        stoch_classes=stoch_classes,
        deter=deter,
        actions=actions,
        rewards=host(rewards),
        terminals=host(terminals),
        valid=host(valid),
        facts=host(facts),
    )


@dataclass(frozen=True)
class ReplayedLatents:
    """An agent's RSSM states on a recorded trajectory (teacher forcing: its obs and actions).

    Attributes:
        prior_logits, posterior_logits, stoch: ``[L, B, categoricals, classes]``.
        deter: ``[L, B, deter]``.
    """

    prior_logits: Tensor
    posterior_logits: Tensor
    stoch: Tensor
    deter: Tensor


def replay_posteriors(agent: DreamerAgent, trajectory: Trajectory) -> ReplayedLatents:
    """Feed a trajectory's observations and actions to ``agent`` and record its latents.

    Used to compare agents on identical inputs (the randomized-weights sanity check); with the
    agent that produced the trajectory it reproduces the recorded latents (to float rounding:
    the observations are encoded in one batch of all steps, as none depends on the recurrence,
    instead of one step's batch at a time, which made the replay about as slow as a rollout).
    """
    check_agent_fits(
        GameTarget(game_spec(trajectory.game), trajectory.pomdp),
        agent.sizes.channels,
        agent.sizes.actions,
        source="the agent",
    )
    device = agent.device
    steps, batch, sizes = trajectory.steps, trajectory.episodes, agent.sizes
    latent = (steps, batch, sizes.categoricals, sizes.classes)
    with torch.inference_mode():
        prior_logits = torch.empty(latent, device=device)
        posterior_logits = torch.empty(latent, device=device)
        stoch = torch.empty(latent, device=device)
        deter = torch.empty(steps, batch, sizes.deter, device=device)
        observations = trajectory.observations.to(device)
        actions = trajectory.actions.to(device)
        embeddings = agent.encode(observations.flatten(0, 1).float())
        embeddings = embeddings.reshape(steps, batch, -1)  # [L, B, embedding]
        state = agent.initial_state(batch)
        prev_action = torch.zeros(batch, sizes.actions, device=device)
        keys = NoiseKeys.from_seeds(list(trajectory.seeds), device)
        noise_by_step = keys.draw_steps(agent.noise_streams(), steps)
        for t, noise in zip(range(steps), noise_by_step, strict=True):
            prior = agent.imagine(state, prev_action, noise=noise)  # as agent.observe does
            state = agent.posterior(prior.deter, embeddings[t], noise=noise)
            prior_logits[t], posterior_logits[t] = prior.logits, state.logits
            stoch[t], deter[t] = state.stoch, state.deter
            prev_action = agent.one_hot_actions(actions[t])
    return ReplayedLatents(prior_logits, posterior_logits, stoch, deter)


def save_trajectory(trajectory: Trajectory, path: str | Path) -> Path:
    """Write a trajectory (tensors on the CPU, plain metadata) readable with weights_only."""
    target = Path(path)
    payload = {
        "meta": {
            "game": trajectory.game,
            "pomdp": trajectory.pomdp,
            "seeds": list(trajectory.seeds),
            "greedy": trajectory.greedy,
            "fact_names": list(trajectory.fact_names),
        },
        "tensors": {name: t.detach().cpu().clone() for name, t in trajectory.tensors().items()},
    }
    torch.save(payload, target)
    return target


def load_trajectory(path: str | Path, device: str | torch.device = "cpu") -> Trajectory:
    """Read a trajectory written by :func:`save_trajectory` (``weights_only=True``).

    Raises:
        SavedDataError: naming the file, when it is unreadable or not a saved trajectory.
    """
    source = Path(path)

    def damaged(problem: str) -> SavedDataError:
        return SavedDataError(
            f"{source}: not a readable trajectory ({problem}); rerun the rollouts to rebuild it"
        )

    try:
        payload = torch.load(source, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise damaged(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    tensor_fields = {f.name for f in dataclasses.fields(Trajectory) if f.type in ("Tensor", Tensor)}
    try:
        meta, tensors = payload["meta"], payload["tensors"]
        if set(tensors) != tensor_fields:
            raise damaged(f"tensors {sorted(set(tensors) ^ tensor_fields)} missing or unexpected")
        if not all(isinstance(tensors[name], Tensor) for name in tensor_fields):
            raise damaged("an entry of 'tensors' is not a tensor")
        trajectory = Trajectory(
            game=game_spec(str(meta["game"])).name,
            pomdp=bool(meta["pomdp"]),
            seeds=tuple(int(seed) for seed in meta["seeds"]),
            greedy=bool(meta["greedy"]),
            fact_names=tuple(str(name) for name in meta["fact_names"]),
            **tensors,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise damaged(f"{type(error).__name__}: {error}") from None
    problem = _inconsistency(trajectory)
    if problem:
        raise damaged(problem)
    return trajectory


def _inconsistency(t: Trajectory) -> str:
    """What makes ``t`` something :func:`run_rollouts` cannot have written ("" when nothing)."""
    spec = game_spec(t.game)
    if t.valid.dim() != 2 or t.valid.dtype != torch.bool:
        return "valid is not an [L, B] bool tensor"
    steps, episodes = t.valid.shape
    if len(t.seeds) != episodes:
        return f"{len(t.seeds)} seeds for {episodes} episodes"
    if t.posterior_logits.dim() != 4:
        return "posterior_logits is not [L, B, C, K]"
    latent = (steps, episodes, *t.posterior_logits.shape[2:])
    classes = int(t.posterior_logits.shape[-1])
    channels = len(spec.observed_channels(t.pomdp))
    expected: dict[str, tuple[tuple[int, ...], tuple[torch.dtype, ...]]] = {
        "observations": ((steps, episodes, channels, 10, 10), (torch.bool,)),
        "prior_logits": (latent, (torch.float32,)),
        "posterior_logits": (latent, (torch.float32,)),
        "stoch_classes": (latent[:3], (torch.int64,)),
        "deter": ((steps, episodes, t.deter.shape[-1]), (torch.float32,)),
        "actions": ((steps, episodes), (torch.int64,)),
        "rewards": ((steps, episodes), (torch.float32,)),
        "terminals": ((steps, episodes), (torch.bool,)),
        "facts": ((steps, episodes, len(t.fact_names)), (torch.int32,)),
    }
    for name, (shape, dtypes) in expected.items():
        value = getattr(t, name)
        if tuple(value.shape) != shape or value.dtype not in dtypes:
            return f"{name} is {value.dtype} {tuple(value.shape)}, expected {dtypes[0]} {shape}"
    for name in ("prior_logits", "posterior_logits", "deter", "rewards"):
        if not bool(torch.isfinite(getattr(t, name)).all()):
            return f"{name} holds NaN or infinity"
    if bool(((t.stoch_classes < 0) | (t.stoch_classes >= classes)).any()):
        return f"stoch_classes outside the {classes} classes"
    if bool(((t.actions < 0) | (t.actions >= spec.actions)).any()):
        return "actions outside the game's action set"
    return ""
