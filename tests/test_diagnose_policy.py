"""Tests of ``research/diagnose_policy.py``: the open-loop errors, the hits and the lookahead,
checked against the same quantities computed directly from the trajectory."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import LatentState
from pytest_dreamer_audit.model.checkpoint import save_checkpoint
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent, write_tiny_checkpoint
from tests.research_scripts import import_research

HORIZON, STRIDE, STEPS = 3, 2, 40


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return import_research("diagnose_policy")


@pytest.fixture(scope="module")
def rolled() -> tuple[Any, Any]:
    agent = tiny_agent(seed=5).eval()
    return agent, run_rollouts(agent, episodes=3, steps=STEPS, seeds=[11, 12, 13])


def starts() -> range:
    return range(HORIZON, STEPS - HORIZON, STRIDE)


def test_the_copy_null_counts_the_car_pixels_that_changed(
    script: ModuleType, rolled: tuple[Any, Any]
) -> None:
    agent, trajectory = rolled
    result = script.open_loop(agent, trajectory, HORIZON, STRIDE)
    obs = trajectory.observations.numpy().astype(bool)
    for k in range(1, HORIZON + 1):
        changed = [
            (obs[t, b, 1] != obs[t + k, b, 1]).sum() for t in starts() for b in range(3)
        ]  # every tiny episode runs all STEPS (Freeway's episodes last 2501)
        ahead = result.ahead[k - 1]
        assert ahead.k == k
        assert ahead.frames == len(changed)
        assert ahead.car_copy == pytest.approx(np.mean(changed))
    assert result.ahead[1].car_copy > result.ahead[0].car_copy > 0  # cars move


def test_the_model_errors_are_those_of_the_imagined_drawings(
    script: ModuleType, rolled: tuple[Any, Any]
) -> None:
    agent, trajectory = rolled
    result = script.open_loop(agent, trajectory, HORIZON, STRIDE)
    mode = script.mode_one_hot
    wrong, hits, drew = [], [], []
    with torch.inference_mode():
        for t in starts():
            state = LatentState(
                trajectory.posterior_logits[t],
                mode(trajectory.posterior_logits[t]),
                trajectory.deter[t],
            )
            prior = agent.imagine(state, agent.one_hot_actions(trajectory.actions[t]))
            stoch = mode(prior.logits)
            drawn = agent.obs_decoder(torch.cat([prior.deter, stoch.flatten(1)], -1)) > 0.5
            truth = trajectory.observations[t + 1].bool()
            wrong += (drawn[:, 1] != truth[:, 1]).flatten(1).sum(1).tolist()
            hits += trajectory.fact("collision")[t].bool().tolist()
            drew += drawn[:, 0, 9, 4].tolist()
    assert result.ahead[0].car_model == pytest.approx(np.mean(wrong))
    assert result.transitions == len(hits)
    assert result.collisions == sum(hits)
    if result.collisions:
        expected = np.mean([d for d, h in zip(drew, hits, strict=True) if h])
        assert result.collision_recall == pytest.approx(expected)


def test_the_lookahead_splits_the_move_ready_frames_and_reads_the_actor(
    script: ModuleType, rolled: tuple[Any, Any]
) -> None:
    agent, trajectory = rolled
    torch.manual_seed(0)
    danger, safe = script.lookahead(agent, trajectory, samples=2, discount=0.9)
    ready = trajectory.valid.bool() & (trajectory.fact("move_ready") == 1)
    up_hits = trajectory.fact("up_hits")[ready].bool()
    assert (danger.split, safe.split) == ("up_hits", "safe")
    assert danger.states == int(up_hits.sum())
    assert safe.states == int((~up_hits).sum())
    assert danger.states + safe.states == int(ready.sum()) > 0
    with torch.inference_mode():
        state = LatentState(
            trajectory.posterior_logits[ready], trajectory.stoch[ready], trajectory.deter[ready]
        )
        policy = torch.softmax(agent.policy_logits(state), -1)
    held_back = (policy[:, 0] + policy[:, 2])[~up_hits].mean().item()
    assert safe.actor_holds_back == pytest.approx(held_back, rel=1e-5)
    assert 0.0 <= safe.prefers_noop <= 1.0


def test_action_values_score_the_imagined_next_state(script: ModuleType) -> None:
    agent = tiny_agent(seed=2).eval()
    state = agent.initial_state(4)
    torch.manual_seed(1)
    with torch.inference_mode():
        q = script.action_values(agent, state, samples=1, discount=0.5)
        torch.manual_seed(1)
        expected = []
        for action in range(3):
            nxt = agent.imagine(state, agent.one_hot_actions(torch.full((4,), action))).model_state
            reward = agent.reward_decoder(nxt).squeeze(-1)
            alive = torch.sigmoid(agent.discount_model(nxt).squeeze(-1))
            expected.append(reward + 0.5 * alive * agent.value_model(nxt).squeeze(-1))
    assert q.shape == (4, 3)
    torch.testing.assert_close(q, torch.stack(expected, -1))


def test_too_few_steps_for_the_horizon_is_refused(
    script: ModuleType, rolled: tuple[Any, Any]
) -> None:
    agent, trajectory = rolled
    with pytest.raises(ConfigError, match="more steps than 2 x 30"):
        script.open_loop(agent, trajectory, horizon=30, stride=1)


def test_a_checkpoint_without_a_decoder_or_of_another_game_is_refused(
    script: ModuleType, tmp_path: Path
) -> None:
    agent = tiny_agent(seed=1)
    agent.obs_decoder = None
    trajectory = run_rollouts(agent, episodes=1, steps=12, seeds=[0])
    with pytest.raises(ConfigError, match="ObsDecoder"):
        script.open_loop(agent, trajectory, 2, 1)
    breakout = write_tiny_checkpoint(tmp_path / "breakout.pth", "breakout")
    with pytest.raises(ConfigError, match="plays breakout"):
        script.load_agent(breakout, random_weights=False)


def test_main_prints_the_tables_and_writes_json_for_random_weights(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = save_checkpoint(tiny_agent(seed=4), tmp_path / "agent.pth")
    out = tmp_path / "diagnosis.json"
    script.main(
        [
            str(checkpoint),
            "--episodes",
            "2",
            "--steps",
            "20",
            "--horizon",
            "2",
            "--samples",
            "1",
            "--random-weights",
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "seeded random weights" in printed
    assert "| up_hits |" in printed
    payload = json.loads(out.read_text())
    assert payload["random_weights"] is True
    assert payload["seeds"] == [6000, 6001]
    assert [a["k"] for a in payload["open_loop"]["ahead"]] == [1, 2]
    with pytest.raises(ConfigError, match="--steps must be at least 1"):
        script.main([str(checkpoint), "--steps", "0"])


def test_the_lookahead_policy_plays_the_argmax_of_its_action_values(
    script: ModuleType,
) -> None:
    agent = tiny_agent(seed=6).eval()
    seeds = [3, 4]
    policy = script.lookahead_policy(agent, seeds, samples=1, discount=0.99)
    obs = np.zeros((2, 2, 10, 10), dtype=bool)
    obs[:, 0, 9, 4] = True
    first, prev = np.ones(2, dtype=bool), np.zeros(2, dtype=np.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        chosen = policy(obs, first, prev)
        # the same filter step, then the same draws of the values
        noise = script.NoiseKeys.from_seeds(seeds)
        nonterminal = torch.zeros(2)
        _, state = agent.observe(
            agent.initial_state(2), torch.from_numpy(obs).float(), torch.zeros(2, 3), nonterminal,
            noise=noise,
        )  # fmt: skip
        torch.manual_seed(0)
        q = script.action_values(agent, state, 1, 0.99)
    assert chosen.tolist() == q.argmax(-1).tolist()


@pytest.mark.slow
def test_play_lookahead_pairs_the_lookahead_with_the_actor_on_full_episodes(
    script: ModuleType,
) -> None:
    agent = tiny_agent(seed=6).eval()
    results = script.play_lookahead(agent, episodes=2, seed=40, samples=1, discount=0.99)
    assert [r.policy for r in results] == [
        "actor (sampled)",
        "actor (greedy)",
        "lookahead (argmax Q)",
    ]
    assert all(r.seeds == (40, 41) for r in results)
    assert all(r.reaction is not None and r.reaction.safe_steps > 0 for r in results)
    table = script.play_report(results)
    assert "| lookahead (argmax Q) | actor (greedy) |" in table
