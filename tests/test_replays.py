"""The randomized replays (``analysis/replays.py``): the batched replay equals one replay per
variant, the streamed replays equal the stacked ones a chunk at a time and record only what is
read (every seed's posterior logits; the first seeds' prior and, when asked, their states), and
a test double is replayed with its own forward pass."""

from __future__ import annotations

import pytest
import torch

from pytest_dreamer_audit import planted
from pytest_dreamer_audit.analysis.randomization import LAYERS, permuted_tensors
from pytest_dreamer_audit.analysis.replays import (
    ENCODE_ROWS,
    randomized_replays,
    replay_bytes,
    stacked_replays,
    streamed_replays,
)
from pytest_dreamer_audit.model.agent import DreamerAgent
from pytest_dreamer_audit.rollout.rollouts import Trajectory, replay_posteriors, run_rollouts


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


def test_replay_bytes_are_the_posterior_logits_of_one_seed(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    sizes = agent.sizes
    assert replay_bytes(agent, trajectory) == 4 * sizes.categoricals * sizes.classes * 12 * 3


@pytest.mark.parametrize("per_chunk", [1, 2, 3])
@pytest.mark.parametrize("whole", [0, 1, 2])
def test_streamed_replays_record_only_what_is_read_a_chunk_at_a_time(
    agent: DreamerAgent, trajectory: Trajectory, per_chunk: int, whole: int
) -> None:
    seeds = [4, 5, 6]
    every = randomized_replays(agent, trajectory, seeds)
    chunk_bytes = per_chunk * replay_bytes(agent, trajectory)
    streamed = list(
        streamed_replays(agent, trajectory, seeds, chunk_bytes, whole=whole, deter=whole == 2)
    )
    assert len(streamed) == len(every)
    for i, (one, other) in enumerate(zip(streamed, every, strict=True)):
        # the same numbers as the whole stacked replay, bit for bit
        assert torch.equal(one.posterior_logits, other.posterior_logits)
        if i < whole:
            assert one.prior_logits is not None
            assert torch.equal(one.prior_logits, other.prior_logits)
        else:
            assert one.prior_logits is None
        if i < whole and whole == 2:
            assert one.deter is not None
            assert torch.equal(one.deter, other.deter)
        else:
            assert one.deter is None


def test_a_test_double_is_streamed_with_what_is_read(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    double = planted.ScreenReadingAgent.from_agent(agent)
    own = replay_posteriors(double, trajectory)
    first, second = streamed_replays(double, trajectory, [1, 2], whole=1, deter=True)
    (whole,) = randomized_replays(double, trajectory, [1])
    assert first.prior_logits is not None
    assert first.deter is not None
    assert torch.equal(first.prior_logits, whole.prior_logits)
    assert torch.equal(first.deter, whole.deter)
    assert second.prior_logits is None
    assert second.deter is None
    # its posterior ignores every weight
    torch.testing.assert_close(second.posterior_logits, own.posterior_logits)


def test_the_observations_are_encoded_a_block_of_steps_at_a_time(agent: DreamerAgent) -> None:
    # more episodes than one encoder batch holds: one step per block
    many = run_rollouts(agent, "freeway", episodes=ENCODE_ROWS // 2 + 3, steps=3, seed=1)
    variants = [permuted_tensors(agent, tuple(range(len(LAYERS))), 2)]
    (batched,) = stacked_replays(agent, variants, many)
    clone = planted.agent_from_state(planted.reference_state(agent), agent)
    clone.load_state_dict(variants[0], strict=False)
    one = replay_posteriors(clone, many)
    torch.testing.assert_close(batched.posterior_logits, one.posterior_logits)
    torch.testing.assert_close(batched.prior_logits, one.prior_logits)


def test_a_test_double_is_replayed_with_its_own_forward_pass(
    agent: DreamerAgent, trajectory: Trajectory
) -> None:
    double = planted.ScreenReadingAgent.from_agent(agent)
    replays = randomized_replays(double, trajectory, [1, 2])
    own = replay_posteriors(double, trajectory)
    for replay in replays:  # its posterior ignores every weight
        torch.testing.assert_close(replay.posterior_logits, own.posterior_logits)
