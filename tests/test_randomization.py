"""Model parameter randomization: permutations that keep each tensor's values, the cascading and
independent stages, the scale matching, and a planted model whose explanation survives
randomization (the sanity checks must fail it: ``planted.ScreenReadingAgent``)."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.analysis.randomization import (
    LAYERS,
    _spread,
    match_scale,
    mean_entropy,
    permute_parameters,
    softmax_,
    stages,
)
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.planted import ScreenReadingAgent
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


def test_a_permuted_layer_keeps_its_values_and_nothing_else_changes() -> None:
    agent = tiny_agent(seed=0)
    before = {name: p.detach().clone() for name, p in agent.named_parameters()}
    permuted = dict(permute_parameters(agent, [0, 7], seed=1).named_parameters())
    prefixes = (LAYERS[0][1] + ".", LAYERS[7][1] + ".")
    touched = [name for name in before if name.startswith(prefixes)]
    assert touched  # the posterior head and the first convolution
    for name, value in before.items():
        torch.testing.assert_close(dict(agent.named_parameters())[name], value)  # original
        if name in touched:
            assert not torch.equal(permuted[name], value)
            torch.testing.assert_close(
                permuted[name].flatten().sort().values, value.flatten().sort().values
            )
        else:
            torch.testing.assert_close(permuted[name], value)
    again = dict(permute_parameters(agent, [0, 7], seed=1).named_parameters())
    assert all(torch.equal(again[name], permuted[name]) for name in touched)  # seeded


def test_the_stages_cascade_from_the_top_and_then_go_one_at_a_time() -> None:
    assert stages("full") == [("full", "all layers", tuple(range(8)))]
    cascade = stages("cascade")
    assert [s[0] for s in cascade] == ["cascade"] * 8 + ["independent"] * 8
    assert [s[2] for s in cascade[:8]] == [tuple(range(i + 1)) for i in range(8)]
    assert [s[2] for s in cascade[8:]] == [(i,) for i in range(8)]
    assert cascade[0][1] == "down to posterior head"
    assert cascade[-1][1] == "encoder conv 1"
    with pytest.raises(ConfigError, match="unknown randomization 'all'; choose from full, cascade"):
        stages("all")


def test_scale_matching_restores_the_trained_spread() -> None:
    valid = torch.tensor([[True, False]])
    trained = torch.tensor([[[[0.0, 4.0]], [[0.0, 100.0]]]])  # [1, 2, 1, 2]; one padding step
    flat = torch.tensor([[[[0.0, 0.1]], [[5.0, -5.0]]]])
    scaled = match_scale(flat, trained, valid)
    assert scaled[0, 0].std(dim=-1).item() == pytest.approx(trained[0, 0].std(dim=-1).item())
    assert mean_entropy(scaled, valid) == pytest.approx(mean_entropy(trained, valid))
    assert mean_entropy(flat, valid) == pytest.approx(math.log(2), abs=0.01)
    uniform = torch.zeros_like(flat)
    assert torch.equal(match_scale(uniform, trained, valid), uniform)


def test_the_spread_is_the_mean_class_standard_deviation_at_the_valid_steps() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, 4, 5, generator=generator) * torch.arange(1, 7)[:, None, None, None]
    valid = torch.rand(6, 3, generator=generator) > 0.4
    expected = logits.std(dim=-1)[valid].mean()  # torch's Bessel-corrected std
    torch.testing.assert_close(_spread(logits, valid), expected)
    assert float(_spread(logits, ~valid)) != pytest.approx(float(expected), rel=1e-3)


def test_an_explanation_that_survives_randomization_fails_the_sanity_check() -> None:
    base = tiny_agent(seed=4)
    planted = ScreenReadingAgent.from_agent(base)
    trajectory = run_rollouts(planted, "freeway", episodes=4, steps=20, seed=2)
    config = ExplainConfig(rank=3, top_k=3, stability_refits=0, score="activation")
    e = explain(trajectory, config, agent=planted)
    assert e.metrics.sanity_spearman == pytest.approx(1.0)
    with pytest.raises(AssertionError, match=r"at Spearman 1\.000, above the allowed 0\.250"):
        A.assert_differs_from_random_weights(e, max_spearman=0.25)
    # The trained-agent side of the same check: a real network's explanation changes.
    normal = explain(
        run_rollouts(base, "freeway", episodes=4, steps=20, seed=2), config, agent=base
    )
    assert normal.metrics.sanity_spearman < 0.9
    # As peaked as the trained posteriors (here both near uniform: the tiny agent is untrained).
    m = normal.metrics
    assert m.sanity_entropy == pytest.approx(m.posterior_entropy, abs=0.05)


def test_the_posterior_sanity_checks_fail_the_screen_reader_under_every_score() -> None:
    """The surprise score contains the prior, which randomization moves, so the first sanity
    check passed this double under the default score; the posterior-only checks compare
    activation scores, which no prior enters, over several seeds."""
    planted = ScreenReadingAgent.from_agent(tiny_agent(seed=4))
    trajectory = run_rollouts(planted, "freeway", episodes=4, steps=20, seed=2)
    for score in ("surprise", "activation", "reconstruction"):
        config = ExplainConfig(rank=3, top_k=3, stability_refits=0, score=score)
        m = explain(trajectory, config, agent=planted).metrics
        assert m.sanity_posterior_max_abs == pytest.approx(1.0), score
        assert m.sanity_posterior_mean_abs == pytest.approx(1.0), score
        assert m.sanity_posterior_std == pytest.approx(0.0, abs=1e-9), score
        assert m.memory_max_abs == pytest.approx(1.0), score
        assert m.memory_mean_abs == pytest.approx(1.0), score


def test_the_cascade_reports_every_stage_with_its_entropy() -> None:
    agent = tiny_agent(seed=5)
    trajectory = run_rollouts(agent, "freeway", episodes=3, steps=10, seed=0)
    e = explain(
        trajectory, ExplainConfig(rank=3, stability_refits=0, randomization="cascade"), agent=agent
    )
    assert [s.kind for s in e.randomization] == ["full"] + ["cascade"] * 8 + ["independent"] * 8
    full, last_cascade = e.randomization[0], e.randomization[8]
    # The full stage and the deepest cascade stage randomize the same layers the same way (the
    # full stage's replay is batched with the posterior sanity check's: equal to float rounding).
    assert full.observation_spearman == pytest.approx(last_cascade.observation_spearman, abs=1e-3)
    assert full.entropy == pytest.approx(last_cascade.entropy, abs=1e-5)
    assert all(0 <= s.entropy <= math.log(agent.sizes.classes) + 1e-6 for s in e.randomization)
    assert e.metrics.sanity_spearman == full.observation_spearman
    default = explain(trajectory, ExplainConfig(rank=3, stability_refits=0), agent=agent)
    assert [s.kind for s in default.randomization] == ["full"]


def test_scaling_and_softmax_in_place_give_the_same_numbers() -> None:
    generator = torch.Generator().manual_seed(3)
    trained = torch.randn(7, 3, 4, 5, generator=generator) * 3
    randomized = torch.randn(7, 3, 4, 5, generator=generator) * 0.2
    valid = torch.ones(7, 3, dtype=torch.bool)
    valid[5:, 1] = False
    copy = match_scale(randomized, trained, valid)
    own = randomized.clone()
    scaled = match_scale(own, trained, valid, in_place=True)
    assert scaled is own
    assert torch.equal(scaled, copy)
    assert float(_spread(scaled, valid)) == pytest.approx(float(_spread(trained, valid)))
    expected = torch.softmax(copy, dim=-1)
    assert softmax_(scaled) is own
    assert torch.equal(own, expected)
    flat = torch.zeros(2, 1, 1, 4)  # flat logits stay as they are, in place or not
    assert match_scale(flat, trained[:2, :1, :1, :4], valid[:2, :1], in_place=True) is flat
