"""Every row name the report shows is a name the assertions take; a wrong one is explained."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError, UnknownGameError
from pytest_dreamer_audit.games import game_spec
from pytest_dreamer_audit.results.event_names import parse_event_name
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.facts import step_of
from pytest_dreamer_audit.results.semantics import event_mask, fact_values, table_facts
from pytest_dreamer_audit.testing import fake_explanation


@pytest.fixture(scope="module")
def breakout() -> Explanation:
    e = fake_explanation(game="breakout", steps=20, episodes=3)
    rng = np.random.default_rng(1)
    names = e.fact_names
    e.facts[..., names.index("executed_action")] = rng.integers(0, 3, e.valid.shape)
    e.facts[..., names.index("ball_row")] = rng.integers(0, 10, e.valid.shape)
    e.facts[..., names.index("brick_hit")] = rng.random(e.valid.shape) < 0.3
    return e


def test_every_table_row_name_is_an_event(breakout: Explanation) -> None:
    rows = table_facts(breakout)
    assert "executed_action=left" in [name for name, _, _ in rows]
    for name, values, _ in rows:
        np.testing.assert_array_equal(event_mask(breakout, name), np.asarray(values) != 0)
        np.testing.assert_array_equal(breakout.fact(name), values)


def test_actions_and_comparisons_select_their_steps(breakout: Explanation) -> None:
    executed = breakout.fact("executed_action")
    left = breakout.action_names.index("left")
    for name in ("executed_action=left", "executed_action == left", f"executed_action={left}"):
        np.testing.assert_array_equal(event_mask(breakout, name), executed == left)
    rows = breakout.fact("ball_row")
    cases = {"ball_row>=5": rows >= 5, "ball_row<3": rows < 3, "ball_row != 0": rows != 0,
             "ball_row==4": rows == 4, "ball_row<=2.5": rows <= 2}  # fmt: skip
    for name, expected in cases.items():
        np.testing.assert_array_equal(event_mask(breakout, name), expected)
        np.testing.assert_array_equal(fact_values(breakout, name), expected.astype(float))
    hits = breakout.fact("brick_hit")
    np.testing.assert_array_equal(breakout.fact("brick_hit_visible>0")[1:], hits[:-1] > 0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bal_row", r"breakout records no fact 'bal_row' \(did you mean 'ball_row'\?\); it has "
         r"ball_row, ball_column, .*brick_hit_visible"),
        ("bal_row>=3", r"no fact 'bal_row' \(did you mean 'ball_row'\?\)"),
        ("executed_action=jump", r"breakout has no action 'jump'; its actions are noop, left, "
         "right"),
        ("executed_action=lefft", r"no action 'lefft' \(did you mean 'left'\?\)"),
        ("ball_row>=high", r"'ball_row>=high': ball_row is compared with 'high', which is not a"),
        ("ball_row>=nan", "a finite number"),
        ("collision_visible", "records no fact 'collision_visible'"),
    ],
)  # fmt: skip
def test_a_wrong_name_lists_the_names_there_are(
    breakout: Explanation, name: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        event_mask(breakout, name)


def test_every_name_refers_to_its_facts_step() -> None:
    assert step_of("executed_action=left").startswith("a_t")
    assert step_of("brick_hit >= 1").startswith("a_t")
    assert step_of("brick_hit_visible>0").startswith("o_t: the transition t-1 -> t")
    assert step_of("ball_row<=2") == "o_t: the state observation t shows"


def test_the_parser_alone() -> None:
    spec = game_spec("freeway")
    event = parse_event_name("chicken_row <= 2", game="freeway", facts=spec.fact_names,
                             actions=spec.action_names)  # fmt: skip
    assert (event.fact, event.op, event.value) == ("chicken_row", "<=", 2.0)
    np.testing.assert_array_equal(event.evaluate(np.array([[1], [3]])), [[1], [0]])
    with pytest.raises(ConfigError, match="must be a string"):
        parse_event_name(3, game="freeway", facts=(), actions=())  # type: ignore[arg-type]


def test_a_game_typo_gets_did_you_mean() -> None:
    with pytest.raises(UnknownGameError, match=r"unknown game 'breakot' \(did you mean 'breakout'"):
        game_spec("breakot")
