"""The planted models (``pytest_dreamer_audit.planted``): reference format in and out, the input
untouched, and each edit doing exactly what its name says on the networks' outputs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from pytest_dreamer_audit import planted as P
from pytest_dreamer_audit.analysis.randomization import LAYERS, permute_parameters
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import DreamerAgent, LatentState
from pytest_dreamer_audit.model.checkpoint import load_checkpoint, save_checkpoint
from pytest_dreamer_audit.testing import tiny_agent

CLASSES = 5  # tiny_sizes: 4 categoricals x 5 classes, deter 16


@pytest.fixture(scope="module")
def agent() -> DreamerAgent:
    return tiny_agent(seed=3)


def _states(agent: DreamerAgent, n: int = 32, seed: int = 0) -> LatentState:
    """Random one-hot latent states of the agent's sizes."""
    s = agent.sizes
    generator = torch.Generator().manual_seed(seed)
    classes = torch.randint(0, s.classes, (n, s.categoricals), generator=generator)
    stoch = torch.nn.functional.one_hot(classes, s.classes).float()
    return LatentState(stoch, stoch, torch.randn(n, s.deter, generator=generator))


def _policy(agent: DreamerAgent, state: LatentState) -> torch.Tensor:
    with torch.no_grad():
        return agent.policy_logits(state)


def test_a_planted_state_is_in_the_reference_format_and_leaves_its_input_alone(
    agent: DreamerAgent, tmp_path: Path
) -> None:
    state = P.reference_state(agent)
    before = {k: {n: t.clone() for n, t in m.items()} for k, m in state.items()}
    planted = P.actor_blind_to_latent(P.posterior_ignores_deter(state))
    assert set(planted) == set(state)
    for key, module in state.items():
        assert set(planted[key]) == set(module)
        for name, tensor in module.items():
            assert planted[key][name].shape == tensor.shape
            assert torch.equal(tensor, before[key][name])  # the input is not modified
    # It is a checkpoint: written in the reference format, it loads back with the same weights.
    path = save_checkpoint(P.agent_from_state(planted, agent), tmp_path / "p.pth", native=False)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == set(state)
    loaded = load_checkpoint(path, categoricals=4, classes=CLASSES)
    for key, module in P.reference_state(loaded).items():
        for name, tensor in module.items():
            assert torch.equal(tensor, planted[key][name]), (key, name)


def test_the_permuted_actor_keeps_each_tensor_s_values_in_a_seeded_order(
    agent: DreamerAgent,
) -> None:
    state = P.reference_state(agent)
    planted = P.permute_actor(state, seed=7)
    for name, tensor in state["ActionModel"].items():
        new = planted["ActionModel"][name]
        assert torch.equal(new.flatten().sort().values, tensor.flatten().sort().values)
        if tensor.numel() > 3:
            assert not torch.equal(new, tensor), name
    assert all(torch.equal(planted["RSSM"][n], t) for n, t in state["RSSM"].items())
    again = P.permute_actor(state, seed=7)
    assert all(torch.equal(again["ActionModel"][n], t) for n, t in planted["ActionModel"].items())
    other = P.permute_actor(state, seed=8)
    assert not torch.equal(
        other["ActionModel"]["model.0.weight"], planted["ActionModel"]["model.0.weight"]
    )


def test_an_actor_that_reads_only_some_categoricals_ignores_everything_else(
    agent: DreamerAgent,
) -> None:
    planted = P.agent_from_state(
        P.actor_reads_only(P.reference_state(agent), [1, 3], classes=CLASSES), agent
    )
    state = _states(agent)
    base = _policy(planted, state)
    changed_stoch = state.stoch.clone()
    changed_stoch[:, [0, 2]] = changed_stoch[:, [0, 2]].roll(1, dims=-1)  # other classes
    ignored = LatentState(changed_stoch, changed_stoch, torch.randn_like(state.deter))
    torch.testing.assert_close(_policy(planted, ignored), base)
    read = state.stoch.clone()
    read[:, 3] = read[:, 3].roll(1, dims=-1)
    assert not torch.allclose(_policy(planted, LatentState(read, read, state.deter)), base)
    with pytest.raises(ConfigError, match=r"categoricals \[4\] do not exist; there are 4"):
        P.actor_reads_only(P.reference_state(agent), [4], classes=CLASSES)
    with pytest.raises(ConfigError, match="not a multiple of 3 classes"):
        P.actor_reads_only(P.reference_state(agent), [0], classes=3)


def test_the_least_surprising_categoricals_are_those_of_lowest_mean_surprise() -> None:
    surprise = torch.tensor(
        [[[3.0, 0.1, 2.0, 0.0]], [[1.0, 0.3, 9.0, 0.0]], [[0.0, 0.0, 0.0, 5.0]]]
    )
    valid = torch.tensor(
        [[True], [True], [False]]
    )  # the last step (where 3 is surprising) is padding
    assert P.least_surprising(surprise, valid, 2) == [3, 1]


def test_an_actor_blind_to_the_latent_and_a_reward_head_reading_one_categorical(
    agent: DreamerAgent,
) -> None:
    state = P.reference_state(agent)
    blind = P.agent_from_state(P.actor_blind_to_latent(state), agent)
    states = _states(agent)
    other = _states(agent, seed=1)
    swapped = LatentState(other.stoch, other.stoch, states.deter)
    torch.testing.assert_close(_policy(blind, swapped), _policy(blind, states))
    assert not torch.allclose(_policy(agent, swapped), _policy(agent, states))
    reward = P.agent_from_state(P.reward_reads_one(state, 2, classes=CLASSES), agent)
    assert reward.reward_decoder is not None
    mixed = states.stoch.clone()
    mixed[:, 2] = other.stoch[:, 2]
    with torch.no_grad():
        head = reward.reward_decoder
        same = head(LatentState(mixed, mixed, other.deter).model_state)
        torch.testing.assert_close(same, head(swapped._replace(deter=other.deter).model_state))
        assert not torch.allclose(same, head(states.model_state))


def test_posterior_is_prior_computes_the_prior_exactly(agent: DreamerAgent) -> None:
    planted = P.agent_from_state(P.posterior_is_prior(P.reference_state(agent)), agent)
    generator = torch.Generator().manual_seed(0)
    deter = torch.randn(16, agent.sizes.deter, generator=generator)
    embedding = torch.randn(16, agent.sizes.embedding, generator=generator)
    with torch.no_grad():
        posterior = planted.posterior(deter, embedding).logits
        prior = planted.rssm.fc_prior(deter).reshape(posterior.shape)
        torch.testing.assert_close(posterior, prior, rtol=0, atol=1e-6)
        assert not torch.allclose(agent.posterior(deter, embedding).logits, prior, atol=1e-3)


def test_a_posterior_that_ignores_the_deterministic_state(agent: DreamerAgent) -> None:
    planted = P.agent_from_state(P.posterior_ignores_deter(P.reference_state(agent)), agent)
    generator = torch.Generator().manual_seed(0)
    embedding = torch.randn(8, agent.sizes.embedding, generator=generator)
    one, two = (torch.randn(8, agent.sizes.deter, generator=generator) for _ in range(2))
    with torch.no_grad():
        torch.testing.assert_close(
            planted.posterior(one, embedding).logits, planted.posterior(two, embedding).logits
        )
        assert not torch.allclose(
            agent.posterior(one, embedding).logits, agent.posterior(two, embedding).logits
        )


def test_the_untrained_network_is_fresh_at_the_same_sizes_and_pytorch_s_scale(
    agent: DreamerAgent,
) -> None:
    state = P.reference_state(agent)
    fresh = P.untrained(state, seed=1)
    linear = fresh["RSSM"]["fc_posterior.0.weight"]
    bound = 1 / math.sqrt(linear.shape[1])
    assert linear.abs().max() <= bound
    assert linear.abs().max() > 0.8 * bound  # uniform over the whole range
    gru = fresh["RSSM"]["rnn.weight_ih"]
    assert gru.abs().max() <= 1 / math.sqrt(agent.sizes.deter)
    deconv = fresh["ObsDecoder"]["decoder.0.weight"]  # [in, out, 3, 3]: fan-in out * 9
    assert (
        0.8 / math.sqrt(deconv.shape[1] * 9)
        < deconv.abs().max()
        <= 1 / math.sqrt(deconv.shape[1] * 9)
    )
    # the same scale as PyTorch's own init of that layer
    reference = torch.nn.ConvTranspose2d(*deconv.shape[:2], 3).weight
    assert reference.abs().max() <= 1 / math.sqrt(deconv.shape[1] * 9)
    for key, module in state.items():
        for name, tensor in module.items():
            assert fresh[key][name].shape == tensor.shape
            assert not torch.equal(fresh[key][name], tensor), (key, name)
    again = P.untrained(state, seed=1)
    assert all(torch.equal(again["RSSM"][n], t) for n, t in fresh["RSSM"].items())


def test_the_screen_reading_double_survives_any_randomization(agent: DreamerAgent) -> None:
    double = P.ScreenReadingAgent.from_agent(agent)
    obs = torch.zeros(3, agent.sizes.channels, 10, 10)
    obs[torch.arange(3), 0, torch.tensor([2, 5, 9]), 4] = 1.0  # the chicken's rows
    deter = torch.randn(3, agent.sizes.deter)
    randomized = permute_parameters(double, tuple(range(len(LAYERS))), seed=1)
    with torch.no_grad():
        logits = double.posterior(deter, double.encode(obs)).logits
        again = randomized.posterior(torch.randn(3, agent.sizes.deter), randomized.encode(obs))
    torch.testing.assert_close(logits, again.logits)
    # each categorical peaks at the row plus its index, modulo the classes
    assert logits.argmax(-1).tolist()[0] == [(2 + c) % CLASSES for c in range(4)]
