"""Does the world model predict? Open-loop imagination from every analysed posterior state.

DreamerV2 acts inside its world model's imagination; the rest of the audit reads only the
posterior. Here, from the posterior state at every analysed step ``t`` (each categorical's most
likely class and the recorded deterministic state), the prior is rolled ``h`` steps under the
actions actually taken, ``a_t ... a_{t+h-1}``, all (t, episode) starts in one batch, with each
categorical's most likely class at every step (a reproducible point prediction; the actor's
training imagines with samples). At each horizon the decoder's prediction of ``o_{t+h}``, the
reward head and the discount head are compared with what happened and with three references:

- **persistence**: ``o_t`` as the prediction of ``o_{t+h}``, calibrated (each channel's
  ``P(o_{t+h} = 1 | o_t)`` fitted on the same pairs): the null a model must beat to be said to
  predict anything that moves;
- **randomized dynamics**: the same rollout with the prior head, the GRU and the state-action
  embedding permuted (``randomization.permute_parameters``, same scale), the decoder kept;
- **ceiling**: the decoder's reconstruction of ``o_{t+h}`` from its own posterior there.

Errors are per-cell Bernoulli negative log-likelihoods (the decoder's mean, clipped to
``[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]``, read as the probability of a lit cell) and the
accuracy on the cells that change. Episodes are the independent units: the paired test flips
the sign of each episode's mean difference (exactly, over all ``2^B`` patterns, up to
:data:`EXACT_EPISODES` episodes; seeded draws above).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..model.agent import DreamerAgent
from ..results.config import MAX_HORIZON
from ..results.imagination import ALL_CHANNELS, HeadPrediction, ImaginationTable, PredictionError
from ..rollout.rollouts import Trajectory
from .paired import EXACT_EPISODES, SIGN_FLIP_DRAWS, roc_auc, sign_flip_p_values, sign_patterns
from .randomization import LAYERS, permute_parameters
from .trust import mode_one_hot

__all__ = [
    "DYNAMICS_LAYERS",
    "check_imagination",
    "PROBABILITY_FLOOR",
    "imagination_table",
    "imagined_frames",
    "open_loop_states",
]

PROBABILITY_FLOOR = 1e-3
"""Predictions are clipped to ``[floor, 1 - floor]``: one wrong certain cell costs 6.9 nats,
not infinity."""
DYNAMICS_LAYERS: tuple[int, ...] = tuple(
    i
    for i, (name, _) in enumerate(LAYERS)
    if name in ("prior head", "GRU", "state-action embedding")
)
"""The layers of ``randomization.LAYERS`` permuted for the randomized dynamics."""


def _required_heads(agent: DreamerAgent) -> None:
    missing = [
        name
        for name, module in (
            ("ObsDecoder", agent.obs_decoder),
            ("RewardDecoder", agent.reward_decoder),
        )
        if module is None
    ]
    if missing:
        raise ConfigError(
            f"the imagination audit decodes the imagined states and reads their reward, so it "
            f"needs the checkpoint's {' and '.join(missing)}, which this checkpoint does not "
            "carry; turn imagination off (--dreamer-imagination off)"
        )


def check_imagination(agent: DreamerAgent, steps: int, horizons: tuple[int, ...]) -> None:
    """Refuse, before anything is computed, horizons that do not fit ``steps``-step rollouts
    and an agent without the decoder or the reward head (ConfigError naming what is missing).
    """
    longest = min(steps - 1, MAX_HORIZON)
    if longest < 1:
        raise ConfigError(
            f"the imagination audit needs rollouts of at least 2 steps, got {steps}; roll out "
            "longer episodes or turn imagination off"
        )
    if not horizons or max(horizons) > longest or min(horizons) < 1:
        raise ConfigError(
            f"imagination horizons {list(horizons)} do not fit the {steps}-step rollouts: the "
            f"valid range is 1 to {longest} (a horizon needs a recorded o_(t+h)); roll out "
            "longer episodes or ask for shorter horizons"
        )
    _required_heads(agent)


def open_loop_states(
    agent: DreamerAgent,
    stoch: Tensor,
    deter: Tensor,
    actions: Tensor,
    horizons: tuple[int, ...],
) -> Tensor:
    """The model states after rolling the prior ``h`` steps for each ``h`` in ``horizons``.

    Each step takes the most likely class of every categorical (no sampling: the result does
    not depend on a random generator).

    Shape:
        - stoch: ``[N, C, K]`` one-hot; deter: ``[N, D]``: the N start states
        - actions: ``[H, N, A]`` one-hot, the actions of steps ``t ... t + H - 1``, ``H >=
          max(horizons)``
        - output: ``[len(horizons), N, D + C * K]``
    """
    out = []
    flat, state = stoch.flatten(start_dim=1), deter
    for k in range(max(horizons)):
        state = agent.rssm.transition(flat, state, actions[k])
        logits = agent.rssm.fc_prior(state).reshape(-1, *stoch.shape[1:])
        flat = mode_one_hot(logits).flatten(start_dim=1)
        if k + 1 in horizons:
            out.append(torch.cat([state, flat], dim=-1))
    return torch.stack(out)


def imagined_frames(
    agent: DreamerAgent, trajectory: Trajectory, episode: int, horizons: tuple[int, ...]
) -> np.ndarray:
    """What the world model imagines, for the filmstrip (``report/imagination.py``): from every
    recorded step ``t`` of one episode, the decoded prior ``h`` steps ahead, stored at ``t + h``
    (zeros where ``t + h`` falls outside the recorded steps).

    Shape:
        - output: ``[len(horizons), L, channels, 10, 10]`` float32, ``[i, s]`` the frame
          imagined for step ``s`` from step ``s - horizons[i]``
    """
    _required_heads(agent)
    assert agent.obs_decoder is not None, "checked by _required_heads"
    if not 0 <= episode < trajectory.episodes:
        raise ConfigError(f"episode {episode} out of range: 0 to {trajectory.episodes - 1}")
    device = agent.device
    steps = trajectory.steps
    starts = torch.nonzero(trajectory.valid[:, episode].bool(), as_tuple=True)[0].to(device)
    actions = torch.cat([trajectory.actions[:, episode].to(device), torch.zeros(
        max(horizons), dtype=torch.int64, device=device)])  # fmt: skip
    offsets = torch.arange(max(horizons), device=device)[:, None]
    out = np.zeros((len(horizons), steps, agent.sizes.channels, 10, 10), dtype=np.float32)
    with torch.inference_mode():
        posterior = mode_one_hot(trajectory.posterior_logits[:, episode].to(device).float())
        deter = trajectory.deter[:, episode].to(device).float()
        states = open_loop_states(
            agent,
            posterior[starts],
            deter[starts],
            agent.one_hot_actions(actions[starts[None] + offsets]),
            horizons,
        )
        for i, h in enumerate(horizons):
            inside = starts + h < steps
            frames = agent.obs_decoder(states[i][inside]).float().cpu().numpy()
            out[i, (starts[inside] + h).cpu().numpy()] = frames
    return out


@dataclass(frozen=True)
class _Cells:
    """Per pair and channel: summed NLL over the cells, and correct thresholded predictions on
    the cells that change. Shapes ``[N, channels]``."""

    nll: np.ndarray
    changed_correct: np.ndarray


def _cells(predicted: Tensor, real: Tensor, changed: Tensor) -> _Cells:
    p = predicted.clamp(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    nll = -torch.where(real, p.log(), (1 - p).log())
    correct = ((p > 0.5) == real) & changed
    return _Cells(
        nll.flatten(start_dim=2).sum(-1).double().cpu().numpy(),
        correct.flatten(start_dim=2).sum(-1).double().cpu().numpy(),
    )


def _persistence(now: Tensor, real: Tensor) -> Tensor:
    """``o_t`` calibrated per channel: ``P(o_{t+h} = 1 | o_t)`` fitted on these pairs."""
    lit = now.float()
    dims = (0, 2, 3)
    stay = (real & now).float().sum(dims) / lit.sum(dims).clamp(min=1)
    appear = (real & ~now).float().sum(dims) / (1 - lit).sum(dims).clamp(min=1)
    return torch.where(now, stay[None, :, None, None], appear[None, :, None, None])


def imagination_table(
    agent: DreamerAgent,
    trajectory: Trajectory,
    analysed: Tensor,
    horizons: tuple[int, ...],
    *,
    seed: int,
) -> ImaginationTable:
    """The imagination audit of ``trajectory`` (module docstring).

    Args:
        agent: the agent whose rollouts ``trajectory`` holds; needs an ObsDecoder and a
            RewardDecoder (the DiscountModel is optional).
        analysed: ``[L, B]`` bool, the start steps (the explanation's valid steps).
        horizons: ascending, each in ``[1, min(L - 1, MAX_HORIZON)]``.
        seed: seed of the dynamics' permutation and of drawn sign flips.

    Raises:
        ConfigError: a horizon outside the rollouts, or a missing decoder or reward head.
    """
    check_imagination(agent, trajectory.steps, horizons)
    steps = trajectory.steps
    device = agent.device
    recorded = trajectory.valid.bool().to(device)
    start_t, start_b = torch.nonzero(analysed.bool().to(device), as_tuple=True)
    padded = torch.cat([trajectory.actions.to(device), trajectory.actions.new_zeros(
        (max(horizons), trajectory.episodes)).to(device)])  # fmt: skip
    offsets = torch.arange(max(horizons), device=device)[:, None]
    actions = agent.one_hot_actions(padded[start_t[None] + offsets, start_b[None]])
    with torch.inference_mode():
        posterior = mode_one_hot(trajectory.posterior_logits.to(device).float())
        deter = trajectory.deter.to(device).float()
        start = (posterior[start_t, start_b], deter[start_t, start_b])
        ceiling = _ceiling(agent, posterior, deter, recorded)
        trained = open_loop_states(agent, *start, actions, horizons)
        randomized_agent = permute_parameters(agent, DYNAMICS_LAYERS, seed)
        randomized = open_loop_states(randomized_agent, *start, actions, horizons)
        patterns = sign_patterns(trajectory.episodes, seed)
        errors, heads = [], []
        for i, h in enumerate(horizons):
            target = (start_t + h).clamp(max=steps - 1)
            pairs = (start_t + h < steps) & recorded[target, start_b]
            t, b, tt = start_t[pairs], start_b[pairs], target[pairs]
            errors += _error_rows(
                agent,
                trajectory,
                (t, b, tt),
                (trained[i][pairs], randomized[i][pairs], ceiling[0][tt, b]),
                h,
                patterns,
            )
            heads.append(
                _head_row(
                    agent,
                    trajectory,
                    (start_t, start_b),
                    (trained[i], randomized[i], ceiling[1]),
                    pairs,
                    h,
                )
            )
    kind = "exact" if trajectory.episodes <= EXACT_EPISODES else f"{SIGN_FLIP_DRAWS} seeded"
    test = f"{kind} sign flips over {trajectory.episodes} episodes (paired, one-sided)"
    return ImaginationTable(tuple(horizons), test, tuple(errors), tuple(heads))


def _ceiling(
    agent: DreamerAgent, posterior: Tensor, deter: Tensor, recorded: Tensor
) -> tuple[Tensor, Tensor]:
    """The decoder's reconstruction and the reward head's reading of every recorded step from
    its own posterior (zeros elsewhere): decoded once, indexed by every horizon.

    Shape:
        - posterior: ``[L, B, C, K]`` one-hot; deter: ``[L, B, D]``; recorded: ``[L, B]``
        - output: ``[L, B, channels, 10, 10]`` and ``[L, B]``
    """
    assert agent.obs_decoder is not None, "checked by _required_heads"
    assert agent.reward_decoder is not None, "checked by _required_heads"
    steps, episodes = recorded.shape
    states = torch.cat([deter[recorded], posterior[recorded].flatten(start_dim=1)], dim=-1)
    decoded = agent.obs_decoder(states).float()
    frames = decoded.new_zeros((steps, episodes, *decoded.shape[1:]))
    frames[recorded] = decoded
    rewards = decoded.new_zeros((steps, episodes))
    rewards[recorded] = agent.reward_decoder(states).squeeze(-1).float()
    return frames, rewards


def _error_rows(
    agent: DreamerAgent,
    trajectory: Trajectory,
    where: tuple[Tensor, Tensor, Tensor],
    predictions: tuple[Tensor, Tensor, Tensor],
    horizon: int,
    patterns: np.ndarray,
) -> list[PredictionError]:
    """The rows of one horizon: all channels, then each channel.

    Shape:
        - where: ``[N]`` start steps, episodes and target steps of the pairs
        - predictions: the trained and randomized imagined model states ``[N, model_state]``
          and the ceiling's decoded frames ``[N, channels, 10, 10]``
    """
    assert agent.obs_decoder is not None  # checked by _required_heads
    t, b, tt = where
    trained, randomized, ceiling = predictions
    observations = trajectory.observations.to(t.device).bool()
    now, real = observations[t, b], observations[tt, b]
    changed = now != real
    imagined = agent.obs_decoder(torch.cat([trained, randomized])).float().split(len(t))
    frames = (_persistence(now, real), *imagined, ceiling)
    persistence, model, random_, top = (_cells(frame, real, changed) for frame in frames)
    n_changed = changed.flatten(start_dim=2).sum(-1).double().cpu().numpy()  # [N, channels]
    episode = b.cpu().numpy()
    counts = np.bincount(episode, minlength=trajectory.episodes)
    present = counts > 0
    channels = real.shape[1]
    cells = int(real[0, 0].numel()) if len(t) else 1

    def by_channel(values: np.ndarray) -> np.ndarray:
        """``[N, channels]`` -> ``[N, 1 + channels]``: all channels first."""
        return np.concatenate([values.sum(1, keepdims=True), values], axis=1)

    def per_episode(values: np.ndarray) -> np.ndarray:
        """Mean per cell of each present episode, ``[E, 1 + channels]``."""
        sums = np.stack([np.bincount(episode, column, trajectory.episodes) for column in values.T])
        return sums.T[present] / counts[present, None] / widths

    widths = np.array([cells * channels] + [cells] * channels, dtype=np.float64)
    nll = {name: by_channel(of.nll) for name, of in (("model", model), ("persistence",
           persistence), ("randomized", random_), ("ceiling", top))}  # fmt: skip
    model_episode = per_episode(nll["model"])
    differences = np.concatenate(
        [
            per_episode(nll["persistence"]) - model_episode,
            per_episode(nll["randomized"]) - model_episode,
        ],
        axis=1,
    )
    flips = patterns if present.all() else patterns[:, present]
    p_values = sign_flip_p_values(differences, flips).reshape(2, -1)
    changed_counts = by_channel(n_changed).sum(0)
    correct = {name: by_channel(of.changed_correct).sum(0) for name, of in (("model", model),
               ("randomized", random_), ("ceiling", top))}  # fmt: skip
    pairs = max(len(t), 1)

    def accuracy(name: str, column: int) -> float:
        n = changed_counts[column]
        return float(correct[name][column] / n) if n > 0 else math.nan

    rows = []
    for column, channel in enumerate((ALL_CHANNELS, *range(channels))):
        mean = {
            name: float(v[:, column].sum() / (pairs * widths[column])) for name, v in nll.items()
        }
        rows.append(
            PredictionError(
                horizon=horizon,
                channel=channel,
                starts=len(t),
                changed_fraction=float(changed_counts[column] / (pairs * widths[column])),
                model_nll=mean["model"],
                persistence_nll=mean["persistence"],
                randomized_nll=mean["randomized"],
                ceiling_nll=mean["ceiling"],
                model_changed_accuracy=accuracy("model", column),
                randomized_changed_accuracy=accuracy("randomized", column),
                ceiling_changed_accuracy=accuracy("ceiling", column),
                p_persistence=float(p_values[0, column]),
                p_randomized=float(p_values[1, column]),
            )
        )
    return rows


def _head_row(
    agent: DreamerAgent,
    trajectory: Trajectory,
    starts: tuple[Tensor, Tensor],
    states: tuple[Tensor, Tensor, Tensor],
    pairs: Tensor,
    horizon: int,
) -> HeadPrediction:
    """The reward head (on the pairs with a recorded ``o_{t+h}``) and the discount head (on
    every start whose transition into ``t + h`` was recorded) at one horizon.

    Shape:
        - starts: ``[N]`` steps and episodes; pairs: ``[N]`` bool
        - states: the trained and randomized imagined model states ``[N, model_state]``, and
          the ceiling's reward at every step ``[L, B]``
    """
    assert agent.reward_decoder is not None  # checked by _required_heads
    start_t, start_b = starts
    trained_states, randomized_states, ceiling = states
    t, b = start_t[pairs], start_b[pairs]
    tt = t + horizon
    device = t.device
    rewards = trajectory.rewards.to(device).float()
    positive = (rewards[tt - 1, b] > 0).cpu().numpy()
    before = torch.where(t > 0, rewards[(t - 1).clamp(min=0), b], torch.zeros_like(rewards[t, b]))
    both = agent.reward_decoder(torch.cat([trained_states[pairs], randomized_states[pairs]]))
    trained, randomized = both.squeeze(-1).split(len(t))

    def auc(scores: Tensor) -> float:
        return roc_auc(scores.double().cpu().numpy(), positive)

    terminals, discount = 0, math.nan
    if agent.discount_model is not None:
        into = start_t + horizon - 1  # the row of the transition into t + h
        inside = into < trajectory.steps
        recorded = trajectory.valid.bool().to(device)[into.clamp(max=trajectory.steps - 1), start_b]
        ok = inside & recorded
        ended = trajectory.terminals.bool().to(device)[into[ok], start_b[ok]].cpu().numpy()
        ending = -agent.discount_model(trained_states[ok]).squeeze(-1)  # logit of P(end)
        terminals = int(ended.sum())
        discount = roc_auc(ending.double().cpu().numpy(), ended)
    return HeadPrediction(
        horizon=horizon,
        starts=len(t),
        reward_events=int(positive.sum()),
        reward_auc=auc(trained),
        reward_persistence_auc=auc(before),
        reward_randomized_auc=auc(randomized),
        reward_ceiling_auc=auc(ceiling[tt, b]),
        terminals=terminals,
        discount_auc=discount,
    )
