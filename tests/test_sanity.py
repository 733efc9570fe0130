"""The posterior sanity checks (``analysis/sanity.py``): the batched replay equals one replay
per variant, the memory check tells a posterior that reads its memory from one that does not,
and the seeds' summary."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_dreamer_audit import planted
from pytest_dreamer_audit.analysis.factorize import fit_nmf, flatten_posteriors
from pytest_dreamer_audit.analysis.randomization import LAYERS, permuted_tensors
from pytest_dreamer_audit.analysis.sanity import (
    PosteriorSanity,
    activation_observation_scores,
    measure_posterior_sanity,
    memory_spearmans,
    randomized_replays,
    replay_bytes,
    stacked_replays,
    streamed_replays,
)
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import Trajectory, replay_posteriors, run_rollouts
from pytest_dreamer_audit.testing import tiny_agent

CONFIG = ExplainConfig(rank=3)


@pytest.fixture(scope="module")
def agent() -> DreamerAgent:
    return tiny_agent(seed=5)


@pytest.fixture(scope="module")
def trajectory(agent: DreamerAgent) -> Trajectory:
    return run_rollouts(agent, "freeway", episodes=3, steps=12, seed=9)


def _reference(trajectory: Trajectory) -> torch.Tensor:
    valid = trajectory.valid.bool()
    rows = flatten_posteriors(trajectory.posterior_probs, valid, CONFIG.layout)
    return activation_observation_scores(rows, fit_nmf(rows.matrix, CONFIG.nmf()))


def test_the_batched_replay_is_one_replay_per_variant(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    everything = tuple(range(len(LAYERS)))
    variants = [{}, permuted_tensors(agent, everything, 3), permuted_tensors(agent, (0, 5), 4)]
    batched = stacked_replays(agent, variants, trajectory)
    assert len(batched) == 3
    # the agent's own weights reproduce its rollout
    torch.testing.assert_close(batched[0].posterior_logits, trajectory.posterior_logits)
    torch.testing.assert_close(batched[0].prior_logits, trajectory.prior_logits)
    torch.testing.assert_close(batched[0].deter, trajectory.deter)
    for variant, replay in zip(variants[1:], batched[1:], strict=True):
        clone = planted.agent_from_state(planted.reference_state(agent), agent)
        clone.load_state_dict(variant, strict=False)
        one = replay_posteriors(clone, trajectory)
        for name in ("prior_logits", "posterior_logits", "stoch", "deter"):
            torch.testing.assert_close(getattr(replay, name), getattr(one, name))
        assert not torch.allclose(replay.posterior_logits, trajectory.posterior_logits)


@pytest.mark.parametrize("per_chunk", [1, 2, 3])
def test_streamed_replays_are_the_stacked_ones_a_chunk_at_a_time(
    agent: DreamerAgent, trajectory: Trajectory, per_chunk: int
) -> None:
    seeds = [4, 5, 6]
    whole = randomized_replays(agent, trajectory, seeds)
    chunk_bytes = per_chunk * replay_bytes(agent, trajectory)
    streamed = list(streamed_replays(agent, trajectory, seeds, chunk_bytes))
    assert len(streamed) == len(whole)
    for one, other in zip(streamed, whole, strict=True):
        for name in ("prior_logits", "posterior_logits", "stoch", "deter"):
            torch.testing.assert_close(getattr(one, name), getattr(other, name))


def test_a_test_double_is_replayed_with_its_own_forward_pass(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    double = planted.ScreenReadingAgent.from_agent(agent)
    replays = randomized_replays(double, trajectory, [1, 2])
    own = replay_posteriors(double, trajectory)
    for replay in replays:  # its posterior ignores every weight
        torch.testing.assert_close(replay.posterior_logits, own.posterior_logits)


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
    replays = randomized_replays(agent, trajectory, [7, 8, 9])
    args = (agent, trajectory, valid, CONFIG.layout, CONFIG.nmf(), _reference(trajectory), replays)
    every = measure_posterior_sanity(*args, memory_seeds=[0])
    rest = (*args[:-1], replays[1:])  # the first seed's replay was scored by the caller
    given = measure_posterior_sanity(*rest, first=-0.5, memory_seeds=[0])
    assert len(every.randomized) == len(given.randomized) == 3
    assert given.randomized[0] == 0.5  # |rho| of the value given
    assert given.randomized[1:] == pytest.approx(every.randomized[1:])
    assert given.memory == pytest.approx(every.memory)
