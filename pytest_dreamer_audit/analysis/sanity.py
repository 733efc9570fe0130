"""Sanity checks on what the posterior path produces, over several seeds.

The first sanity check (``randomization.py``) compares the configured score, and the default
score, surprise, is ``KL(posterior || prior)``: randomizing the prior moves it even when the
posterior ignores every weight, so a posterior that is a fixed function of the screen passed it
(0.244 on the bundled agent's planted double). Both checks here compare a quantity the prior
cannot move, the posterior's NMF activation score (``scores.py``: ``||A_i||`` with unit
prototypes, aggregated per observation), refitted on the changed posteriors, and test ``|rho|``
(two-sided) over several seeds, so that the spread is known:

* **randomized weights** (Adebayo et al. 2018): every layer that makes the posteriors is
  permuted (:func:`~.randomization.permute_parameters`, scale kept by
  :func:`~.randomization.match_scale`), one permutation per seed;
* **memory**: the trained posterior network is fed the deterministic state of another valid
  step (a seeded shuffle over all episodes and steps) with the true observation. A posterior
  that ignores the deterministic state, or reads only the screen, gives ``|rho| = 1``; the
  bundled agent's 0.62-0.74 (16 x 50, three rollout seeds x five shuffles).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from ..model.agent import DreamerAgent
from ..results.config import Layout
from ..rollout.rollouts import Trajectory, replay_posteriors
from .factorize import Factorization, FlatRows, NMFConfig, fit_nmf, flatten_posteriors
from .randomization import LAYERS, match_scale, permute_parameters
from .scores import categorical_scores, observation_scores
from .trust import spearman

__all__ = [
    "MEMORY_SEEDS",
    "SANITY_SEEDS",
    "activation_observation_scores",
    "memory_spearmans",
    "randomized_spearmans",
    "sanity_budget",
]

SANITY_SEEDS = 5
"""Permutation seeds of the posterior sanity check (each a replay and an NMF refit)."""
MEMORY_SEEDS = 3
"""Shuffles of the deterministic states for the memory check (its spread over seeds is small:
0.02-0.06 of ``|rho|`` on the bundled agent over five)."""


def activation_observation_scores(rows: FlatRows, fit: Factorization) -> Tensor:
    """The activation score of every observation (posterior-only: no prior enters it).

    Shape:
        - output: ``[L, B]``, 0 at steps without rows
    """
    return observation_scores("activation", categorical_scores("activation", rows, fit))


def _spearman_of(
    probs: Tensor, valid: Tensor, layout: Layout, nmf: NMFConfig, reference: Tensor
) -> float:
    rows = flatten_posteriors(probs, valid, layout)
    other = activation_observation_scores(rows, fit_nmf(rows.matrix, nmf))
    return spearman(reference[valid], other[valid])


def randomized_spearmans(
    agent: DreamerAgent,
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
    seeds: Sequence[int],
) -> list[float]:
    """Spearman of the trained activation scores ``reference`` with those of the agent with
    every posterior-making layer permuted, one permutation per seed (the same observations and
    actions replayed).

    Shape:
        - valid, reference: ``[L, B]``
    """
    everything = tuple(range(len(LAYERS)))
    values = []
    for seed in seeds:
        replayed = replay_posteriors(permute_parameters(agent, everything, seed), trajectory)
        posterior = match_scale(replayed.posterior_logits, trajectory.posterior_logits, valid)
        values.append(_spearman_of(torch.softmax(posterior, dim=-1), valid, layout, nmf, reference))
    return values


def memory_spearmans(
    agent: DreamerAgent,
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
    seeds: Sequence[int],
) -> list[float]:
    """Spearman of the trained activation scores ``reference`` with those of the posteriors
    computed from each step's observation and another valid step's deterministic state (a
    seeded permutation of the valid steps per seed).

    Shape:
        - valid, reference: ``[L, B]``
    """
    device = agent.device
    steps, episodes = valid.shape
    with torch.inference_mode():
        embeddings = agent.encode(trajectory.observations.to(device).flatten(0, 1).float())
    deter = trajectory.deter.to(device).flatten(0, 1)
    rows = torch.nonzero(valid.flatten().to(device)).flatten()
    values = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        source = torch.arange(deter.shape[0], device=device)
        source[rows] = rows[torch.randperm(len(rows), generator=generator).to(device)]
        with torch.inference_mode():
            logits = agent.posterior(deter[source], embeddings).logits
        probs = torch.softmax(logits.reshape(steps, episodes, *logits.shape[1:]), dim=-1)
        values.append(_spearman_of(probs.to(valid.device), valid, layout, nmf, reference))
    return values


def sanity_budget(nmf: NMFConfig, iterations: int) -> NMFConfig:
    """The refits compare scores only: the iteration budget the main fit needed, not the cap."""
    return dataclasses.replace(nmf, max_iter=max(iterations, 10))
