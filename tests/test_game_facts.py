"""The facts of Asterix, Breakout, Seaquest and Space Invaders checked against the frames they
describe, over many seeded random-play states: observation facts against frame ``t`` (read by
channel name), transition facts against the reward and the episode's end, ``noop_loses`` against
MinAtar playing NOOP on a deep copy of the game."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest

from pytest_dreamer_audit.game_facts import ACTION_FACTS, GAME_FACTS
from pytest_dreamer_audit.games import GAMES
from pytest_dreamer_audit.results.facts import VISIBLE_FACTS
from pytest_dreamer_audit.rollout.envs import GameBatch


@dataclass
class Played:
    """``T`` steps of ``B`` episodes: frames ``[T, B, C, 10, 10]`` (MDP), facts ``[T, B, F]``,
    rewards, terminal and valid ``[T, B]``, and what NOOP did on a copy of each frame's game."""

    game: str
    frames: np.ndarray
    facts: np.ndarray
    rewards: np.ndarray
    terminal: np.ndarray
    valid: np.ndarray
    noop_ended: np.ndarray
    noop_missed: np.ndarray  # Breakout: NOOP held until the ball turns up or the episode ends

    def fact(self, name: str) -> np.ndarray:
        return self.facts[..., GAMES[self.game].fact_names.index(name)]

    def channel(self, name: str) -> np.ndarray:
        return self.frames[:, :, GAMES[self.game].channel_names.index(name)]


def _noop_ends(game: object) -> bool:
    twin = copy.deepcopy(game)
    twin.sticky_action_prob = 0.0  # type: ignore[attr-defined]
    twin.act(0)  # type: ignore[attr-defined]  # MinAtar's full action set: 0 is NOOP
    return bool(twin.env.terminal)  # type: ignore[attr-defined]


def _noop_misses(env: object) -> bool:
    twin = copy.deepcopy(env)
    for _ in range(12):
        if twin.terminal or twin.ball_dir not in (2, 3):  # type: ignore[attr-defined]
            return bool(twin.terminal)  # type: ignore[attr-defined]
        twin.act(0)  # type: ignore[attr-defined]
    return False


def _play(game: str, rounds: int, steps: int, episodes: int = 8) -> Played:
    frames, facts, rewards, terminal, valid, ended, missed = [], [], [], [], [], [], []
    rng = np.random.default_rng(len(game))
    for round_ in range(rounds):
        batch = GameBatch(game, pomdp=False, episodes=episodes)
        obs, obs_facts = batch.reset([1000 * round_ + b for b in range(episodes)])
        active = np.ones(episodes, dtype=bool)
        for _ in range(steps):
            logic = [env.unwrapped.game for env in batch.envs]
            ended.append(
                [_noop_ends(g) if a else False for g, a in zip(logic, active, strict=True)]
            )
            missed.append([game == "breakout" and a and _noop_misses(g.env)
                           for g, a in zip(logic, active, strict=True)])  # fmt: skip
            actions = rng.integers(0, batch.spec.actions, episodes)
            result = batch.step(actions, active)
            frames.append(obs)
            facts.append(np.concatenate([obs_facts, result.transition_facts], axis=1))
            rewards.append(result.reward)
            terminal.append(result.terminal)
            valid.append(active.copy())
            active &= ~result.terminal
            obs, obs_facts = result.obs, result.observation_facts
            obs_facts[~active] = 0

    def stack(parts: list) -> np.ndarray:
        # rounds are stacked along episodes: [rounds * steps, B] -> [steps, rounds * B]
        array = np.asarray(parts)
        return np.concatenate(np.split(array, rounds, axis=0), axis=1)

    return Played(game, *(stack(p) for p in (frames, facts, rewards, terminal, valid, ended,
                                              missed)))  # fmt: skip


@pytest.fixture(scope="module", params=["asterix", "breakout", "seaquest", "space_invaders"])
def played(request: pytest.FixtureRequest) -> Played:
    return _play(request.param, rounds=4, steps=200)


def _position(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[..., 10, 10]`` one pixel each -> its (row, column)."""
    flat = channel.reshape(*channel.shape[:-2], 100)
    assert (flat.sum(axis=-1) == 1).all()
    index = flat.argmax(axis=-1)
    return index // 10, index % 10


def _near(where: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
    """``[n, 10, 10]`` bool, per-step point -> [n] is something in the 3 x 3 square around it."""
    padded = np.pad(where, ((0, 0), (1, 1), (1, 1)))
    n = np.arange(len(row))
    return np.array([padded[i, row[i] : row[i] + 3, column[i] : column[i] + 3].any() for i in n])


def test_every_game_records_its_registered_facts_in_order(played: Played) -> None:
    spec = GAMES[played.game]
    assert played.facts.shape[-1] == len(spec.fact_names)
    names = [fact.step for fact in spec.facts]
    assert names == sorted(names)  # observation facts first, then transition facts
    assert spec.facts[len(spec.observation_fact_names) :][:2] == ACTION_FACTS
    assert [f for f in spec.facts if f.screen == "mdp"]  # each game has a fact the POMDP hides


def test_outcome_facts_are_the_reward_and_the_end(played: Played) -> None:
    v = played.valid
    reward_fact, end_fact = GAMES[played.game].fact_names[-2:]
    np.testing.assert_array_equal(played.fact(reward_fact)[v], played.rewards[v] > 0)
    np.testing.assert_array_equal(played.fact(end_fact)[v], played.terminal[v])
    assert f"{reward_fact}_visible" in VISIBLE_FACTS
    assert f"{end_fact}_visible" not in VISIBLE_FACTS  # no observation follows the end
    assert played.terminal[v].sum() >= 3


def test_noop_loses_is_minatar_playing_noop_on_a_copy(played: Played) -> None:
    v = played.valid
    loses = played.fact("noop_loses")[v]
    np.testing.assert_array_equal(loses, played.noop_ended[v])
    assert loses.sum() >= 3  # both outcomes occur
    assert (1 - loses).sum() >= 100


def _breakout(p: Played) -> None:
    v = p.valid
    ball_row, ball_column = _position(p.channel("ball")[v])
    np.testing.assert_array_equal(p.fact("ball_row")[v], ball_row)
    np.testing.assert_array_equal(p.fact("ball_column")[v], ball_column)
    paddle_row, paddle_column = _position(p.channel("paddle")[v])
    assert (paddle_row == 9).all()
    np.testing.assert_array_equal(p.fact("paddle_column")[v], paddle_column)
    np.testing.assert_array_equal(p.fact("ball_above_paddle")[v], ball_column == paddle_column)
    np.testing.assert_array_equal(p.fact("bricks_left")[v], p.channel("brick")[v].sum(axis=(1, 2)))
    # Where the ball's row changes between two frames, it went the way ball_moving_down said.
    both = v[1:] & v[:-1]
    rows = p.fact("ball_row")
    changed = both & (rows[1:] != rows[:-1])
    down = p.fact("ball_moving_down")[:-1][changed] == 1
    np.testing.assert_array_equal(down, (rows[1:] > rows[:-1])[changed])
    assert changed.sum() >= 200
    assert 0 < down.mean() < 1
    coming = p.fact("miss_coming")[v]
    np.testing.assert_array_equal(coming, p.noop_missed[v])
    assert coming.sum() >= 10
    assert (coming[p.fact("noop_loses")[v] == 1] == 1).all()
    # A visible brick hit: the next frame has one brick fewer.
    hit = both & (p.fact("brick_hit")[:-1] == 1)
    bricks = p.fact("bricks_left")
    np.testing.assert_array_equal(bricks[1:][hit], bricks[:-1][hit] - 1)


def _asterix(p: Played) -> None:
    v = p.valid
    row, column = _position(p.channel("player")[v])
    enemy, gold, trail = (p.channel(name)[v] for name in ("enemy", "gold", "trail"))
    grid_r, grid_c = np.indices((10, 10))
    distance = np.abs(grid_r - row[:, None, None]) + np.abs(grid_c - column[:, None, None])
    nearest = np.where(enemy, distance, 10).min(axis=(1, 2)).clip(max=10)
    np.testing.assert_array_equal(p.fact("enemy_distance")[v], nearest)
    np.testing.assert_array_equal(p.fact("enemy_adjacent")[v], _near(enemy, row, column))
    np.testing.assert_array_equal(p.fact("gold_adjacent")[v], _near(gold, row, column))
    approaching, known = _approaching(enemy, trail, row, column)
    assert known.all()  # one entity per row: its trail is never ambiguous
    np.testing.assert_array_equal(p.fact("enemy_approaching")[v], approaching)
    assert approaching.sum() >= 20
    assert p.fact("gold_adjacent")[v].sum() >= 5


def _approaching(
    enemy: np.ndarray, trail: np.ndarray, row: np.ndarray, column: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``[n]`` some enemy in the player's row moves towards it, by the trail behind each enemy
    (or the edge it spawned at); and ``[n]`` whether every such enemy's trail said which way."""
    approaching, known = np.zeros(len(row), dtype=bool), np.ones(len(row), dtype=bool)
    for i in range(len(row)):
        line = np.pad(trail[i, row[i]], 1)  # line[x] is left of x, line[x + 2] right of it
        for x in np.flatnonzero(enemy[i, row[i]]):
            left, right = bool(line[x]), bool(line[x + 2])
            if left != right:
                moves_right = left
            elif not left and x in (0, 9):
                moves_right = x == 0
            else:
                known[i] = False
                continue
            approaching[i] |= bool(x < column[i] if moves_right else x > column[i])
    return approaching, known


def _seaquest(p: Played) -> None:
    v = p.valid
    row, column = _position(p.channel("sub_front")[v])
    np.testing.assert_array_equal(p.fact("sub_row")[v], row)
    np.testing.assert_array_equal(p.fact("sub_column")[v], column)
    np.testing.assert_array_equal(p.fact("at_surface")[v], row == 0)
    gauge = p.channel("oxygen_gauge")[v].sum(axis=(1, 2))
    np.testing.assert_array_equal(p.fact("oxygen")[v] * 10 // 200, gauge)
    np.testing.assert_array_equal(p.fact("low_oxygen")[v], gauge <= 2)
    divers = p.channel("diver_gauge")[v].sum(axis=(1, 2))
    np.testing.assert_array_equal(p.fact("divers_carried")[v], divers)
    threats = p.channel("enemy_fish") | p.channel("enemy_sub") | p.channel("enemy_bullet")
    np.testing.assert_array_equal(p.fact("enemy_adjacent")[v], _near(threats[v], row, column))
    enemies = (p.channel("enemy_fish") | p.channel("enemy_sub"))[v]
    approaching, known = _approaching(enemies, p.channel("trail")[v], row, column)
    np.testing.assert_array_equal(p.fact("enemy_approaching")[v][known], approaching[known])
    assert known.mean() > 0.9
    assert approaching.sum() >= 20
    _shot_ready(p, "friendly_bullet")


def _space_invaders(p: Played) -> None:
    v = p.valid
    row, column = _position(p.channel("cannon")[v])
    assert (row == 9).all()
    np.testing.assert_array_equal(p.fact("player_column")[v], column)
    aliens = p.channel("alien")[v]
    np.testing.assert_array_equal(p.fact("aliens_left")[v], aliens.sum(axis=(1, 2)))
    lowest = 9 - aliens.any(axis=2)[:, ::-1].argmax(axis=1)
    np.testing.assert_array_equal(p.fact("lowest_alien_row")[v], lowest)
    right = p.channel("alien_right")[v].any(axis=(1, 2))
    np.testing.assert_array_equal(p.fact("aliens_moving_right")[v], right)
    assert 0 < right.mean() < 1
    bullets = p.channel("enemy_bullet")[v]
    above = bullets[np.arange(len(column)), :, column].any(axis=1)
    np.testing.assert_array_equal(p.fact("bullet_above")[v], above)
    _shot_ready(p, "friendly_bullet")


def _shot_ready(p: Played, bullet: str) -> None:
    """FIRE that ran with the shot ready starts the 5-frame cool-down; without it, nothing."""
    both = p.valid[1:] & p.valid[:-1]
    fired = p.fact("executed_action")[:-1] == GAMES[p.game].action_names.index("fire")
    ready = p.fact("shot_ready")
    assert (ready[1:][both & fired & (ready[:-1] == 1)] == 0).all()
    assert (both & fired & (ready[:-1] == 1)).sum() >= 10
    assert (both & fired & (ready[:-1] == 0)).sum() >= 10


CHECKS = {
    "asterix": _asterix,
    "breakout": _breakout,
    "seaquest": _seaquest,
    "space_invaders": _space_invaders,
}


def test_observation_facts_describe_their_own_frame(played: Played) -> None:
    CHECKS[played.game](played)


def test_every_fact_is_documented() -> None:
    for game, facts in GAME_FACTS.items():
        assert [fact.name for fact in facts] == list(GAMES[game].fact_names)
        assert len({fact.name for fact in facts}) == len(facts)
        assert all(fact.meaning and not fact.meaning.endswith(".") for fact in facts)
