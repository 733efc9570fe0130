"""Tests of ``research/evaluate_agent.py``: blind baselines, danger reaction, paired differences."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.rollout.envs import GameBatch
from pytest_dreamer_audit.testing import tiny_agent
from tests.research_scripts import import_research

SCRIPT = Path(__file__).resolve().parents[1] / "research" / "evaluate_agent.py"
EPISODE_STEPS = 2501  # MinAtar Freeway: the time limit of 2500 frames ends on step 2501
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def evaluation_script() -> ModuleType:
    """The example script, imported from its path."""
    return import_research("evaluate_agent")


@pytest.fixture(scope="module")
def evaluation(evaluation_script: ModuleType) -> Iterator[Any]:
    """A tiny agent and every baseline on two Freeway episodes (~30 s on one CPU core; the
    tests that use it are marked slow)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        agent = tiny_agent(seed=3)
        yield evaluation_script.evaluate_agent(
            agent, game="freeway", pomdp=True, episodes=len(SEEDS), seed=SEEDS[0]
        )
    finally:
        torch.set_num_threads(threads)


def by_name(results: Any) -> dict[str, Any]:
    return {r.policy: r for r in results}


def played(evaluation_script: ModuleType, policy: Any) -> Any:
    return evaluation_script.play(GameBatch("freeway", pomdp=True, episodes=2), SEEDS, policy)


@pytest.mark.slow
def test_every_policy_plays_the_same_seeds(evaluation: Any) -> None:
    names = [r.policy for r in evaluation.results]
    assert names == [
        "agent (sampled)",
        "agent (greedy)",
        "uniform random",
        "always UP (action 1)",
        "UP with p=0.8, else noop",
        "UP with p=0.9, else noop",
        "UP with p=0.95, else noop",
    ]
    assert {r.seeds for r in evaluation.results} == {tuple(SEEDS)}
    assert all(len(r.returns) == len(SEEDS) for r in evaluation.results)
    assert by_name(evaluation.results)["always UP (action 1)"].mean > 10  # UP scores in Freeway


@pytest.mark.slow
def test_paired_differences_are_agent_minus_baseline_seed_by_seed(evaluation: Any) -> None:
    differences = evaluation.differences
    assert len(differences) == 2 * 5
    results = by_name(evaluation.results)
    for d in differences:
        agent, baseline = results[d.policy], results[d.baseline]
        assert d.policy.startswith("agent")
        assert not d.baseline.startswith("agent")
        expected = [a - b for a, b in zip(agent.returns, baseline.returns, strict=True)]
        assert list(d.differences) == expected
        assert d.mean == pytest.approx(np.mean(expected))
        # Two episodes: std(ddof=1) / sqrt(2) = |d1 - d2| / 2.
        assert d.standard_error == pytest.approx(abs(expected[0] - expected[1]) / 2)


@pytest.mark.slow
def test_a_policy_paired_with_itself_differs_by_exactly_zero(
    evaluation_script: ModuleType, evaluation: Any
) -> None:
    up = by_name(evaluation.results)["always UP (action 1)"]
    assert len(set(up.returns)) > 1  # the seeds do give different returns
    same = evaluation_script.paired_difference(up, up)
    assert same.differences == (0.0, 0.0)
    assert (same.mean, same.standard_error) == (0.0, 0.0)


def test_paired_difference_values_and_mismatched_seeds(evaluation_script: ModuleType) -> None:
    result = evaluation_script.PolicyResult
    policy = result("a", (1, 2, 3), (3.0, 5.0, 8.0), 0.0)
    baseline = result("b", (1, 2, 3), (1.0, 1.0, 2.0), 0.0)
    d = evaluation_script.paired_difference(policy, baseline)
    assert d.differences == (2.0, 4.0, 6.0)
    assert d.mean == 4.0
    assert d.standard_error == pytest.approx(2.0 / math.sqrt(3))
    single = evaluation_script.paired_difference(
        result("a", (7,), (3.0,), 0.0), result("b", (7,), (1.0,), 0.0)
    )
    assert math.isnan(single.standard_error)
    with pytest.raises(ConfigError, match=r"'a' and 'b' were played on different seeds"):
        evaluation_script.paired_difference(policy, result("b", (1, 2, 4), (0.0,) * 3, 0.0))


def test_always_up_never_holds_back_and_noop_always_does(evaluation_script: ModuleType) -> None:
    up = played(evaluation_script, evaluation_script.constant_policy(1)).reaction
    # The move timer lets the chicken move on frames 3, 6, ..., 2499 when it always moves.
    assert up.danger_steps + up.safe_steps == 2 * 833
    assert up.danger_steps > 20
    assert (up.danger_not_up, up.safe_not_up) == (0, 0)
    assert (up.rate_in_danger, up.rate_when_safe) == (0.0, 0.0)
    noop = played(evaluation_script, evaluation_script.constant_policy(0)).reaction
    # Never moving, the timer runs out after 3 frames and stays at 0.
    assert noop.danger_steps + noop.safe_steps == 2 * (EPISODE_STEPS - 3)
    assert noop.danger_steps > 0
    assert (noop.rate_in_danger, noop.rate_when_safe) == (1.0, 1.0)


def test_reaction_splits_the_frames_by_up_hits(evaluation_script: ModuleType) -> None:
    """A policy that presses UP exactly when a copy of the game says it is safe."""
    batch = GameBatch("freeway", pomdp=True, episodes=2)

    def careful(obs: np.ndarray, first: np.ndarray, prev: np.ndarray) -> np.ndarray:
        actions = []
        for env in batch.envs:
            game = copy.deepcopy(env.unwrapped.game.env)
            row, timer = game.pos, game.move_timer
            reward, _ = game.act(game.action_map.index("u"))
            target = max(0, row - 1) if timer == 0 else row
            hit = reward == 0 and game.pos == 9 and target != 9
            actions.append(0 if hit else 1)
        return np.array(actions)

    result = evaluation_script.play(batch, SEEDS, careful)
    reaction = result.reaction
    assert reaction.danger_steps > 20
    assert (reaction.rate_in_danger, reaction.rate_when_safe) == (1.0, 0.0)
    assert min(result.returns) > 30


def test_up_or_noop_baseline_is_blind_seeded_and_batch_invariant(
    evaluation_script: ModuleType,
) -> None:
    make = evaluation_script.up_or_noop_policy
    screen = np.zeros((2, 2, 10, 10), dtype=bool)
    flags, prev = np.zeros(2, dtype=bool), np.zeros(2, dtype=np.int64)
    pair, again = make(1, 0, 0.9, [3, 4]), make(1, 0, 0.9, [3, 4])
    alone = make(1, 0, 0.9, [4])
    other_p = make(1, 0, 0.8, [3, 4])
    drawn = np.stack([pair(screen, flags, prev) for _ in range(4000)])  # [T, 2]
    repeat = np.stack([again(~screen, ~flags, prev + 1) for _ in range(4000)])  # another screen
    single = np.stack([alone(screen[:1], flags[:1], prev[:1]) for _ in range(4000)])
    assert np.array_equal(drawn, repeat)
    assert np.array_equal(drawn[:, 1], single[:, 0])
    assert set(np.unique(drawn).tolist()) == {0, 1}
    assert np.mean(drawn == 1) == pytest.approx(0.9, abs=0.015)
    assert not np.array_equal(drawn, np.stack([other_p(screen, flags, prev) for _ in range(10)]))
    blind = played(evaluation_script, make(1, 0, 0.9, SEEDS)).reaction
    assert blind.rate_when_safe == pytest.approx(0.1, abs=0.03)
    assert blind.rate_in_danger == pytest.approx(0.1, abs=0.06)


@pytest.mark.slow
def test_agent_reactions_are_counted_sampled_and_greedy(evaluation: Any) -> None:
    results = by_name(evaluation.results)
    for name in ("agent (sampled)", "agent (greedy)"):
        reaction = results[name].reaction
        assert reaction.danger_steps > 0
        assert reaction.safe_steps > 0
        assert 0 <= reaction.danger_not_up <= reaction.danger_steps
        assert reaction.rate_in_danger == reaction.danger_not_up / reaction.danger_steps
        assert reaction.rate_when_safe == reaction.safe_not_up / reaction.safe_steps


@pytest.mark.slow
def test_main_prints_three_tables_and_writes_them_as_json(
    evaluation_script: ModuleType,
    evaluation: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asked: dict[str, Any] = {}

    def evaluate(checkpoint: str, **options: Any) -> Any:
        asked.update(options, checkpoint=checkpoint)
        return evaluation

    monkeypatch.setattr(evaluation_script, "evaluate", evaluate)
    threads = torch.get_num_threads()
    out = tmp_path / "results.json"
    try:
        evaluation_script.main(["agent.pth", "--episodes", "2", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert asked == {
        "checkpoint": "agent.pth",
        "episodes": 2,
        "seed": 0,
        "game": None,
        "pomdp": None,
        "device": "cpu",
    }
    printed = capsys.readouterr().out
    for title in ("## Returns", "## Paired differences", "## Danger reaction"):
        assert title in printed
    assert "| always UP (action 1) | 0.000 |" in printed
    assert "| agent (greedy) | UP with p=0.95, else noop |" in printed

    payload = json.loads(out.read_text())
    assert payload["seeds"] == [0, 1]
    assert [r["policy"] for r in payload["results"]] == [r.policy for r in evaluation.results]
    assert payload["results"][3]["returns"] == list(evaluation.results[3].returns)
    pairs = payload["paired_differences"]
    assert [(p["policy"], p["baseline"]) for p in pairs] == [
        (d.policy, d.baseline) for d in evaluation.differences
    ]
    assert pairs[0]["standard_error"] == evaluation.differences[0].standard_error
    reactions = {row["policy"]: row for row in payload["danger_reaction"]}
    assert set(reactions) == {r.policy for r in evaluation.results}
    up = reactions["always UP (action 1)"]
    assert (up["rate_in_danger"], up["rate_when_safe"], up["danger_not_up"]) == (0.0, 0.0, 0)
    greedy = evaluation.agents[1].reaction
    assert reactions["agent (greedy)"]["danger_steps"] == greedy.danger_steps
