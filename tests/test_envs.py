from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.games import GAMES
from pytest_dreamer_audit.rollout.envs import GameBatch, fact_names, make_env


@pytest.mark.parametrize("pomdp", [True, False], ids=["pomdp", "mdp"])
@pytest.mark.parametrize("game", sorted(GAMES))
def test_every_game_resets_and_steps_with_the_right_channels(game: str, pomdp: bool) -> None:
    spec = GAMES[game]
    batch = GameBatch(game, pomdp=pomdp, episodes=2)
    assert batch.action_set == make_env(game).unwrapped.game.minimal_action_set()
    assert len(batch.action_set) == spec.actions
    obs, facts = batch.reset([1, 2])
    assert obs.shape == (2, len(spec.observed_channels(pomdp)), 10, 10)
    assert obs.dtype == bool
    result = batch.step(np.zeros(2, dtype=np.int64), np.ones(2, dtype=bool))
    assert result.obs.shape == obs.shape
    assert result.transition_facts.shape[1] + facts.shape[1] == len(fact_names(game))


@pytest.mark.parametrize("game", sorted(GAMES))
def test_same_seed_same_episode(game: str) -> None:
    def play(seed: int) -> list[np.ndarray]:
        batch = GameBatch(game, pomdp=False, episodes=1)
        obs, _ = batch.reset([seed])
        frames = [obs]
        rng = np.random.default_rng(0)
        for _ in range(60):
            result = batch.step(rng.integers(0, batch.spec.actions, 1), np.ones(1, dtype=bool))
            frames.append(result.obs)
        return frames

    first, again, other = play(5), play(5), play(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_pomdp_keeps_exactly_the_listed_channels() -> None:
    full, _ = GameBatch("space_invaders", pomdp=False, episodes=1).reset([3])
    part, _ = GameBatch("space_invaders", pomdp=True, episodes=1).reset([3])
    assert np.array_equal(part[0], full[0][[0, 1, 4, 5]])


def test_freeway_facts_follow_the_game_rules() -> None:
    """Over many random steps, every recorded fact agrees with what the frames show."""
    names = fact_names("freeway")
    batch = GameBatch("freeway", pomdp=False, episodes=8)
    obs, obs_facts = batch.reset(list(range(8)))
    rng = np.random.default_rng(1)
    active = np.ones(8, dtype=bool)
    seen = {"collision": 0, "scored": 0, "sticky": 0, "moved": 0}
    for _ in range(600):
        # Mostly UP, so that the chicken reaches the cars and sometimes the top.
        actions = np.where(rng.random(8) < 0.8, 1, rng.integers(0, 3, 8))
        row_before = obs_facts[:, names.index("chicken_row")]
        ready = obs_facts[:, names.index("move_ready")]
        assert np.array_equal(np.argwhere(obs[:, 0])[:, 1], row_before)  # chicken channel row
        result = batch.step(actions, active)
        executed, sticky, scored, collision = result.transition_facts.T
        row_after = result.observation_facts[:, 0]
        assert np.array_equal(sticky, (executed != actions).astype(np.int32))
        assert np.array_equal(scored, (result.reward > 0).astype(np.int32))
        assert np.all(row_after[collision == 1] == 9)
        moved_up = (executed == 1) & (ready == 1) & (scored == 0) & (collision == 0)
        assert np.all(row_after[moved_up] == row_before[moved_up] - 1)
        frozen = (ready == 0) & (collision == 0) & (scored == 0)
        assert np.all(row_after[frozen] == row_before[frozen])
        seen["collision"] += int(collision.sum())
        seen["scored"] += int(scored.sum())
        seen["sticky"] += int(sticky.sum())
        seen["moved"] += int(moved_up.sum())
        obs, obs_facts = result.obs, result.observation_facts
    assert all(count > 0 for count in seen.values()), seen


def test_car_adjacent_matches_the_car_channel() -> None:
    batch = GameBatch("freeway", pomdp=True, episodes=4)
    obs, facts = batch.reset([0, 1, 2, 3])
    for _ in range(200):
        rows = facts[:, 0]
        for b in range(4):
            cars = obs[b, 1, rows[b], 3:6]
            assert facts[b, 2] == int(cars.any())
        result = batch.step(np.ones(4, dtype=np.int64), np.ones(4, dtype=bool))
        obs, facts = result.obs, result.observation_facts


def test_up_hits_says_whether_up_ends_in_a_collision() -> None:
    """Whenever UP really ran (sticky actions on: the executed action counts), the step ended in
    a collision exactly when the frame before said ``up_hits``."""
    names = fact_names("freeway")
    up_hits, ready = names.index("up_hits"), names.index("move_ready")
    episodes = 8
    batch = GameBatch("freeway", pomdp=True, episodes=episodes)
    _, facts = batch.reset(list(range(100, 100 + episodes)))
    # Transition facts follow the observation facts in fact_names.
    executed_at = names.index("executed_action") - facts.shape[1]
    collision_at = names.index("collision") - facts.shape[1]
    rng = np.random.default_rng(3)
    active = np.ones(episodes, dtype=bool)
    counts = {"hit": 0, "safe": 0, "hit_waiting": 0, "up_ran": 0}
    for _ in range(500):  # 4000 steps
        actions = np.where(rng.random(episodes) < 0.7, 1, rng.integers(0, 3, episodes))
        result = batch.step(actions, active)
        ran_up = result.transition_facts[:, executed_at] == 1
        collision = result.transition_facts[:, collision_at]
        predicted = facts[:, up_hits]
        assert np.array_equal(collision[ran_up], predicted[ran_up]), (
            f"UP ran with up_hits {predicted[ran_up].tolist()}, "
            f"collisions {collision[ran_up].tolist()}"
        )
        counts["up_ran"] += int(ran_up.sum())
        counts["hit"] += int((ran_up & (predicted == 1)).sum())
        counts["safe"] += int((ran_up & (predicted == 0)).sum())
        counts["hit_waiting"] += int((ran_up & (predicted == 1) & (facts[:, ready] == 0)).sum())
        facts = result.observation_facts
    assert counts["up_ran"] > 2500, counts
    # Both outcomes occur, also hits while the move timer holds the chicken in its row.
    assert counts["hit"] >= 20, counts
    assert counts["safe"] >= 1000, counts
    assert counts["hit_waiting"] >= 5, counts


def test_up_hits_matches_pressing_up_in_a_copy_of_every_frame() -> None:
    """The counterfactual on every frame, whatever ran: a deep copy of the game plays UP."""
    up_hits = fact_names("freeway").index("up_hits")
    batch = GameBatch("freeway", pomdp=True, episodes=2)
    _, facts = batch.reset([7, 8])
    rng = np.random.default_rng(4)
    outcomes: set[tuple[int, int]] = set()
    for _ in range(800):
        for b, env in enumerate(batch.envs):
            game = copy.deepcopy(env.unwrapped.game.env)  # MinAtar's freeway.Env
            row, timer = game.pos, game.move_timer
            reward, _ = game.act(game.action_map.index("u"))
            target = max(0, row - 1) if timer == 0 else row
            hit = int(reward == 0 and game.pos == 9 and target != 9)
            assert facts[b, up_hits] == hit, (b, row, timer, game.cars)
            outcomes.add((hit, int(timer == 0)))
        actions = rng.choice(3, size=2, p=[0.4, 0.3, 0.3])
        facts = batch.step(actions, np.ones(2, dtype=bool)).observation_facts
    assert outcomes == {(0, 0), (0, 1), (1, 0), (1, 1)}, outcomes


def test_inactive_episodes_are_not_stepped() -> None:
    batch = GameBatch("breakout", pomdp=False, episodes=2)
    batch.reset([0, 0])
    result = batch.step(np.zeros(2, dtype=np.int64), np.array([True, False]))
    assert result.obs[1].sum() == 0
    assert result.obs[0].sum() > 0
    assert result.transition_facts[1].tolist() == [0, 0, 0, 0]


def test_bad_batch_arguments() -> None:
    with pytest.raises(ConfigError, match="episodes must be at least 1"):
        GameBatch("freeway", pomdp=True, episodes=0)
    batch = GameBatch("freeway", pomdp=True, episodes=2)
    with pytest.raises(ConfigError, match="got 1 seeds for 2 episodes"):
        batch.reset([1])
    with pytest.raises(ConfigError, match=r"seed -1 is outside \[0, 4294967295\]"):
        batch.reset([-1, 0])
    with pytest.raises(ConfigError, match="sticky_action_prob must be in"):
        make_env("freeway", sticky_action_prob=1.5)


def test_registering_minatar_leaves_the_root_logger_and_stderr_alone() -> None:
    code = (
        "import logging\n"
        "from pytest_dreamer_audit.rollout.envs import make_env\n"
        "make_env('asterix').reset(seed=0)\n"
        "print(len(logging.getLogger().handlers))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"
    assert "seaborn" not in done.stderr


def test_a_cold_audit_imports_no_display_stack() -> None:
    """MinAtar's own GUI imports (pyplot, seaborn with pandas and scipy.stats: 1.2 s of a cold
    start) are kept out of a tiny audit from rollouts to rendered pictures; the audit draws with
    its own canvas, and matches the refits' factors without ``scipy.optimize`` (0.4-0.9 s).
    A user who already imported them keeps them."""
    import subprocess
    import sys

    code = (
        "import sys, tempfile, pathlib\n"
        "from pytest_dreamer_audit.testing import tiny_agent\n"
        "from pytest_dreamer_audit.rollout.rollouts import run_rollouts\n"
        "from pytest_dreamer_audit.analysis.pipeline import explain\n"
        "from pytest_dreamer_audit.results.explanation import ExplainConfig\n"
        "from pytest_dreamer_audit.report.bundle import write_bundle\n"
        "agent = tiny_agent(seed=1)\n"
        "t = run_rollouts(agent, 'freeway', episodes=2, steps=6, seed=0)\n"
        "e = explain(t, ExplainConfig(rank=3, top_k=2, stability_refits=1), agent=agent)\n"
        "write_bundle(e, pathlib.Path(tempfile.mkdtemp()), 1)\n"
        "shown = ('seaborn', 'pandas', 'matplotlib.pyplot', 'scipy.stats', 'scipy.optimize')\n"
        "print(sorted(m for m in shown if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "[]"
    warm = subprocess.run(
        [sys.executable, "-c", "import seaborn, sys\nfrom pytest_dreamer_audit.rollout.envs import "
         "make_env\nmake_env('freeway')\nprint(sys.modules['seaborn'] is not None)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert warm.stdout.strip() == "True"
