from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pytest_dreamer_audit.errors import ConfigError, SavedDataError
from pytest_dreamer_audit.model.agent import AgentMetadata, DreamerAgent
from pytest_dreamer_audit.rollout.rollouts import (
    Trajectory,
    episode_seeds,
    load_trajectory,
    replay_posteriors,
    run_rollouts,
    save_trajectory,
)
from pytest_dreamer_audit.testing import tiny_agent


def _assert_same(a: Trajectory, b: Trajectory, *, exact: bool) -> None:
    for name, tensor in a.tensors().items():
        other = b.tensors()[name]
        if exact or not tensor.is_floating_point():
            assert torch.equal(tensor, other), name
        else:
            torch.testing.assert_close(tensor, other, atol=1e-5, rtol=1e-5, msg=name)


def test_trajectory_fields_are_time_major_with_documented_shapes(
    freeway_agent: DreamerAgent,
) -> None:
    t = run_rollouts(freeway_agent, "freeway", episodes=3, steps=7, seed=2)
    assert (t.steps, t.episodes, t.seeds) == (7, 3, (2, 3, 4))
    assert t.observations.shape == (7, 3, 2, 10, 10)
    assert t.observations.dtype == torch.bool
    for logits in (t.prior_logits, t.posterior_logits, t.stoch):
        assert logits.shape == (7, 3, 4, 5)
    assert t.deter.shape == (7, 3, 16)
    assert t.actions.shape == t.rewards.shape == t.terminals.shape == t.valid.shape == (7, 3)
    assert t.facts.shape == (7, 3, len(t.fact_names))
    assert bool(t.valid.all())
    assert (t.stoch_classes.shape, t.stoch_classes.dtype) == ((7, 3, 4), torch.int64)
    assert torch.equal(t.stoch.argmax(-1), t.stoch_classes)
    assert torch.equal(t.stoch.sum(-1), torch.ones(7, 3, 4))  # one-hot: exactly one 1 each
    torch.testing.assert_close(t.posterior_probs.sum(-1), torch.ones(7, 3, 4))
    # The first observation is the reset frame: chicken at the start row, in column 4.
    assert t.fact("chicken_row")[0].tolist() == [9, 9, 9]
    assert bool(t.observations[0, :, 0, 9, 4].all())


def test_rollout_matches_a_manual_step_by_step_replay(freeway_agent: DreamerAgent) -> None:
    """The recorded latents are exactly what observe() gives on the recorded observations."""
    t = run_rollouts(freeway_agent, "freeway", episodes=2, steps=5, greedy=True)
    state = freeway_agent.initial_state(2)
    action = torch.zeros(2, 3)
    with torch.no_grad():
        for step in range(5):
            prior, post = freeway_agent.observe(state, t.observations[step].float(), action)
            assert torch.equal(prior.logits, t.prior_logits[step])
            assert torch.equal(post.logits, t.posterior_logits[step])
            post = post._replace(stoch=t.stoch[step])
            assert torch.equal(freeway_agent.act(post, greedy=True), t.actions[step])
            state, action = post, freeway_agent.one_hot_actions(t.actions[step])


def test_same_seed_is_bit_identical_and_other_seeds_differ(freeway_agent: DreamerAgent) -> None:
    a = run_rollouts(freeway_agent, "freeway", episodes=3, steps=20, seed=9)
    b = run_rollouts(freeway_agent, "freeway", episodes=3, steps=20, seed=9)
    c = run_rollouts(freeway_agent, "freeway", episodes=3, steps=20, seed=10)
    _assert_same(a, b, exact=True)
    assert not torch.equal(a.observations, c.observations)


def test_batch_invariance_four_at_once_equals_four_single_runs(freeway_agent: DreamerAgent) -> None:
    batched = run_rollouts(freeway_agent, "freeway", episodes=4, steps=25, seed=40)
    for b in range(4):
        single = run_rollouts(freeway_agent, "freeway", episodes=1, steps=25, seed=40 + b)
        sliced = {name: tensor[:, b : b + 1] for name, tensor in batched.tensors().items()}
        for name, tensor in single.tensors().items():
            if tensor.is_floating_point():
                torch.testing.assert_close(tensor, sliced[name], atol=1e-5, rtol=1e-5, msg=name)
            else:
                assert torch.equal(tensor, sliced[name]), name


def test_episodes_that_end_early_are_masked() -> None:
    # A random Breakout agent loses its only life within a few dozen frames.
    agent = tiny_agent("breakout", pomdp=True, seed=0)
    t = run_rollouts(agent, "breakout", episodes=6, steps=300, seed=0)
    ended = t.terminals.any(dim=0)
    assert bool(ended.all())
    for b in range(6):
        end = int(torch.nonzero(t.terminals[:, b])[0])
        assert bool(t.valid[: end + 1, b].all())
        assert not bool(t.valid[end + 1 :, b].any())
        assert float(t.rewards[end + 1 :, b].abs().sum()) == 0.0
        assert not bool(t.observations[end + 1 :, b].any())
    torch.testing.assert_close(t.returns, (t.rewards * t.valid).sum(0))


def test_game_and_pomdp_come_from_native_metadata() -> None:
    agent = tiny_agent("asterix", pomdp=False)
    t = run_rollouts(agent, episodes=1, steps=2)
    assert (t.game, t.pomdp, t.observations.shape[2]) == ("asterix", False, 4)


def test_mismatched_game_and_agent_are_explained() -> None:
    agent = tiny_agent("freeway", pomdp=True)
    with pytest.raises(ConfigError, match=r"takes 2 observation channels.*has 7; pass pomdp=True"):
        run_rollouts(agent, "freeway", pomdp=False, episodes=1, steps=1)
    with pytest.raises(ConfigError, match="has 3 actions, but seaquest's minimal action set has 6"):
        run_rollouts(tiny_agent("freeway", pomdp=True, channels=9), "seaquest", episodes=1, steps=1)
    bare = tiny_agent()
    bare.metadata = AgentMetadata()
    with pytest.raises(ConfigError, match="the agent records no game"):
        run_rollouts(bare, episodes=1, steps=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"episodes": 0, "steps": 5}, "episodes must be at least 1"),
        ({"episodes": 2, "steps": 0}, "steps must be at least 1"),
        (
            {"episodes": 2, "steps": 1, "seed": -3},
            r"episode seeds run from -3 to -2, outside MinAtar.s \[0, 4294967295\]; use a seed from 0",
        ),
        ({"episodes": 2, "steps": 1, "seeds": [1]}, "got 1 seeds for 2 episodes"),
    ],
)
def test_bad_rollout_arguments(
    freeway_agent: DreamerAgent, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_rollouts(freeway_agent, "freeway", **kwargs)  # type: ignore[arg-type]


def test_explicit_seeds_and_the_default_seed_list(freeway_agent: DreamerAgent) -> None:
    assert episode_seeds(5, 3) == [5, 6, 7]
    a = run_rollouts(freeway_agent, "freeway", episodes=2, steps=4, seeds=[7, 5])
    b = run_rollouts(freeway_agent, "freeway", episodes=2, steps=4, seed=5)
    assert torch.equal(a.observations[:, 1], b.observations[:, 0])


def test_unknown_fact_lists_the_recorded_ones(freeway_agent: DreamerAgent) -> None:
    t = run_rollouts(freeway_agent, "freeway", episodes=1, steps=1)
    with pytest.raises(ConfigError, match="records no fact 'lives'; it records chicken_row"):
        t.fact("lives")


def test_rollouts_run_under_inference_mode_and_leave_the_agent_untouched(
    freeway_agent: DreamerAgent,
) -> None:
    before = {k: v.clone() for k, v in freeway_agent.state_dict().items()}
    t = run_rollouts(freeway_agent, "freeway", episodes=2, steps=3, device="cpu")
    assert t.posterior_logits.is_inference()
    assert all(torch.equal(v, freeway_agent.state_dict()[k]) for k, v in before.items())


@pytest.mark.gpu
def test_cuda_rollout_matches_cpu(freeway_agent: DreamerAgent) -> None:
    cpu = run_rollouts(freeway_agent, "freeway", episodes=8, steps=30, seed=1, greedy=True)
    gpu = run_rollouts(
        freeway_agent, "freeway", episodes=8, steps=30, seed=1, greedy=True, device="cuda"
    )
    assert gpu.posterior_logits.device.type == "cuda"
    assert freeway_agent.device.type == "cpu"
    _assert_same(cpu, gpu.to("cpu"), exact=False)


def test_replaying_a_trajectory_with_its_agent_reproduces_its_latents() -> None:
    """The replay encodes all observations in one batch; the recurrence and the noise are the
    rollout's, so the latents come back as recorded (and another agent's differ)."""
    agent = tiny_agent(seed=3)
    trajectory = run_rollouts(agent, "freeway", episodes=3, steps=9, seed=4)
    replayed = replay_posteriors(agent, trajectory)
    valid = trajectory.valid.bool()
    for name in ("posterior_logits", "prior_logits", "stoch", "deter"):
        recorded = getattr(trajectory, name)[valid]
        torch.testing.assert_close(getattr(replayed, name)[valid], recorded, rtol=0, atol=1e-6)
    other = replay_posteriors(tiny_agent(seed=5), trajectory)
    assert float((other.posterior_logits - trajectory.posterior_logits)[valid].abs().max()) > 0.1


def test_a_saved_trajectory_loads_back_bit_identical(
    freeway_agent: DreamerAgent, tmp_path: Path
) -> None:
    t = run_rollouts(freeway_agent, "freeway", episodes=2, steps=6, seed=3)
    loaded = load_trajectory(save_trajectory(t, tmp_path / "t.pt"))
    _assert_same(t, loaded, exact=True)
    assert (loaded.game, loaded.seeds, loaded.fact_names) == (t.game, t.seeds, t.fact_names)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda tensors: tensors["stoch_classes"].fill_(5), "stoch_classes outside the 5 classes"),
        (lambda tensors: tensors["stoch_classes"][0, 0].fill_(-1), "outside the 5 classes"),
        (
            lambda tensors: tensors.update(stoch_classes=tensors["stoch_classes"].int()),
            "stoch_classes is torch.int32 (6, 2, 4), expected torch.int64 (6, 2, 4)",
        ),
        (  # the one-hot samples of the earlier format: refused by name, not misread
            lambda tensors: tensors.update(stoch=tensors.pop("stoch_classes")),
            "['stoch', 'stoch_classes'] missing or unexpected",
        ),
    ],
)
def test_a_trajectory_file_with_impossible_samples_is_refused(
    freeway_agent: DreamerAgent,
    tmp_path: Path,
    change: Callable[[dict[str, torch.Tensor]], object],
    problem: str,
) -> None:
    path = save_trajectory(
        run_rollouts(freeway_agent, "freeway", episodes=2, steps=6), tmp_path / "t.pt"
    )
    payload = torch.load(path, weights_only=True)
    change(payload["tensors"])
    torch.save(payload, path)
    with pytest.raises(SavedDataError, match="not a readable trajectory") as caught:
        load_trajectory(path)
    assert problem in str(caught.value)
