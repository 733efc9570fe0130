"""The source notebook's workflow, re-implemented on reference-style modules, against the package.

The notebook (``docs/method.md``) ran a DreamerV2 agent built from the public PyTorch
implementation's modules: ``nn.Module`` classes in the checkpoint's layout (``ObsEncoder``,
``RSSM`` with an ``nn.GRUCell``, ``ActionModel``) that build ``torch.distributions`` objects at
every step. It rolled out one episode after the other, one observation per forward pass, copied
each step's RSSM state to the host (``.cpu().numpy()`` appended to Python lists), stacked the
lists, flattened the posterior to ``[B*L*C, K]``, called torchnmf as ``NMF(V.shape, rank=r)``
then ``.fit(V)`` with torchnmf's defaults, scored each row by the norm of its reconstruction and
drew one ``L x 4``-axes matplotlib figure per rollout (``render.notebook_rollout``).

The notebook itself cannot run (``method.md``, defects 1-3); this re-implementation makes the
three smallest changes that let it run and nothing more: the logits are assigned before use, the
posterior is ``softmax``-ed before NMF (torchnmf rejects negative input), and the fit runs under
``torch.enable_grad()`` (torchnmf's updates go through autograd). The row score is the public
ancestor's ``norm(W @ H.T, dim=1)`` (defect 4's broadcasting version cannot run for r != K).

Nothing here is package code: the modules are written from ``docs/checkpoint-format.md`` and
load the checkpoint's state_dicts with ``load_state_dict(strict=True)``. Episode b is reset with
seed b (gymnasium's MinAtar env, minimal action set, sticky actions 0.1, as the package plays);
actions are sampled from torch's global RNG (seeded with b per episode), as the reference does,
so the trajectories are not the package's step for step (the first posterior is, and is checked).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.distributions as td
from torch import Tensor, nn

from .render import notebook_rollout

GYM_ID = "MinAtar/Freeway-v1"
POMDP_CHANNELS = (0, 1)  # Freeway POMDP keeps the chicken and the cars
ACTION_NAMES = ("stay", "up", "down")
CATEGORICALS, CLASSES = 20, 20
RANK = 10
TOP_K = 5
RENDER_EPISODES = 4
STAGES = ("load", "rollouts", "flatten", "nmf fit", "scores", "render")


# ---- reference-style modules (the checkpoint's layout) --------------------------------------


class ObsEncoder(nn.Module):
    def __init__(self, channels: int, depth: int = 16, embedding: int = 200) -> None:
        super().__init__()
        self.convolutions = nn.Sequential(
            nn.Conv2d(channels, depth, 3),
            nn.ELU(),
            nn.Conv2d(depth, 2 * depth, 3),
            nn.ELU(),
            nn.Conv2d(2 * depth, 4 * depth, 3),
            nn.ELU(),
        )
        flat = 4 * depth * 4 * 4
        self.fc_1 = nn.Identity() if flat == embedding else nn.Linear(flat, embedding)

    def forward(self, obs: Tensor) -> Tensor:
        batch_shape = obs.shape[:-3]
        embed = self.convolutions(obs.reshape(-1, *obs.shape[-3:]))
        return self.fc_1(embed.reshape(*batch_shape, -1))


@dataclass
class RSSMDiscState:
    logit: Tensor
    stoch: Tensor
    deter: Tensor


class RSSM(nn.Module):
    def __init__(
        self, actions: int, deter: int = 200, node: int = 200, embedding: int = 200
    ) -> None:
        super().__init__()
        stoch = CATEGORICALS * CLASSES
        self.deter_size, self.stoch_size = deter, stoch
        self.rnn = nn.GRUCell(node, deter)
        self.fc_embed_state_action = nn.Sequential(nn.Linear(stoch + actions, node), nn.ELU())
        self.fc_prior = nn.Sequential(nn.Linear(deter, node), nn.ELU(), nn.Linear(node, stoch))
        self.fc_posterior = nn.Sequential(
            nn.Linear(deter + embedding, node), nn.ELU(), nn.Linear(node, stoch)
        )

    def init_state(self, batch: int) -> RSSMDiscState:
        zeros = torch.zeros
        return RSSMDiscState(
            zeros(batch, self.stoch_size),
            zeros(batch, self.stoch_size),
            zeros(batch, self.deter_size),
        )

    def get_stoch_state(self, logit: Tensor) -> Tensor:
        """One-hot sample per categorical with straight-through gradients (a new dist each call)."""
        shape = logit.shape
        dist = td.OneHotCategorical(logits=logit.reshape(*shape[:-1], CATEGORICALS, CLASSES))
        stoch = dist.sample()
        stoch = stoch + dist.probs - dist.probs.detach()
        return stoch.reshape(shape)

    def get_dist(self, state: RSSMDiscState) -> td.Distribution:
        logit = state.logit.reshape(*state.logit.shape[:-1], CATEGORICALS, CLASSES)
        return td.Independent(td.OneHotCategoricalStraightThrough(logits=logit), 1)

    def rssm_imagine(
        self, prev_action: Tensor, prev_state: RSSMDiscState, nonterm: float
    ) -> RSSMDiscState:
        x = self.fc_embed_state_action(torch.cat([prev_state.stoch * nonterm, prev_action], -1))
        deter = self.rnn(x, prev_state.deter * nonterm)
        logit = self.fc_prior(deter)
        return RSSMDiscState(logit, self.get_stoch_state(logit), deter)

    def rssm_observe(
        self, embed: Tensor, prev_action: Tensor, nonterm: float, prev_state: RSSMDiscState
    ) -> tuple[RSSMDiscState, RSSMDiscState]:
        prior = self.rssm_imagine(prev_action, prev_state, nonterm)
        logit = self.fc_posterior(torch.cat([prior.deter, embed], dim=-1))
        return prior, RSSMDiscState(logit, self.get_stoch_state(logit), prior.deter)

    @staticmethod
    def get_model_state(state: RSSMDiscState) -> Tensor:
        return torch.cat([state.deter, state.stoch], dim=-1)


class ActionModel(nn.Module):
    def __init__(self, actions: int, model_state: int = 600, hidden: int = 100) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(model_state, hidden),
            nn.ELU(),
            nn.Linear(hidden, hidden),
            nn.ELU(),
            nn.Linear(hidden, hidden),
            nn.ELU(),
            nn.Linear(hidden, actions),
        )

    def forward(self, model_state: Tensor) -> tuple[Tensor, td.Distribution]:
        dist = td.OneHotCategorical(logits=self.model(model_state))
        action = dist.sample()
        return action + dist.probs - dist.probs.detach(), dist


@dataclass
class ReferenceAgent:
    encoder: ObsEncoder
    rssm: RSSM
    actor: ActionModel


def load_reference(path: str) -> ReferenceAgent:
    """The checkpoint's state_dicts in the reference-style modules (strict: every key used)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    channels = checkpoint["ObsEncoder"]["convolutions.0.weight"].shape[1]
    actions = checkpoint["ActionModel"]["model.6.weight"].shape[0]
    agent = ReferenceAgent(ObsEncoder(channels), RSSM(actions), ActionModel(actions))
    for name, module in (
        ("ObsEncoder", agent.encoder),
        ("RSSM", agent.rssm),
        ("ActionModel", agent.actor),
    ):
        module.load_state_dict(checkpoint[name])
    for module in (agent.encoder, agent.rssm, agent.actor):
        module.eval()
    return agent


# ---- the notebook's workflow -----------------------------------------------------------------


def make_env() -> Any:
    import gymnasium

    if GYM_ID not in gymnasium.registry:
        logging.disable(logging.WARNING)  # MinAtar warns that seaborn (its GUI's) is missing
        import minatar.gym

        logging.disable(logging.NOTSET)
        minatar.gym.register_envs()
    return gymnasium.make(GYM_ID, disable_env_checker=True, sticky_action_prob=0.1)


def _chw(state: np.ndarray) -> np.ndarray:
    return np.transpose(state[..., list(POMDP_CHANNELS)], (2, 0, 1))


def notebook_rollouts(agent: ReferenceAgent, episodes: int, steps: int) -> dict[str, list]:
    """One episode after the other, one observation per forward pass, host copies every step.

    Returns per-episode Python lists (the notebook's ``*_list`` variables) of per-step arrays.
    """
    env = make_env()
    record: dict[str, list] = {k: [] for k in ("obs", "post", "prior", "stoch", "deter")}
    record.update(action=[], entropy=[])
    with torch.no_grad():
        for b in range(episodes):
            torch.manual_seed(b)
            state, _ = env.reset(seed=b)
            obs = _chw(state)
            prev_state = agent.rssm.init_state(1)
            prev_action = torch.zeros(1, agent.actor.model[-1].out_features)
            nonterm = 1.0
            lists: dict[str, list] = {k: [] for k in record}
            for _ in range(steps):
                embed = agent.encoder(torch.tensor(obs, dtype=torch.float32).unsqueeze(0))
                prior, posterior = agent.rssm.rssm_observe(embed, prev_action, nonterm, prev_state)
                model_state = agent.rssm.get_model_state(posterior)
                action, _ = agent.actor(model_state)
                posterior_dist = agent.rssm.get_dist(posterior)
                lists["obs"].append(obs)
                lists["post"].append(posterior.logit.cpu().numpy())
                lists["prior"].append(prior.logit.cpu().numpy())
                lists["stoch"].append(posterior.stoch.cpu().numpy())
                lists["deter"].append(posterior.deter.cpu().numpy())
                lists["entropy"].append(posterior_dist.entropy().cpu().numpy())
                index = int(action.squeeze(0).cpu().numpy().argmax())
                lists["action"].append(index)
                state, _, terminated, truncated, _ = env.step(index)
                obs = _chw(state)
                prev_state, prev_action = posterior, action
                if terminated or truncated:
                    break
            for key, value in lists.items():
                record[key].append(value)
    return record


@dataclass
class Flat:
    logits: np.ndarray  # [B, L, C, K]
    probs: np.ndarray  # [B, L, C, K]
    stoch: np.ndarray  # [B, L, C, K]
    observations: np.ndarray  # [B, L, channels, 10, 10]
    actions: np.ndarray  # [B, L]
    rows: Tensor  # [B*L*C, K]


def flatten(record: dict[str, list]) -> Flat:
    """Stack the lists and flatten the softmax posterior to ``[B*L*C, K]`` (episode-major).

    Every episode has the same length here (Freeway never ends before step 2500).
    """
    logits = np.stack([np.concatenate(e) for e in record["post"]])
    logits = logits.reshape(*logits.shape[:2], CATEGORICALS, CLASSES)
    probs = torch.softmax(torch.from_numpy(logits), dim=-1)
    stoch = np.stack([np.concatenate(e) for e in record["stoch"]]).reshape(logits.shape)
    observations = np.stack([np.stack(e) for e in record["obs"]])
    actions = np.asarray(record["action"])
    return Flat(logits, probs.numpy(), stoch, observations, actions, probs.reshape(-1, CLASSES))


def notebook_nmf(rows: Tensor, transposed: bool = True) -> Any:
    """``NMF(V.shape, rank=r)`` then ``.fit(V)`` with torchnmf's defaults (beta 1, tol 1e-4,
    200 iterations). ``transposed``: ``V = X.T`` as the notebook (``method.md``); else ``V = X``.
    """
    from torchnmf.nmf import NMF

    v = rows.T if transposed else rows  # the notebook's V
    model = NMF(v.shape, rank=RANK)
    with torch.enable_grad():
        model.fit(v)
    return model


def notebook_scores(model: Any, flat: Flat, transposed: bool = True) -> tuple[Tensor, Tensor]:
    """Row score ``norm(W @ H.T, dim=1)`` (reconstruction), per observation summed over C;
    the top-k steps of each rollout. Returns ``([B, L, C] row scores, [B, k] top steps)``."""
    with torch.no_grad():
        recon = model.W @ model.H.t() if transposed else model.H @ model.W.t()
        per_row = torch.norm(recon, dim=1).reshape(flat.probs.shape[:3])
        per_observation = per_row.sum(dim=-1)
        top = torch.topk(per_observation, min(TOP_K, per_observation.shape[1]), dim=1).indices
    return per_row, top


def notebook_figures(flat: Flat, per_row: Tensor, episodes: int) -> list[bytes]:
    """The notebook's figure of each of the first ``episodes`` rollouts (``notebook_rollout``)."""
    per_observation = per_row.sum(-1)
    view = SimpleNamespace(
        valid=np.ones(flat.actions.shape[::-1], dtype=bool),
        observations=flat.observations.swapaxes(0, 1),
        posterior_probs=flat.probs.swapaxes(0, 1),
        stoch_classes=flat.stoch.argmax(-1).swapaxes(0, 1),
        step_scores=(per_row / per_row.max()).numpy().swapaxes(0, 1),
        observation_scores=(per_observation / per_observation.max()).numpy().swapaxes(0, 1),
        action_names=ACTION_NAMES,
        actions=flat.actions.swapaxes(0, 1),
    )
    return [notebook_rollout(view, b) for b in range(min(episodes, flat.actions.shape[0]))]


def notebook_workflow(
    path: str,
    episodes: int,
    steps: int,
    figures: int = RENDER_EPISODES,
    other_orientation: bool = False,
) -> dict[str, float]:
    """The whole notebook, stage by stage: seconds per stage (``STAGES``) and ``total``.

    ``render`` is the time of ``figures`` figures scaled to ``RENDER_EPISODES`` (each figure is
    one 50-step rollout, the same work whatever the episode), so a run may draw fewer.
    ``other_orientation`` also times the fit of ``V = X`` (``[N*C, K]``) as ``nmf fit (V = X)``,
    outside the total.
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        seconds[name] = now - start
        start = now

    agent = load_reference(path)
    lap("load")
    record = notebook_rollouts(agent, episodes, steps)
    lap("rollouts")
    flat = flatten(record)
    lap("flatten")
    model = notebook_nmf(flat.rows)
    lap("nmf fit")
    per_row, _ = notebook_scores(model, flat)
    lap("scores")
    notebook_figures(flat, per_row, figures)
    lap("render")
    seconds["render"] *= RENDER_EPISODES / max(1, min(figures, episodes))
    seconds["total"] = sum(seconds[s] for s in STAGES)
    if other_orientation:
        start = time.perf_counter()
        notebook_nmf(flat.rows, transposed=False)
        seconds["nmf fit (V = X)"] = time.perf_counter() - start
    return seconds


def first_posterior_matches(path: str, package_first_logits: Tensor) -> float:
    """Largest |difference| between this module set's first posterior logits (episode 0, seed 0)
    and the package's: the first step depends on the weights and the observation only."""
    agent = load_reference(path)
    env = make_env()
    state, _ = env.reset(seed=0)
    with torch.no_grad():
        embed = agent.encoder(torch.tensor(_chw(state), dtype=torch.float32).unsqueeze(0))
        prev = agent.rssm.init_state(1)
        _, posterior = agent.rssm.rssm_observe(embed, torch.zeros(1, 3), 1.0, prev)
    ours = posterior.logit.reshape(CATEGORICALS, CLASSES)
    return float((ours - package_first_logits.reshape(CATEGORICALS, CLASSES)).abs().max())


def best_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-stage minimum over runs (each stage's best); ``total`` is the best run's total."""
    return {key: min(run[key] for run in runs) for key in runs[0]}
