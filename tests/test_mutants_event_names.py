"""Row names (``results/event_names.py``) pinned against the mutants that survived ``python
tests/run_mutation.py pytest_dreamer_audit/results/event_names.py --tests ...`` (issue 35):
the parsed name of a plain fact (its text as given, its fact), the text kept for a
comparison, the type a non-string name is refused with, and a comparison's int32 0/1."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.event_names import EventName, parse_event_name

_FACTS = ("ball_row", "bricks_left", "executed_action")
_ACTIONS = ("noop", "fire", "right", "left")


def _parse(text: str) -> EventName:
    return parse_event_name(text, game="breakout", facts=_FACTS, actions=_ACTIONS)


@pytest.mark.parametrize("text", ["ball_row", "  ball_row ", "executed_action"])
def test_a_plain_fact_parses_to_itself_with_its_text_kept(text: str) -> None:
    # kills parse_event_name_17 (text None), _18 (fact None), _19, _20 (fact missing)
    parsed = _parse(text)
    assert parsed == EventName(text, text.strip(), None, 0.0)
    assert parsed.text == text
    assert parsed.fact == text.strip()
    assert parsed.op is None
    values = np.array([[3, 0], [1, 7]])
    assert parsed.evaluate(values) is values  # the fact's values themselves


@pytest.mark.parametrize(
    ("text", "fact", "op", "value"),
    [
        ("bricks_left<=10", "bricks_left", "<=", 10.0),
        (" ball_row != 2 ", "ball_row", "!=", 2.0),
        ("executed_action=left", "executed_action", "=", 3.0),
    ],
)
def test_a_comparison_keeps_the_text_it_was_given(
    text: str, fact: str, op: str, value: float
) -> None:
    # kills parse_event_name_47 (text None)
    assert _parse(text) == EventName(text, fact, op, value)


@pytest.mark.parametrize(("name", "kind"), [(3, "int"), (None, "NoneType"), (b"ball_row", "bytes")])
def test_a_name_that_is_not_a_string_is_refused_with_its_type(name: object, kind: str) -> None:
    # kills parse_event_name_3 (the message always says NoneType)
    with pytest.raises(ConfigError, match=rf"^a fact name must be a string, got {kind}$"):
        parse_event_name(name, game="breakout", facts=_FACTS, actions=_ACTIONS)  # type: ignore[arg-type]


def test_a_comparison_evaluates_to_int32_zeros_and_ones() -> None:
    # kills EventName.evaluate_2 (astype(None): float64 0.0/1.0)
    values = np.array([[0.0, 10.0], [10.5, 11.0]])
    out = _parse("bricks_left<=10").evaluate(values)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[1, 1], [0, 0]])
    out = _parse("bricks_left>10").evaluate(values)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 0], [1, 1]])
