"""Train a DreamerV2 agent on a MinAtar game with this package's own networks (CleanRL style).

One file that reads top to bottom: arguments, environments, replay, world-model loss, actor-critic
in imagination, acting, logging, saving and resuming, then the training loop. The defaults are the
reference PyTorch MinAtar DreamerV2 hyperparameters; the saved file is in the reference checkpoint
format plus this package's metadata entry, so ``load_checkpoint`` (and the reference code) read it.

    python research/train_reference_agent.py --game freeway --pomdp \\
        --checkpoint examples/checkpoints/freeway_pomdp.pth --total-env-steps 300000

CPU recipe (what trained ``examples/checkpoints/freeway_pomdp.pth``). Measured on one AMD EPYC
core with ``--threads 1``, reference sizes: a gradient step on 50 x 50 sequences takes ~1250 ms
(world model ~450 ms forward + backward, actor-critic from all 2500 posteriors ~780 ms), on
16 x 50 sequences ~410 ms; acting plus env stepping costs ~0.085 ms per env step with 16 envs in
lockstep. Gradient steps are the budget, env steps are nearly free, so the CPU run uses batch
16 x 50 (DreamerV2's Atari batch), 16 envs and one gradient step per lockstep
(``--batch-size 16 --train-every 16 --train-steps 1``): ~9000 gradient steps and ~140k env steps
per hour, 50 replayed steps per env step (the reference: 500, i.e. ~3x fewer env steps and 10x
more compute per env step). Every other hyperparameter is the reference default. Run it again
with ``--resume`` to continue from the last periodic save.

Differences from the reference trainer, all deliberate:

* The actor's gradient is REINFORCE with the target critic as baseline (the reference's choice for
  discrete actions). That gradient never flows through the imagined states, so imagination runs
  without autograd (no straight-through samples are needed); only the actor's and critic's final
  forward passes record a graph. This is what makes a CPU gradient step affordable.
* ``--actor-gradient lookahead`` (not the default) replaces REINFORCE's one sampled action per
  imagined state by the expectation over all of them, each scored by its one-step value under
  the prior and the target critic (:func:`one_step_values`). ``research/diagnose_policy.py``
  showed why: the run's model and critic prefer noop where UP gets the chicken hit 2.9-3.0x more
  often than where it is safe (random weights: 1.01x), while its REINFORCE-trained actor holds
  back only 1.6x more often (random weights: 1.00x).
* Heads follow the DreamerV2 paper's alignment: the reward and discount heads at state ``s_t``
  predict the reward received on arriving at ``o_t`` and whether ``o_t`` ended the episode; the
  lambda-return is ``R_k = r_{k+1} + g_{k+1} ((1 - lambda) v_{k+1} + lambda R_{k+1})``, and the
  imagined discount ``g = discount * P(continue)`` uses the head's probability.
* Several envs are stepped in lockstep, and the prefill is biased towards UP (see
  ``Args.prefill_up_probability``) so that Freeway's rare reward is in the replay from the start.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import sys
import time
import typing
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.games import game_spec
from pytest_dreamer_audit.model.agent import AgentMetadata, DreamerAgent, LatentState, build_agent
from pytest_dreamer_audit.model.networks import DenseModel, ModelSizes
from pytest_dreamer_audit.model.sampling import MAX_SEED, gumbel_argmax
from pytest_dreamer_audit.rollout.envs import GameBatch

RESUME_FORMAT = "train_reference_agent.resume"
ACTOR_GRADIENTS = ("reinforce", "lookahead")
RESUME_VERSION = 2  # 2: the learner counts critic updates
# fmt: off
_POSITIVE_FIELDS = (
    "total_env_steps", "num_envs", "train_every", "train_steps", "batch_size", "seq_len",
    "replay_capacity", "horizon", "slow_target_update", "deter", "categoricals", "classes",
    "embedding", "node", "depth", "hidden", "layers", "threads", "log_interval", "eval_episodes",
    "actor_critic_steps",
)
# fmt: on


# ------------------------------------------------------------------------------------------------
# Arguments: one dataclass field per option, its help text in the field's metadata
# ------------------------------------------------------------------------------------------------
T = typing.TypeVar("T")


def option(default: T, help_text: str) -> T:
    """An ``Args`` field: its default and the ``--help`` line of its command-line option."""
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Args:
    """Hyperparameters; defaults are the reference MinAtar DreamerV2 values unless noted."""

    game: str = option(
        "freeway", "MinAtar game (asterix, breakout, freeway, seaquest, space_invaders)."
    )
    pomdp: bool = option(True, "Observe only the POMDP channel subset (Freeway: chicken and cars).")
    seed: int = option(
        0, "Seed of the weights, torch's sampling, the exploration and the env seeds."
    )
    device: str = option("cpu", "Torch device of the learner and the actor.")
    threads: int = option(
        1, "torch.set_num_threads; 1 leaves the other core of a 2-core machine free."
    )
    total_env_steps: int = option(
        1_000_000, "Env steps (summed over envs, prefill included) after which training stops."
    )
    num_envs: int = option(
        16, "Envs stepped in lockstep; the actor runs once per lockstep on the whole batch."
    )
    sticky_action_prob: float = option(
        0.1, "MinAtar's sticky-action probability (the reference used MinAtar's default 0.1)."
    )
    prefill_steps: int = option(
        40_000,
        "Env steps of scripted play that fill the replay before learning (reference: 2000 random).",
    )
    prefill_up_probability: float = option(
        0.5,
        "Prefill plays UP with this probability, else a uniform action. Random Freeway play "
        "scores ~0.3 per episode; 0.5 gives ~11 (0.7: ~20, always UP: ~17), enough reward to "
        "learn from. Ignored by games without an 'up' action.",
    )
    train_every: int = option(
        25, "Env steps (summed over envs) between training phases (reference: 25)."
    )
    train_steps: int = option(
        5, "Gradient steps per training phase (reference 'collect_intervals': 5)."
    )
    batch_size: int = option(50, "Sequences per gradient step.")
    seq_len: int = option(50, "Length of each sequence.")
    replay_capacity: int = option(
        200_000, "Transitions the replay keeps (the oldest are overwritten)."
    )
    model_lr: float = option(
        2e-4,
        "Adam learning rate of the world model "
        "(encoder, RSSM, decoder, reward and discount heads).",
    )
    actor_lr: float = option(4e-5, "Adam learning rate of the actor.")
    critic_lr: float = option(1e-4, "Adam learning rate of the critic.")
    grad_clip: float = option(100.0, "Gradient-norm clipping of each of the three optimizers.")
    kl_scale: float = option(0.1, "Weight of the KL term in the world-model loss.")
    kl_balance: float = option(
        0.8,
        "KL balancing alpha: share of the KL gradient that trains the prior (vs. the posterior).",
    )
    reward_scale: float = option(
        1.0, "Weight of the reward head's Gaussian negative log-likelihood."
    )
    discount_scale: float = option(
        5.0, "Weight of the discount head's Bernoulli negative log-likelihood."
    )
    horizon: int = option(10, "Imagination horizon of the actor-critic.")
    discount: float = option(0.99, "Discount factor gamma.")
    return_lambda: float = option(0.95, "Lambda of the lambda-returns.")
    actor_entropy_scale: float = option(1e-3, "Weight of the actor's entropy bonus.")
    slow_target_update: int = option(
        100, "Gradient steps between updates of the slow target critic."
    )
    slow_target_fraction: float = option(
        1.0, "Polyak fraction of each target update (1.0: copy the critic, as the reference does)."
    )
    expl_start: float = option(
        0.4, "Epsilon-greedy epsilon when the agent starts acting (reference 'train_noise')."
    )
    expl_min: float = option(0.05, "Final epsilon (reference 'expl_min').")
    expl_decay: float = option(
        7000.0,
        "epsilon = max(expl_min, expl_start - agent_env_steps / expl_decay): the reference's "
        "linear decay, which reaches expl_min after 2450 agent env steps.",
    )
    deter: int = option(200, "Size of the GRU state.")
    categoricals: int = option(20, "Categoricals in the stochastic state.")
    classes: int = option(20, "Classes per categorical.")
    embedding: int = option(200, "Size of the observation embedding.")
    node: int = option(200, "Hidden width of the prior and posterior networks.")
    depth: int = option(16, "Channels of the first convolution.")
    hidden: int = option(
        100, "Hidden width of the actor and of the reward, value and discount heads."
    )
    layers: int = option(3, "Hidden layers of the actor and of the heads.")
    checkpoint: str = option(
        "examples/checkpoints/freeway_pomdp.pth",
        "Where the agent is saved; the resumable trainer state goes next to it (.resume.pt).",
    )
    save_interval_s: float = option(
        600.0, "Seconds between periodic saves (a final save always happens)."
    )
    resume: bool = option(
        False, "Continue from the checkpoint and its .resume.pt file when they exist."
    )
    init_from: str = option(
        "",
        "Warm start when there is nothing to resume: the weights of this checkpoint (world model, "
        "actor, critic), fresh optimizers, its env and gradient step counts. The machine may be "
        "replaced at any time, so a run is restarted from committed weights with this option.",
    )
    reset_actor: bool = option(
        False,
        "With init_from: a freshly initialised actor (leaves a collapsed policy behind; the "
        "world model and the critic are kept), and the scripted prefill instead of the agent's "
        "own play.",
    )
    imagine_starts: int = option(
        0,
        "Imagination start states per gradient step, drawn at random from the batch's L x B "
        "posteriors (0: all of them, as the reference does).",
    )
    actor_critic_steps: int = option(
        1,
        "Actor-critic updates per gradient step, each from its own draw of imagination starts "
        "(the world model updates once). The actor-critic half is about a fifth of a step's "
        "time, so more updates of the policy cost little.",
    )
    actor_gradient: str = option(
        "reinforce",
        "How the actor's objective scores actions: 'reinforce' (the reference: log-probability "
        "of the sampled action times its lambda-return advantage) or 'lookahead' (at every "
        "imagined state, the expectation over all actions of their one-step value "
        "r + gamma * P(continue) * V_target of the state the prior imagines after each: no "
        "sampling noise over actions).",
    )
    freeze_world_model: bool = option(
        False,
        "Leave the world model (encoder, RSSM, decoder, reward and discount heads) as it is: "
        "only the actor and the critic learn, imagining from posteriors of replayed sequences. "
        "Fine-tunes a policy against a fixed model; its optimizer state is kept untouched.",
    )
    eval_interval_s: float = option(
        900.0, "Seconds between evaluations on the selection seeds (the best save is kept by them)."
    )
    eval_episodes: int = option(16, "Full episodes per evaluation (sampled and greedy each).")
    eval_seed: int = option(
        900_000, "First selection seed; keep the final evaluation's seeds elsewhere."
    )
    max_resume_mb: float = option(
        30.0, "The replay is saved in the resume file only if the whole file stays under this size."
    )
    log_interval: int = option(10_000, "Env steps between scalar log lines.")
    progress: bool = option(True, "Show a tqdm progress bar (on stderr).")

    def __post_init__(self) -> None:
        game_spec(self.game)  # raises UnknownGameError listing the games
        for name in _POSITIVE_FIELDS:
            if getattr(self, name) < 1:
                raise ConfigError(f"Args.{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "prefill_up_probability",
            "kl_balance",
            "return_lambda",
            "discount",
            "slow_target_fraction",
            "expl_start",
            "expl_min",
            "sticky_action_prob",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"Args.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.actor_gradient not in ACTOR_GRADIENTS:
            raise ConfigError(
                f"Args.actor_gradient must be one of {', '.join(ACTOR_GRADIENTS)}, "
                f"got {self.actor_gradient!r}"
            )
        if self.replay_capacity // self.num_envs < self.seq_len:
            raise ConfigError(
                f"replay_capacity={self.replay_capacity} leaves "
                f"{self.replay_capacity // self.num_envs} steps per env, fewer than "
                f"seq_len={self.seq_len}"
            )

    def model_sizes(self) -> ModelSizes:
        spec = game_spec(self.game)
        return ModelSizes(
            channels=len(spec.observed_channels(self.pomdp)),
            actions=spec.actions,
            deter=self.deter,
            categoricals=self.categoricals,
            classes=self.classes,
            embedding=self.embedding,
            node=self.node,
            depth=self.depth,
            actor_hidden=self.hidden,
            actor_layers=self.layers,
            head_hidden=self.hidden,
            head_layers=self.layers,
        )

    @property
    def resume_path(self) -> Path:
        """The trainer-state file next to the checkpoint: ``x.pth`` -> ``x.resume.pt``."""
        return Path(self.checkpoint).with_suffix(".resume.pt")

    @property
    def curve_path(self) -> Path:
        """The learning curve next to the checkpoint: ``x.pth`` -> ``x.curve.csv`` (appended)."""
        return Path(self.checkpoint).with_suffix(".curve.csv")

    @property
    def best_path(self) -> Path:
        """The best save by the selection evaluation: ``x.pth`` -> ``x.best.pth``."""
        return Path(self.checkpoint).with_suffix(".best.pth")


def argument_parser() -> argparse.ArgumentParser:
    """One ``--kebab-case`` option per ``Args`` field (``--x/--no-x`` for booleans), its type,
    default and help taken from the field."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    hints = typing.get_type_hints(Args)  # the annotations are strings (``from __future__``)
    for field in dataclasses.fields(Args):
        kind = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{field.metadata['help']} (default: {field.default})"
        if kind is bool:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=field.default, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=field.default, help=help_text)
    return parser


def parse_args(argv: list[str] | None = None) -> Args:
    """``Args`` from the command line (``sys.argv[1:]`` by default)."""
    return Args(**vars(argument_parser().parse_args(argv)))


# ------------------------------------------------------------------------------------------------
# Environments: B single-episode GameBatches stepped in lockstep, each reset on its own
# ------------------------------------------------------------------------------------------------
class Rows(NamedTuple):
    """One lockstep of every env, as stored in the replay (numpy, leading axis = env).

    ``obs`` is ``o_t``; ``action`` the action that led to it (0 where ``first``); ``reward`` the
    reward received on arriving at it; ``terminal`` whether it ended its episode; ``first``
    whether it starts one.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    first: np.ndarray


class Envs:
    """``n`` copies of one game that restart each episode on their own (``GameBatch`` resets the
    whole batch at once, so each env is a GameBatch of one episode)."""

    def __init__(self, args: Args, rng: np.random.Generator) -> None:
        self.games = [
            GameBatch(
                args.game, pomdp=args.pomdp, episodes=1, sticky_action_prob=args.sticky_action_prob
            )
            for _ in range(args.num_envs)
        ]
        self.rng = rng
        self.n = args.num_envs
        self.active = np.ones(1, dtype=bool)
        self.returns = np.zeros(self.n)
        self.lengths = np.zeros(self.n, dtype=np.int64)
        self.rows = self._reset_all()

    def _reset_one(self, e: int) -> np.ndarray:
        seed = int(self.rng.integers(0, MAX_SEED, endpoint=True))
        obs, _ = self.games[e].reset([seed])
        return np.asarray(obs[0])

    def _reset_all(self) -> Rows:
        obs = np.stack([self._reset_one(e) for e in range(self.n)])
        zeros = np.zeros(self.n, dtype=bool)
        return Rows(obs, np.zeros(self.n, np.int64), np.zeros(self.n, np.float32), zeros, ~zeros)

    def step(self, actions: np.ndarray) -> tuple[Rows, int, list[float]]:
        """Step every env whose last row was not terminal; reset the others.

        Returns the new rows, the number of env steps taken and the returns of finished episodes.
        """
        obs, first = np.empty_like(self.rows.obs), np.zeros(self.n, dtype=bool)
        reward, terminal = np.zeros(self.n, np.float32), np.zeros(self.n, dtype=bool)
        action = np.where(self.rows.terminal, 0, actions).astype(np.int64)
        finished: list[float] = []
        for e, game in enumerate(self.games):
            if self.rows.terminal[e]:
                obs[e], first[e] = self._reset_one(e), True
                self.returns[e], self.lengths[e] = 0.0, 0
                continue
            result = game.step(action[e : e + 1], self.active)
            obs[e], reward[e], terminal[e] = result.obs[0], result.reward[0], result.terminal[0]
            self.returns[e] += reward[e]
            self.lengths[e] += 1
            if terminal[e]:
                finished.append(float(self.returns[e]))
        stepped = int(self.n - self.rows.terminal.sum())
        self.rows = Rows(obs, action, reward, terminal, first)
        return self.rows, stepped, finished


# ------------------------------------------------------------------------------------------------
# Replay: a time-major ring buffer of the lockstep streams, sampled as [L, B] windows
# ------------------------------------------------------------------------------------------------
class Batch(NamedTuple):
    """Sequences for one gradient step (torch, time-major).

    Shape:
        - obs: ``[L, B, C, 10, 10]`` float; prev_action: ``[L, B, A]`` one-hot (zero at firsts)
        - reward, terminal, first: ``[L, B]`` float
    """

    obs: Tensor
    prev_action: Tensor
    reward: Tensor
    terminal: Tensor
    first: Tensor


class Replay:
    """Row ``t`` holds lockstep ``t`` of every env (see :class:`Rows`); ``capacity // envs`` rows.

    Windows may cross episode boundaries: the ``first`` flags reset the recurrent state there
    (the reference's nonterminal masks), and every window starts from the all-zero state.
    """

    def __init__(self, capacity: int, envs: int, obs_shape: tuple[int, ...], actions: int) -> None:
        self.length, self.envs, self.actions = capacity // envs, envs, actions
        self.obs = np.zeros((self.length, envs, *obs_shape), dtype=bool)
        self.action = np.zeros((self.length, envs), dtype=np.int8)
        self.reward = np.zeros((self.length, envs), dtype=np.float32)
        self.terminal = np.zeros((self.length, envs), dtype=bool)
        self.first = np.zeros((self.length, envs), dtype=bool)
        self.next_row = 0
        self.rows = 0

    def add(self, rows: Rows) -> None:
        t = self.next_row
        self.obs[t], self.action[t], self.reward[t] = rows.obs, rows.action, rows.reward
        self.terminal[t], self.first[t] = rows.terminal, rows.first
        self.next_row = (t + 1) % self.length
        self.rows = min(self.rows + 1, self.length)

    def __len__(self) -> int:
        return self.rows * self.envs

    def sample(
        self, batch_size: int, seq_len: int, rng: np.random.Generator, device: torch.device
    ) -> Batch:
        if self.rows < seq_len:
            raise ConfigError(
                f"the replay holds {self.rows} rows per env, fewer than seq_len={seq_len}"
            )
        oldest = (self.next_row - self.rows) % self.length
        start = oldest + rng.integers(0, self.rows - seq_len, size=batch_size, endpoint=True)
        t = (start[None, :] + np.arange(seq_len)[:, None]) % self.length  # [L, B]
        e = np.broadcast_to(rng.integers(0, self.envs, size=batch_size)[None, :], t.shape)
        first = torch.from_numpy(self.first[t, e]).to(device, torch.float32)
        action = torch.from_numpy(self.action[t, e].astype(np.int64)).to(device)
        prev_action = F.one_hot(action, self.actions).to(torch.float32) * (1.0 - first)[..., None]
        return Batch(
            obs=torch.from_numpy(self.obs[t, e]).to(device, torch.float32),
            prev_action=prev_action,
            reward=torch.from_numpy(self.reward[t, e]).to(device),
            terminal=torch.from_numpy(self.terminal[t, e]).to(device, torch.float32),
            first=first,
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors (bit-packed observations) that ``torch.load(weights_only=True)`` reads."""
        n = self.length if self.rows == self.length else self.rows
        return {
            "obs_shape": list(self.obs.shape[2:]),
            "obs_bits": torch.from_numpy(
                np.packbits(self.obs[:n].reshape(n, self.envs, -1), axis=-1)
            ),
            "action": torch.from_numpy(self.action[:n].copy()),
            "reward": torch.from_numpy(self.reward[:n].copy()),
            "terminal": torch.from_numpy(self.terminal[:n].copy()),
            "first": torch.from_numpy(self.first[:n].copy()),
            "next_row": self.next_row,
            "rows": self.rows,
        }

    def nbytes_saved(self) -> int:
        """Approximate size of :meth:`state_dict` in bytes."""
        pixels = math.prod(self.obs.shape[2:])
        return self.rows * self.envs * ((pixels + 7) // 8 + 1 + 4 + 1 + 1)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n, envs = state["action"].shape
        if (
            envs != self.envs
            or list(state["obs_shape"]) != list(self.obs.shape[2:])
            or n > self.length
        ):
            raise ConfigError(
                f"saved replay has {envs} envs, {n} rows and observations {state['obs_shape']}; "
                f"this run has {self.envs} envs, {self.length} rows and "
                f"{list(self.obs.shape[2:])}: keep num_envs, replay_capacity and the game"
            )
        pixels = math.prod(self.obs.shape[2:])
        bits = np.unpackbits(state["obs_bits"].numpy(), axis=-1, count=pixels).astype(bool)
        self.obs[:n] = bits.reshape(n, envs, *self.obs.shape[2:])
        self.action[:n], self.reward[:n] = state["action"].numpy(), state["reward"].numpy()
        self.terminal[:n], self.first[:n] = state["terminal"].numpy(), state["first"].numpy()
        self.next_row, self.rows = int(state["next_row"]), int(state["rows"])


# ------------------------------------------------------------------------------------------------
# World model loss
# ------------------------------------------------------------------------------------------------
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def categorical_kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) of independent categoricals, summed over them: ``[..., C, K] -> [...]``."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=(-2, -1))


class WorldModelOutput(NamedTuple):
    loss: Tensor
    """Scalar total loss."""
    parts: dict[str, Tensor]
    """Detached scalars: obs, reward, discount (NLLs) and kl."""
    posterior: LatentState
    """Posterior states of every step, flattened to ``[L * B, ...]`` and detached."""


def world_model_loss(agent: DreamerAgent, batch: Batch, args: Args) -> WorldModelOutput:
    """Filter the sequences, decode every posterior state, and balance the KL.

    Observation and reward heads are unit-variance Gaussians (NLL summed over pixels), the discount
    head a Bernoulli of "o_t did not end the episode"; everything is averaged over ``L x B``.
    """
    assert agent.obs_decoder is not None
    assert agent.reward_decoder is not None
    assert agent.discount_model is not None
    seq_len, batch_size = batch.reward.shape
    embed = agent.obs_encoder(batch.obs.flatten(0, 1)).unflatten(0, (seq_len, batch_size))
    state = agent.initial_state(batch_size)
    prior_logits, post_logits, stochs, deters = [], [], [], []
    nonterminal = 1.0 - batch.first
    for t in range(seq_len):
        prior = agent.imagine(state, batch.prev_action[t], nonterminal[t])
        state = agent.posterior(prior.deter, embed[t])
        prior_logits.append(prior.logits)
        post_logits.append(state.logits)
        stochs.append(state.stoch)
        deters.append(state.deter)
    prior_logit, post_logit = torch.stack(prior_logits), torch.stack(post_logits)  # [L, B, C, K]
    stoch, deter = torch.stack(stochs), torch.stack(deters)
    features = torch.cat([deter, stoch.flatten(-2)], dim=-1)  # [L, B, deter + stoch]
    flat = features.flatten(0, 1)

    obs_mean = agent.obs_decoder(flat).unflatten(0, (seq_len, batch_size))
    pixels = math.prod(batch.obs.shape[2:])
    obs_nll = (
        0.5 * (obs_mean - batch.obs).square().sum(dim=(-3, -2, -1))
    ).mean() + pixels * HALF_LOG_2PI
    reward_mean = agent.reward_decoder(features).squeeze(-1)
    reward_nll = (0.5 * (reward_mean - batch.reward).square()).mean() + HALF_LOG_2PI
    continue_logit = agent.discount_model(features).squeeze(-1)
    discount_nll = F.binary_cross_entropy_with_logits(continue_logit, 1.0 - batch.terminal)

    log_post, log_prior = F.log_softmax(post_logit, -1), F.log_softmax(prior_logit, -1)
    kl_prior = categorical_kl(log_post.detach(), log_prior).mean()  # trains the prior
    kl_post = categorical_kl(log_post, log_prior.detach()).mean()  # trains the posterior
    kl = args.kl_balance * kl_prior + (1.0 - args.kl_balance) * kl_post
    loss = (
        obs_nll
        + args.reward_scale * reward_nll
        + args.discount_scale * discount_nll
        + args.kl_scale * kl
    )
    parts = {"obs": obs_nll, "reward": reward_nll, "discount": discount_nll, "kl": kl_prior}
    posterior = LatentState(
        post_logit.flatten(0, 1).detach(),
        stoch.flatten(0, 1).detach(),
        deter.flatten(0, 1).detach(),
    )
    return WorldModelOutput(loss, {k: v.detach() for k, v in parts.items()}, posterior)


# ------------------------------------------------------------------------------------------------
# Actor-critic in imagination
# ------------------------------------------------------------------------------------------------
def lambda_returns(reward: Tensor, value: Tensor, gamma: Tensor, lam: float) -> Tensor:
    """``R_k = r_{k+1} + g_{k+1} ((1 - lam) v_{k+1} + lam R_{k+1})``, ``R_H = v_H``.

    Shape:
        - reward, gamma: ``[H, N]`` for the steps into ``s_1 .. s_H``; value: ``[H, N]`` of
          ``s_1 .. s_H``; output: ``[H, N]`` the returns from ``s_0 .. s_{H-1}``
    """
    returns, last = [], value[-1]
    for k in reversed(range(reward.shape[0])):
        last = reward[k] + gamma[k] * ((1.0 - lam) * value[k] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1])


def one_step_values(
    agent: DreamerAgent, critic: nn.Module, state: LatentState, discount: float
) -> Tensor:
    """``Q(s, a) = r(s') + discount * P(continue | s') * critic(s')`` for every action ``a``, with
    ``s'`` one prior sample after ``a`` (all actions in one batched step).

    Shape:
        - state: a :class:`LatentState` of batch ``M``; output: ``[M, actions]``
    """
    m, n_actions = state.deter.shape[0], agent.sizes.actions
    every = LatentState(*(part.repeat(n_actions, *([1] * (part.dim() - 1))) for part in state))
    action = torch.arange(n_actions, device=state.deter.device).repeat_interleave(m)
    features = agent.imagine(every, agent.one_hot_actions(action)).model_state
    return agent.arrival_value(features, discount, critic).reshape(n_actions, m).T


def actor_critic_loss(
    agent: DreamerAgent,
    target_critic: nn.Module,
    start: LatentState,
    start_continue: Tensor,
    args: Args,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Imagine ``horizon`` steps from every start state; REINFORCE actor and lambda-return critic.

    Shape:
        - start: a :class:`LatentState` of batch ``N`` (detached posteriors)
        - start_continue: ``[N]``, 0 where the start observation ended its episode
    """
    assert agent.reward_decoder is not None
    assert agent.discount_model is not None
    assert agent.value_model is not None
    state, features, logits, actions, states = start, [start.model_state], [], [], []
    for _ in range(args.horizon):
        # The actor's forward pass records a graph (its input does not); the step does not.
        states.append(state)
        logits.append(agent.policy_logits(state))
        actions.append(gumbel_argmax(logits[-1].detach(), None, stream=0))
        with torch.no_grad():
            state = agent.imagine(state, agent.one_hot_actions(actions[-1]))
        features.append(state.model_state)
    feats = torch.stack(features)  # [H + 1, N, F]
    with torch.no_grad():
        reward = agent.reward_decoder(feats[1:]).squeeze(-1)
        gamma = args.discount * torch.sigmoid(agent.discount_model(feats[1:]).squeeze(-1))
        value = target_critic(feats).squeeze(-1)  # [H + 1, N]
        returns = lambda_returns(reward, value[1:], gamma, args.return_lambda)
        weight = torch.cumprod(torch.cat([start_continue[None], gamma[:-1]]), dim=0)  # [H, N]
        advantage = returns - value[:-1]

    log_policy = F.log_softmax(torch.stack(logits), dim=-1)  # [H, N, A]
    log_prob = log_policy.gather(-1, torch.stack(actions)[..., None]).squeeze(-1)
    entropy = -(log_policy.exp() * log_policy).sum(-1)
    if args.actor_gradient == "lookahead":
        with torch.no_grad():
            stacked = LatentState(*(torch.cat(parts) for parts in zip(*states, strict=True)))
            q = one_step_values(agent, target_critic, stacked, args.discount)
        score = (log_policy.exp() * q.reshape(*log_policy.shape)).sum(-1)
    else:
        score = log_prob * advantage
    # The reference sums over the horizon and averages over start states.
    objective = score + args.actor_entropy_scale * entropy
    actor_loss = -(weight * objective).mean(dim=1).sum()
    critic = agent.value_model(feats[:-1]).squeeze(-1)
    critic_loss = (weight * 0.5 * (critic - returns).square()).mean()
    info = {
        "entropy": entropy.detach().mean(),
        "return": returns.mean(),
        "imag_reward": reward.mean(),
    }
    return actor_loss, critic_loss, info


# ------------------------------------------------------------------------------------------------
# Learner: optimizers, one gradient step, the slow target critic
# ------------------------------------------------------------------------------------------------
class Learner:
    """The agent, the slow target critic and the three optimizers."""

    def __init__(self, agent: DreamerAgent, args: Args) -> None:
        assert agent.value_model is not None
        self.agent, self.args = agent, args
        self.world_params = [
            p
            for m in (
                agent.obs_encoder,
                agent.rssm,
                agent.obs_decoder,
                agent.reward_decoder,
                agent.discount_model,
            )
            if m is not None
            for p in m.parameters()
        ]
        self.actor_params = list(agent.action_model.parameters())
        self.critic_params = list(agent.value_model.parameters())
        self.target_critic = DenseModel(
            agent.sizes.model_state, agent.sizes.head_hidden, agent.sizes.head_layers, 1
        ).to(agent.device)
        self.target_critic.load_state_dict(agent.value_model.state_dict())
        self.target_critic.requires_grad_(False)
        self.optimizers = {
            "model": torch.optim.Adam(self.world_params, lr=args.model_lr),
            "actor": torch.optim.Adam(self.actor_params, lr=args.actor_lr),
            "critic": torch.optim.Adam(self.critic_params, lr=args.critic_lr),
        }
        self.gradient_steps = 0
        self.critic_updates = 0
        """Actor-critic updates so far (``actor_critic_steps`` per gradient step); the slow
        target critic follows the critic every ``slow_target_update`` of them."""

    def _apply(self, name: str, params: list[nn.Parameter]) -> Tensor:
        norm = torch.nn.utils.clip_grad_norm_(params, self.args.grad_clip, foreach=True)
        self.optimizers[name].step()
        return norm

    def train_step(self, batch: Batch) -> dict[str, Tensor]:
        """One world-model step (none with ``freeze_world_model``), then ``actor_critic_steps``
        actor-critic steps; returns detached scalar tensors, the actor-critic ones averaged over
        its steps (no ``.item()`` here, so a GPU learner never waits for the host)."""
        frozen = self.args.freeze_world_model
        with torch.set_grad_enabled(not frozen):
            wm = world_model_loss(self.agent, batch, self.args)
        metrics = {f"wm_{k}": v for k, v in wm.parts.items()}
        metrics["wm_loss"] = wm.loss.detach()
        if not frozen:
            self.optimizers["model"].zero_grad(set_to_none=True)
            wm.loss.backward()
            metrics["wm_grad_norm"] = self._apply("model", self.world_params)
        updates = [
            self._actor_critic_step(wm.posterior, 1.0 - batch.terminal.flatten())
            for _ in range(self.args.actor_critic_steps)
        ]
        metrics.update({k: torch.stack([u[k] for u in updates]).mean() for k in updates[0]})
        self.gradient_steps += 1
        return metrics

    def _actor_critic_step(
        self, posterior: LatentState, start_continue: Tensor
    ) -> dict[str, Tensor]:
        """One actor and critic update from a fresh draw of ``imagine_starts`` of the posteriors
        (``[N, ...]``, detached; ``start_continue`` ``[N]``); counts critic updates for the slow
        target."""
        self.optimizers["actor"].zero_grad(set_to_none=True)
        self.optimizers["critic"].zero_grad(set_to_none=True)
        start = posterior
        if 0 < self.args.imagine_starts < len(start_continue):
            pick = torch.randperm(len(start_continue), device=start_continue.device)
            pick = pick[: self.args.imagine_starts]
            start = LatentState(*(part[pick] for part in posterior))
            start_continue = start_continue[pick]
        actor_loss, critic_loss, info = actor_critic_loss(
            self.agent, self.target_critic, start, start_continue, self.args
        )
        (actor_loss + critic_loss).backward()  # disjoint parameters: one backward serves both
        self._apply("actor", self.actor_params)
        self._apply("critic", self.critic_params)

        self.critic_updates += 1
        if self.critic_updates % self.args.slow_target_update == 0:
            assert self.agent.value_model is not None
            with torch.no_grad():
                for target, source in zip(
                    self.target_critic.parameters(),
                    self.agent.value_model.parameters(),
                    strict=True,
                ):
                    target.lerp_(source, self.args.slow_target_fraction)
        return {"actor_loss": actor_loss.detach(), "critic_loss": critic_loss.detach(), **info}

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "target_critic": self.target_critic.state_dict(),
            "gradient_steps": self.gradient_steps,
            "critic_updates": self.critic_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.target_critic.load_state_dict(state["target_critic"])
        self.gradient_steps = int(state["gradient_steps"])
        self.critic_updates = int(state["critic_updates"])


# ------------------------------------------------------------------------------------------------
# Acting: the batched posterior filter and the epsilon-greedy actor (state in, state out)
# ------------------------------------------------------------------------------------------------
@torch.inference_mode()
def act(
    agent: DreamerAgent,
    state: LatentState,
    rows: Rows,
    epsilon: float,
    rng: np.random.Generator,
) -> tuple[LatentState, np.ndarray]:
    """Filter one lockstep of observations and act epsilon-greedily on the posterior.

    ``state`` is the latent state of every env after the previous lockstep (the agent's
    ``initial_state(num_envs)`` before the first); where ``rows.first`` it is reset. Returns the
    new state and the actions ``[num_envs]``.
    """
    device = agent.device
    first = torch.from_numpy(rows.first).to(device, torch.float32)
    obs = torch.from_numpy(rows.obs).to(device, torch.float32)
    prev = agent.one_hot_actions(torch.from_numpy(rows.action).to(device)) * (1.0 - first)[:, None]
    _, state = agent.observe(state, obs, prev, 1.0 - first)
    actions = agent.act(state).cpu().numpy()
    explore = rng.random(len(actions)) < epsilon
    random_actions = rng.integers(0, agent.sizes.actions, size=len(actions))
    return state, np.where(explore, random_actions, actions)


def prefill_actions(args: Args, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform actions, replaced by UP with probability ``prefill_up_probability``."""
    spec = game_spec(args.game)
    actions = rng.integers(0, spec.actions, size=n)
    if "up" in spec.action_names:
        actions = np.where(
            rng.random(n) < args.prefill_up_probability, spec.action_names.index("up"), actions
        )
    return actions


def epsilon(args: Args, agent_steps: int) -> float:
    return max(args.expl_min, args.expl_start - agent_steps / args.expl_decay)


# ------------------------------------------------------------------------------------------------
# Saving and resuming
# ------------------------------------------------------------------------------------------------
@dataclass
class Counters:
    env_steps: int = 0
    agent_env_steps: int = 0
    episodes: int = 0
    wall_time_s: float = 0.0


def machine_description(args: Args) -> str:
    host = " ".join(
        part for part in (platform.node(), platform.machine(), platform.processor()) if part
    )
    return (
        f"{host}, {os.cpu_count()} cpus; torch {torch.__version__}, {args.threads} thread(s) "
        f"on {args.device}"
    )


def save_agent(
    learner: Learner,
    counters: Counters,
    recent: deque[float],
    args: Args,
    path: Path | str,
    selection: Selection | None = None,
) -> Path:
    """Write the agent (reference format + metadata with the training facts), atomically."""
    from pytest_dreamer_audit.model.checkpoint import save_checkpoint

    training: dict[str, Any] = {
        "trainer": "research/train_reference_agent.py",
        "env_steps": counters.env_steps,
        "gradient_steps": learner.gradient_steps,
        "episodes": counters.episodes,
        "wall_time_s": round(counters.wall_time_s, 1),
        "machine": machine_description(args),
        "recent_mean_return": float(np.mean(recent)) if recent else None,
        "args": dataclasses.asdict(args),
    }
    if selection is not None:
        training["selection"] = {
            "seeds": [args.eval_seed, args.eval_seed + args.eval_episodes - 1],
            "sampled": selection.sampled,
            "greedy": selection.greedy,
            "score": selection.score,
        }
    metadata = AgentMetadata(game=args.game, pomdp=args.pomdp, training=training)
    return save_checkpoint(learner.agent, path, metadata=metadata)


def save(
    learner: Learner,
    replay: Replay,
    counters: Counters,
    recent: deque[float],
    args: Args,
    rng: np.random.Generator,
    best_score: float = -math.inf,
) -> str:
    """Write the checkpoint (reference format + metadata), then the resume file; both atomic.

    Returns a log line saying what was written.
    """
    path = save_agent(learner, counters, recent, args, args.checkpoint)
    weights_bytes = sum(p.numel() * 4 for p in learner.agent.parameters())
    # Adam keeps two tensors per parameter; the weights themselves live in the checkpoint.
    with_replay = 2 * weights_bytes + replay.nbytes_saved() < args.max_resume_mb * 2**20
    state = {
        "format": RESUME_FORMAT,
        "version": RESUME_VERSION,
        "counters": dataclasses.asdict(counters),
        "learner": learner.state_dict(),
        "recent_returns": list(recent),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "replay": replay.state_dict() if with_replay else None,
        "best_score": best_score,
    }
    temporary = args.resume_path.with_name(f".{args.resume_path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, args.resume_path)
    replay_note = "with" if with_replay else "without (over max_resume_mb)"
    return f"saved {path} at env step {counters.env_steps}, resume file {replay_note} the replay"


def load_resume(args: Args) -> tuple[DreamerAgent, dict[str, Any]]:
    """The saved agent and trainer state; they must describe the same env step."""
    from pytest_dreamer_audit.model.checkpoint import load_checkpoint

    agent = load_checkpoint(args.checkpoint, device=args.device)
    state = torch.load(args.resume_path, map_location=args.device, weights_only=True)
    if state.get("format") != RESUME_FORMAT or state.get("version") != RESUME_VERSION:
        raise ConfigError(f"{args.resume_path} is not a {RESUME_FORMAT} v{RESUME_VERSION} file")
    saved_steps = agent.metadata.training.get("env_steps")
    if saved_steps != state["counters"]["env_steps"]:
        raise ConfigError(
            f"{args.checkpoint} is at env step {saved_steps} but {args.resume_path} at "
            f"{state['counters']['env_steps']}; they were not saved together"
        )
    if agent.sizes != args.model_sizes():
        raise ConfigError(
            f"the checkpoint has sizes {agent.sizes}; the arguments ask for {args.model_sizes()}"
        )
    return agent, state


def warm_start(args: Args) -> tuple[DreamerAgent, Counters, int]:
    """The agent of ``args.init_from`` (a fresh actor with ``reset_actor``), its counters and
    gradient steps as recorded in its metadata (0 for a reference-format file)."""
    from pytest_dreamer_audit.model.checkpoint import load_checkpoint

    agent = load_checkpoint(args.init_from, device=args.device)
    if agent.sizes != args.model_sizes():
        raise ConfigError(
            f"{args.init_from} has sizes {agent.sizes}; the arguments ask for {args.model_sizes()}"
        )
    if agent.value_model is None or agent.reward_decoder is None or agent.discount_model is None:
        raise ConfigError(
            f"{args.init_from} lacks the critic, reward or discount head; a warm start needs a "
            "checkpoint saved by a trainer (every reference entry present)"
        )
    if args.reset_actor:
        fresh = build_agent(args.model_sizes(), seed=args.seed + 1)
        agent.action_model.load_state_dict(fresh.action_model.state_dict())
    training = agent.metadata.training
    counters = Counters(
        env_steps=int(training.get("env_steps", 0)),
        episodes=int(training.get("episodes", 0)),
        wall_time_s=float(training.get("wall_time_s", 0.0)),
    )
    return agent, counters, int(training.get("gradient_steps", 0))


def _evaluate_module() -> Any:
    """``research/evaluate_agent.py``, the sibling script."""
    from sibling import sibling

    return sibling("evaluate_agent")


class Selection(NamedTuple):
    """The selection evaluation: mean returns on ``eval_episodes`` seeds from ``eval_seed``."""

    sampled: float
    greedy: float

    @property
    def score(self) -> float:
        """What the best save is kept by: both ways of acting count."""
        return 0.5 * (self.sampled + self.greedy)


def evaluate_selection(agent: DreamerAgent, args: Args) -> Selection:
    """Full episodes on the selection seeds (never trained on: training seeds are random draws)."""
    evaluation = _evaluate_module()
    policy = evaluation.agent_policy
    seeds = list(range(args.eval_seed, args.eval_seed + args.eval_episodes))
    batch = GameBatch(args.game, pomdp=args.pomdp, episodes=len(seeds))
    was_training = agent.training
    agent.eval()
    try:
        means = [
            float(np.mean(evaluation.play(batch, seeds, policy(agent, seeds, greedy=g)).returns))
            for g in (False, True)
        ]
    finally:
        agent.train(was_training)
    return Selection(*means)


CURVE_COLUMNS = (
    "env_steps", "grad_steps", "hours", "episodes", "return_mean", "entropy", "wm_obs", "wm_reward",
    "wm_discount", "wm_kl", "actor_loss", "critic_loss", "ms_per_grad", "eval_sampled",
    "eval_greedy",
)  # fmt: skip


def append_curve(path: Path, row: dict[str, Any]) -> None:
    """Append one row of the learning curve (header written with the first row)."""
    import csv

    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in CURVE_COLUMNS})
        handle.flush()


# ------------------------------------------------------------------------------------------------
# Training loop
# ------------------------------------------------------------------------------------------------
class TrainResult(NamedTuple):
    checkpoint: Path
    counters: Counters
    gradient_steps: int
    recent_returns: list[float]


def _format(metrics: dict[str, float]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )


def _print_line(line: str) -> None:
    tqdm.write(line)
    sys.stdout.flush()  # a log file behind nohup is block-buffered


def train(args: Args, *, log: Any = None) -> TrainResult:
    """Collect, learn, log and save until ``total_env_steps``; resumable (see ``Args.resume``)."""
    write = log or _print_line
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    counters = Counters()
    recent: deque[float] = deque(maxlen=50)
    spec = game_spec(args.game)
    obs_shape = (len(spec.observed_channels(args.pomdp)), 10, 10)
    replay = Replay(args.replay_capacity, args.num_envs, obs_shape, spec.actions)

    resumed = args.resume and Path(args.checkpoint).exists() and args.resume_path.exists()
    if resumed:
        agent, state = load_resume(args)
        learner = Learner(agent, args)
        learner.load_state_dict(state["learner"])
        counters = Counters(**state["counters"])
        recent.extend(state["recent_returns"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        if state["replay"] is not None:
            replay.load_state_dict(state["replay"])
        write(
            f"resumed at env step {counters.env_steps}, gradient step {learner.gradient_steps}, "
            f"replay {len(replay)} transitions"
        )
    elif args.init_from:
        agent, counters, gradient_steps = warm_start(args)
        learner = Learner(agent, args)
        learner.gradient_steps = gradient_steps
        write(
            f"warm start from {args.init_from} at env step {counters.env_steps}, gradient step "
            f"{gradient_steps}{' with a fresh actor' if args.reset_actor else ''}"
        )
    else:
        agent = build_agent(args.model_sizes(), seed=args.seed).to(device)
        learner = Learner(agent, args)
    write(f"args: {_format(dataclasses.asdict(args))}")
    scripted_prefill = not resumed and (not args.init_from or args.reset_actor)
    best = state.get("best_score", -math.inf) if resumed else -math.inf
    if not resumed and args.best_path.exists():
        from pytest_dreamer_audit.model.checkpoint import load_checkpoint

        saved = load_checkpoint(args.best_path).metadata.training.get("selection", {})
        best = float(saved.get("score", -math.inf))
    last_eval = time.perf_counter()

    envs = Envs(args, rng)  # envs cannot be saved: a resumed run starts new episodes
    with torch.inference_mode():
        actor_state = agent.initial_state(args.num_envs)  # advanced only when the agent acts
    rows = envs.rows
    # A fresh run (or a resume without replay) fills the replay first: scripted play when fresh,
    # the agent's own policy when resuming.
    prefill_until = counters.env_steps + (
        args.prefill_steps if len(replay) < args.prefill_steps else 0
    )
    since_train, since_log, last_save = 0, 0, time.perf_counter()
    act_time = learn_time = 0.0
    act_steps = learn_steps = 0
    metrics_window: list[dict[str, Tensor]] = []
    window_start, window_env_steps = time.perf_counter(), counters.env_steps
    bar = tqdm(
        total=args.total_env_steps,
        initial=counters.env_steps,
        disable=not args.progress,
        unit="step",
        mininterval=1.0 if sys.stderr.isatty() else 60.0,
        dynamic_ncols=True,
    )
    clock = time.perf_counter()

    while counters.env_steps < args.total_env_steps:
        tick = time.perf_counter()
        replay.add(rows)
        prefilling = counters.env_steps < prefill_until
        if prefilling and scripted_prefill:
            actions = prefill_actions(args, args.num_envs, rng)
        else:
            eps = epsilon(args, counters.agent_env_steps)
            actor_state, actions = act(agent, actor_state, rows, eps, rng)
        rows, stepped, finished = envs.step(actions)
        counters.env_steps += stepped
        counters.agent_env_steps += 0 if prefilling else stepped
        counters.episodes += len(finished)
        recent.extend(finished)
        act_time += time.perf_counter() - tick
        act_steps += stepped
        bar.update(stepped)
        if prefilling:
            if counters.env_steps >= prefill_until:  # time the learning phase on its own
                act_time, act_steps = 0.0, 0
                window_start, window_env_steps = time.perf_counter(), counters.env_steps
            continue

        since_train += stepped
        since_log += stepped
        while since_train >= args.train_every:
            since_train -= args.train_every
            tick = time.perf_counter()
            for _ in range(args.train_steps):
                batch = replay.sample(args.batch_size, args.seq_len, rng, device)
                metrics_window.append(learner.train_step(batch))
            learn_time += time.perf_counter() - tick
            learn_steps += args.train_steps

        now = time.perf_counter()
        if since_log >= args.log_interval and metrics_window:
            since_log = 0
            means = {
                k: torch.stack([m[k] for m in metrics_window]).mean().item()
                for k in metrics_window[0]
            }
            line = {
                "env_steps": counters.env_steps,
                "grad_steps": learner.gradient_steps,
                "episodes": counters.episodes,
                "return_mean": float(np.mean(recent)) if recent else float("nan"),
                "eps": epsilon(args, counters.agent_env_steps),
                **{k: round(v, 4) for k, v in means.items()},
                "ms_per_grad": 1000 * learn_time / max(learn_steps, 1),
                "ms_per_env": 1000 * act_time / max(act_steps, 1),
                "env_steps_per_s": (counters.env_steps - window_env_steps) / (now - window_start),
                "hours": (counters.wall_time_s + now - clock) / 3600,
            }
            write(_format(line))
            append_curve(args.curve_path, line | {"return_mean": line["return_mean"]})
            metrics_window.clear()
            act_time = learn_time = 0.0
            act_steps = learn_steps = 0
            window_start, window_env_steps = now, counters.env_steps
        if now - last_eval >= args.eval_interval_s:
            selection = evaluate_selection(agent, args)
            row = {
                "env_steps": counters.env_steps,
                "grad_steps": learner.gradient_steps,
                "hours": (counters.wall_time_s + now - clock) / 3600,
                "eval_sampled": selection.sampled,
                "eval_greedy": selection.greedy,
            }
            append_curve(args.curve_path, row)
            note = f"selection eval: sampled {selection.sampled:.2f} greedy {selection.greedy:.2f}"
            if selection.score > best:
                best = selection.score
                counters.wall_time_s += now - clock
                clock = now
                save_agent(learner, counters, recent, args, args.best_path, selection)
                note += f" (best so far, saved {args.best_path})"
            write(note)
            last_eval = time.perf_counter()
        if now - last_save >= args.save_interval_s:
            counters.wall_time_s += now - clock
            clock = now
            write(save(learner, replay, counters, recent, args, rng, best))
            last_save = time.perf_counter()

    bar.close()
    counters.wall_time_s += time.perf_counter() - clock
    write(save(learner, replay, counters, recent, args, rng, best))
    return TrainResult(Path(args.checkpoint), counters, learner.gradient_steps, list(recent))


if __name__ == "__main__":
    train(parse_args())
