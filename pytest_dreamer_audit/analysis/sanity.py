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
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..model.agent import DreamerAgent
from ..results.config import Layout
from ..rollout.rollouts import ReplayedLatents, Trajectory
from .factorize import Factorization, FlatRows, NMFConfig, fit_nmf, flatten_posteriors
from .randomization import match_scale, softmax_
from .replays import ENCODE_ROWS, RandomizedReplay, encode_in_chunks
from .scores import categorical_scores, observation_scores
from .trust import spearman

__all__ = [
    "MEMORY_SEEDS",
    "SANITY_SEEDS",
    "PosteriorSanity",
    "activation_observation_scores",
    "measure_posterior_sanity",
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


def _spearman_of(rows: FlatRows, valid: Tensor, nmf: NMFConfig, reference: Tensor) -> float:
    """Spearman of ``reference`` with the activation scores of a fit of ``rows`` (flattened
    by the caller, who drops the probabilities before the fit: one copy fewer, issue 33)."""
    other = activation_observation_scores(rows, fit_nmf(rows.matrix, nmf))
    return spearman(reference[valid], other[valid])


def randomized_spearmans(
    replays: Iterable[RandomizedReplay | ReplayedLatents],
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
) -> list[float]:
    """Spearman of the trained activation scores ``reference`` with those of each randomized
    replay's posteriors (:func:`~.replays.streamed_replays`; scaled to the trained spread,
    refitted). The replays are consumed: each one's posterior logits are scaled and turned
    into probabilities in place (one copy of them fewer at ``explain``'s peak, issue 33).

    Shape:
        - valid, reference: ``[L, B]``
    """
    values = []
    for replay in replays:
        logits = replay.posterior_logits
        del replay  # before the fit and the next replay (:func:`~.replays.streamed_replays`)
        with torch.inference_mode():  # the replays' tensors are inference tensors
            trained = trajectory.posterior_logits.to(logits.device)
            probs = softmax_(match_scale(logits, trained, valid, in_place=True))
        del logits
        rows = flatten_posteriors(probs, valid, layout)
        del probs
        values.append(_spearman_of(rows, valid, nmf, reference))
        del rows
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
        observations = trajectory.observations.flatten(0, 1)
        embeddings = torch.empty(observations.shape[0], agent.sizes.embedding, device=device)
        encode_in_chunks(agent.encode, observations, embeddings)
    deter = trajectory.deter.to(device).flatten(0, 1)
    rows = torch.nonzero(valid.flatten().to(device)).flatten()
    values = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        source = torch.arange(deter.shape[0], device=device)
        source[rows] = rows[torch.randperm(len(rows), generator=generator).to(device)]
        sizes = agent.sizes
        logits = torch.empty(len(source), sizes.categoricals, sizes.classes, device=device)
        with torch.inference_mode():  # in chunks: a posterior's sample of every row at once
            for part in torch.split(torch.arange(len(source), device=device), ENCODE_ROWS):
                logits[part] = agent.posterior(deter[source[part]], embeddings[part]).logits
        probs = softmax_(logits.reshape(steps, episodes, *logits.shape[1:]))  # in place
        del logits
        flat = flatten_posteriors(probs.to(valid.device), valid, layout)
        del probs
        values.append(_spearman_of(flat, valid, nmf, reference))
        del flat
    return values


def sanity_budget(nmf: NMFConfig, iterations: int) -> NMFConfig:
    """The refits compare scores only: the iteration budget the main fit needed, not the cap."""
    return dataclasses.replace(nmf, max_iter=max(iterations, 10))


@dataclass(frozen=True)
class PosteriorSanity:
    """The posterior sanity checks' ``|rho|`` per seed (NaN where a score is constant).

    Attributes:
        randomized: one per permutation seed of the weights.
        memory: one per shuffle of the deterministic states.
    """

    randomized: tuple[float, ...] = ()
    memory: tuple[float, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The :class:`~pytest_dreamer_audit.results.values.TrustMetrics` fields they give:
        the largest, the mean and (randomized) the standard deviation over the seeds."""

        def stat(values: tuple[float, ...], how: Callable[[np.ndarray], float]) -> float:
            return float(how(np.asarray(values))) if values else math.nan

        return {
            "sanity_posterior_max_abs": stat(self.randomized, np.max),
            "sanity_posterior_mean_abs": stat(self.randomized, np.mean),
            "sanity_posterior_std": stat(self.randomized, np.std),
            "memory_max_abs": stat(self.memory, np.max),
            "memory_mean_abs": stat(self.memory, np.mean),
        }


def measure_posterior_sanity(
    agent: DreamerAgent,
    trajectory: Trajectory,
    valid: Tensor,
    layout: Layout,
    nmf: NMFConfig,
    reference: Tensor,
    replays: Iterable[RandomizedReplay | ReplayedLatents],
    *,
    first: float | None = None,
    memory_seeds: Sequence[int] = tuple(range(MEMORY_SEEDS)),
) -> PosteriorSanity:
    """Both posterior sanity checks.

    Args:
        replays: the randomized replays, one per permutation seed
            (:func:`~.replays.streamed_replays`, which holds one chunk at a time, or
            :func:`~.replays.randomized_replays`); without the first seed's when ``first`` is
            given. Consumed (:func:`randomized_spearmans`).
        first: the first seed's Spearman when already computed (the pipeline's full
            randomization stage scores that replay); None scores every replay.
        memory_seeds: the shuffles of the memory check.

    Shape:
        - valid, reference: ``[L, B]``
    """
    scored = randomized_spearmans(replays, trajectory, valid, layout, nmf, reference)
    randomized = [first, *scored] if first is not None else scored
    memory = memory_spearmans(agent, trajectory, valid, layout, nmf, reference, memory_seeds)
    return PosteriorSanity(tuple(map(abs, randomized)), tuple(map(abs, memory)))
