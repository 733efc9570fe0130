"""The posterior sanity checks (``analysis/sanity.py``): the memory check tells a posterior that
reads its memory from one that does not, the seeds' summary, a first value given, and the
replays consumed (the replays themselves: ``tests/test_replays.py``)."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_dreamer_audit import planted
from pytest_dreamer_audit.analysis.factorize import fit_nmf, flatten_posteriors
from pytest_dreamer_audit.analysis.replays import randomized_replays
from pytest_dreamer_audit.analysis.sanity import (
    PosteriorSanity,
    activation_observation_scores,
    measure_posterior_sanity,
    memory_spearmans,
)
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts

CONFIG = ExplainConfig(rank=3)


def _reference(trajectory: Trajectory) -> torch.Tensor:
    valid = trajectory.valid.bool()
    rows = flatten_posteriors(trajectory.posterior_probs, valid, CONFIG.layout)
    return activation_observation_scores(rows, fit_nmf(rows.matrix, CONFIG.nmf()))


def test_the_memory_check_is_one_only_for_a_posterior_that_ignores_its_memory(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    valid = trajectory.valid.bool()
    reads = memory_spearmans(
        agent, trajectory, valid, CONFIG.layout, CONFIG.nmf(), _reference(trajectory), [0, 1]
    )
    assert all(abs(v) < 0.95 for v in reads)
    forgetful = planted.agent_from_state(
        planted.posterior_ignores_deter(planted.reference_state(agent)), agent
    )
    own = run_rollouts(forgetful, "freeway", episodes=3, steps=12, seed=9)
    ignores = memory_spearmans(
        forgetful, own, own.valid.bool(), CONFIG.layout, CONFIG.nmf(), _reference(own), [0, 1]
    )
    assert ignores == pytest.approx([1.0, 1.0])


def test_the_seeds_are_summarised_by_their_largest_mean_and_spread() -> None:
    metrics = PosteriorSanity((0.1, 0.3, 0.2), (0.5, 0.7)).metrics()
    assert metrics["sanity_posterior_max_abs"] == pytest.approx(0.3)
    assert metrics["sanity_posterior_mean_abs"] == pytest.approx(0.2)
    assert metrics["sanity_posterior_std"] == pytest.approx(math.sqrt(2 / 300))
    assert (metrics["memory_max_abs"], metrics["memory_mean_abs"]) == pytest.approx((0.7, 0.6))
    assert all(math.isnan(v) for v in PosteriorSanity().metrics().values())


def test_a_first_value_given_is_not_recomputed(agent: DreamerAgent, trajectory: Trajectory) -> None:
    valid = trajectory.valid.bool()
    seeds = [7, 8, 9]
    replays = randomized_replays(agent, trajectory, seeds)
    args = (agent, trajectory, valid, CONFIG.layout, CONFIG.nmf(), _reference(trajectory), replays)
    every = measure_posterior_sanity(*args, memory_seeds=[0])
    # the replays were consumed (their logits turned into probabilities in place): replay again
    again = randomized_replays(agent, trajectory, seeds)
    assert not torch.allclose(replays[1].posterior_logits, again[1].posterior_logits)
    torch.testing.assert_close(
        replays[1].posterior_logits.sum(dim=-1), torch.ones(again[1].posterior_logits.shape[:-1])
    )
    rest = (*args[:-1], again[1:])  # the first seed's replay was scored by the caller
    given = measure_posterior_sanity(*rest, first=-0.5, memory_seeds=[0])
    assert len(every.randomized) == len(given.randomized) == 3
    assert given.randomized[0] == 0.5  # |rho| of the value given
    assert given.randomized[1:] == pytest.approx(every.randomized[1:])
    assert given.memory == pytest.approx(every.memory)
