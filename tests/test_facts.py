"""Every Freeway fact checked against the frames it claims to describe: observation facts
against observation ``t``, the visible forms of transition facts against the jump between
observations ``t-1`` and ``t``."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.results.facts import VISIBLE_FACTS, step_of, visible_form
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent

CHICKEN, CAR = 0, 1  # Freeway's first two channels, the POMDP's observed ones


@pytest.fixture(scope="module")
def played() -> Explanation:
    """8 episodes x 150 steps of a random-weights agent: enough collisions to check."""
    agent = tiny_agent(seed=3)
    trajectory = run_rollouts(agent, "freeway", episodes=8, steps=150, seed=11)
    return explain(trajectory, ExplainConfig(rank=3, top_k=3, stability_refits=0))


def _rows(e: Explanation) -> np.ndarray:
    """``[L, B]`` the chicken's row read off each frame (-1 where it is not a single pixel)."""
    chicken = e.observations[:, :, CHICKEN]  # [L, B, 10, 10]
    rows = np.where(chicken.sum(axis=(2, 3)) == 1, chicken.any(axis=3).argmax(axis=2), -1)
    return np.asarray(rows)


def test_observation_facts_describe_the_frame_of_their_own_row(played: Explanation) -> None:
    e, valid = played, played.valid
    rows = _rows(e)
    assert (rows[valid] >= 0).all()
    np.testing.assert_array_equal(e.fact("chicken_row")[valid], rows[valid])
    cars = e.observations[:, :, CAR]  # [L, B, 10, 10]
    t, b = np.nonzero(valid)
    near = cars[t, b, rows[t, b], 3:6].any(axis=1)  # columns 3-5 around the chicken's column 4
    np.testing.assert_array_equal(e.fact("car_adjacent")[t, b].astype(bool), near)


def test_visible_collisions_and_scores_are_the_jumps_back_to_the_start(
    played: Explanation,
) -> None:
    e = played
    rows = _rows(e)
    both = e.valid[1:] & e.valid[:-1]  # pairs (t-1, t) inside one episode
    before, after = rows[:-1][both], rows[1:][both]
    collision = e.fact("collision_visible")[1:][both].astype(bool)
    scored = e.fact("scored_visible")[1:][both].astype(bool)
    assert collision.sum() >= 5  # the check means something
    ready = e.fact("move_ready")[:-1][both] == 1
    executed = e.fact("executed_action")[:-1][both]
    stepped_down = ready & (executed == e.action_names.index("down"))
    stepped_up = ready & (executed == e.action_names.index("up"))
    # Back at the start row from rows 1-8 (not by a step down from row 8), or still there
    # after a step up into row 8: the chicken was hit, unless it left row 1 upwards and scored.
    # Every visible collision or score is such a frame pair, and none is both.
    from_road = (before >= 1) & (before <= 8) & ~((before == 8) & stepped_down)
    jump = (after == 9) & (from_road | ((before == 9) & stepped_up))
    np.testing.assert_array_equal(collision | scored, jump)
    assert not (collision & scored).any()
    assert (before[scored] == 1).all()
    np.testing.assert_array_equal(scored, e.rewards[:-1][both] > 0)
    # The transition form sits one row earlier: row t-1 holds what a_{t-1} did.
    np.testing.assert_array_equal(e.fact("collision")[:-1][both].astype(bool), collision)


def test_the_fact_table_names_the_step_each_fact_refers_to(played: Explanation) -> None:
    assert played.all_fact_names[-2:] == ("collision_visible", "scored_visible")
    recorded = {name for name, of in VISIBLE_FACTS.items() if of in played.fact_names}
    assert recorded == {"collision_visible", "scored_visible"} <= set(played.all_fact_names)
    assert step_of("collision_visible").startswith("o_t: the transition t-1 -> t")
    assert step_of("collision").startswith("a_t: the transition t -> t+1")
    assert step_of("executed_action=up").startswith("a_t")
    assert step_of("chicken_row") == "o_t: the state observation t shows"
    np.testing.assert_array_equal(visible_form(np.array([[1], [0], [2]])), [[0], [1], [0]])
