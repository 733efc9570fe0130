from __future__ import annotations

import pytest
import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import DreamerAgent, LatentState, build_agent
from pytest_dreamer_audit.model.networks import ModelSizes
from pytest_dreamer_audit.model.sampling import NoiseKeys
from pytest_dreamer_audit.testing import tiny_agent

from . import reference_dreamer as ref


def _state_dicts(agent: DreamerAgent) -> ref.StateDicts:
    return {key: dict(module.state_dict()) for key, module in agent.present_modules().items()}


def test_initial_state_is_zero_with_contract_shapes(freeway_agent: DreamerAgent) -> None:
    state = freeway_agent.initial_state(3)
    assert state.logits.shape == (3, 4, 5)
    assert state.stoch.shape == (3, 4, 5)
    assert state.deter.shape == (3, 16)
    assert all(float(t.abs().sum()) == 0.0 for t in state)


@pytest.mark.parametrize("full_size", [False, True], ids=["tiny", "reference-sizes"])
def test_observe_matches_reference_forward_over_a_sequence(full_size: bool) -> None:
    agent = (
        build_agent(ModelSizes(channels=2, actions=3), seed=1) if full_size else tiny_agent(seed=1)
    )
    sd = _state_dicts(agent)
    batch, sizes = 5, agent.sizes
    generator = torch.Generator().manual_seed(0)
    state = agent.initial_state(batch)
    ref_stoch = torch.zeros(batch, sizes.stoch)
    ref_deter = torch.zeros(batch, sizes.deter)
    action = torch.zeros(batch, sizes.actions)
    for t in range(6):
        obs = (torch.rand(batch, sizes.channels, 10, 10, generator=generator) < 0.1).float()
        nonterm = torch.tensor([1.0, 1.0, 0.0 if t == 3 else 1.0, 1.0, 1.0])
        with torch.no_grad():
            prior, post = agent.observe(state, obs, action, nonterm)
            deter, prior_logit, post_logit = ref.rssm_step(
                sd, ref_stoch, ref_deter, action, ref.encode(sd, obs), nonterm[:, None]
            )
            policy = agent.policy_logits(post)
            ref_policy = ref.actor_logits(sd, deter, post.stoch.flatten(1))
        torch.testing.assert_close(post.deter, deter, atol=1e-5, rtol=0)
        torch.testing.assert_close(prior.logits.flatten(1), prior_logit, atol=1e-5, rtol=0)
        torch.testing.assert_close(post.logits.flatten(1), post_logit, atol=1e-5, rtol=0)
        torch.testing.assert_close(policy, ref_policy, atol=1e-5, rtol=0)
        # The sampled stoch is one-hot per categorical; feed the same one to the reference.
        assert torch.equal(post.stoch.sum(-1), torch.ones(batch, sizes.categoricals))
        state, ref_stoch, ref_deter = post, post.stoch.flatten(1), deter
        action = agent.one_hot_actions(torch.arange(batch) % sizes.actions)


def test_nonterminal_zero_resets_the_recurrent_inputs(freeway_agent: DreamerAgent) -> None:
    obs = torch.ones(2, 2, 10, 10)
    action = freeway_agent.one_hot_actions(torch.tensor([1, 1]))
    start = freeway_agent.initial_state(2)
    with torch.no_grad():
        _, busy = freeway_agent.observe(start, obs, action)
        _, reset = freeway_agent.observe(busy, obs, action, torch.tensor([0.0, 1.0]))
        _, fresh = freeway_agent.observe(start, obs, action)
    torch.testing.assert_close(reset.deter[0], fresh.deter[0])
    assert not torch.allclose(reset.deter[1], fresh.deter[1])


def test_greedy_act_is_argmax_and_sampling_is_seeded(freeway_agent: DreamerAgent) -> None:
    generator = torch.Generator().manual_seed(5)
    state = LatentState(
        torch.randn(64, 4, 5, generator=generator),
        torch.nn.functional.one_hot(torch.randint(5, (64, 4), generator=generator), 5).float(),
        torch.randn(64, 16, generator=generator),
    )
    with torch.no_grad():
        logits = freeway_agent.policy_logits(state)
        greedy = freeway_agent.act(state, greedy=True)
        keys = NoiseKeys.from_seeds(list(range(64)))
        first = freeway_agent.act(state, noise=keys)
        again = freeway_agent.act(state, noise=keys)
        later = freeway_agent.act(state, noise=keys.advance())
    assert torch.equal(greedy, logits.argmax(-1))
    assert torch.equal(first, again)
    assert not torch.equal(first, later)


def test_sampled_actions_follow_the_policy_distribution() -> None:
    agent = tiny_agent(seed=2)
    state = agent.initial_state(1)
    with torch.no_grad():
        probs = torch.softmax(agent.policy_logits(state), -1)[0]
        keys = NoiseKeys.from_seeds(list(range(20000)))
        tiled = LatentState(*(t.expand(20000, *t.shape[1:]) for t in state))
        counts = torch.bincount(agent.act(tiled, noise=keys), minlength=3).float() / 20000
    # Binomial standard error at n=20000 is at most 0.0036; 5 sigma.
    torch.testing.assert_close(counts, probs, atol=0.018, rtol=0)


def test_straight_through_stoch_carries_gradients(freeway_agent: DreamerAgent) -> None:
    obs = torch.rand(3, 2, 10, 10)
    action = torch.zeros(3, 3)
    _, post = freeway_agent.observe(freeway_agent.initial_state(3), obs, action)
    assert post.stoch.requires_grad
    torch.testing.assert_close(post.stoch.detach().sum(-1), torch.ones(3, 4))
    post.stoch.sum().backward()
    grad = freeway_agent.rssm.fc_posterior[2].weight.grad
    assert grad is not None


def test_unknown_head_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown modules \\['Critic'\\]"):
        DreamerAgent(ModelSizes(channels=2, actions=3), heads=frozenset({"Critic"}))


def test_build_agent_seed_is_reproducible_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_agent(ModelSizes(channels=2, actions=3, deter=8, node=8), seed=4)
    assert torch.equal(torch.rand(1), expected_next)
    b = build_agent(ModelSizes(channels=2, actions=3, deter=8, node=8), seed=4)
    assert torch.equal(a.rssm.rnn.weight_hh, b.rssm.rnn.weight_hh)


def test_arrival_value_is_reward_plus_discounted_continued_value() -> None:
    agent = tiny_agent(seed=4)
    features = torch.randn(
        3, 5, agent.sizes.model_state, generator=torch.Generator().manual_seed(0)
    )
    assert agent.reward_decoder is not None
    assert agent.discount_model is not None
    assert agent.value_model is not None
    with torch.no_grad():
        reward = agent.reward_decoder(features)[..., 0]
        alive = torch.sigmoid(agent.discount_model(features)[..., 0])
        expected = reward + 0.9 * alive * agent.value_model(features)[..., 0]
        value = agent.arrival_value(features, 0.9)
        critic = torch.nn.Linear(agent.sizes.model_state, 1)
        with_critic = agent.arrival_value(features, 0.5, critic)
        expected_critic = reward + 0.5 * alive * critic(features)[..., 0]
    assert value.shape == (3, 5)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(with_critic, expected_critic)
    assert not torch.allclose(with_critic, agent.arrival_value(features, 0.5).detach())
    torch.testing.assert_close(agent.arrival_value(features, 0.0).detach(), reward)


def test_arrival_value_needs_the_reward_and_discount_heads() -> None:
    sizes = tiny_agent().sizes
    agent = DreamerAgent(
        sizes, heads=frozenset({"RSSM", "ObsEncoder", "ActionModel", "ValueModel"})
    )
    features = torch.zeros(2, sizes.model_state)
    with pytest.raises(ConfigError, match="needs the checkpoint's RewardDecoder, DiscountModel"):
        agent.arrival_value(features, 0.99)
