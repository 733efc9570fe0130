"""One parser for every name a fact row goes by, so that what the report shows can be asserted.

The report's fact tables name their rows three ways (``results/semantics.py`` ``table_facts``):
a fact (``ball_row``, ``brick_hit_visible``), a categorical fact split by value
(``executed_action=left``), and a fact compared with a number (``bricks_left<=10``). Every
assertion's ``event`` and ``fact`` argument takes any of them, through
:meth:`Explanation.fact <pytest_dreamer_audit.results.explanation.Explanation.fact>`, which
calls :func:`parse_event_name` for the names that are not plain facts.

Grammar: ``FACT`` | ``FACT OP VALUE`` with ``OP`` one of ``= == != < <= > >=`` (``=`` and ``==``
mean the same) and ``VALUE`` a number, or for ``executed_action`` one of the game's action names
(or its index). Spaces around the operator are allowed. A wrong name is refused with the names
there are, and "did you mean" when one is close.

NumPy and the foundation only.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = [
    "ACTION_FACT",
    "OPERATORS",
    "EventName",
    "did_you_mean",
    "fact_of",
    "parse_event_name",
]

ACTION_FACT = "executed_action"
"""The categorical fact whose values are the game's actions (``executed_action=left``)."""

OPERATORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
"""The comparisons a name may make, longest spelling first (the order the pattern tries)."""

_PATTERN = re.compile(
    r"^\s*(?P<fact>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>==|!=|<=|>=|=|<|>)\s*(?P<value>\S.*?)\s*$"
)
_EXAMPLES = "'executed_action=left', 'chicken_row<=2'"


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fact_of(text: str) -> str:
    """The fact a row name reads: ``"executed_action=left"`` -> ``"executed_action"``."""
    match = _PATTERN.match(text)
    return match["fact"] if match else text.strip()


@dataclass(frozen=True)
class EventName:
    """A parsed row name: ``fact``, compared (``op``) with ``value`` when ``op`` is not None.

    Attributes:
        text: the name as given. fact: the fact it reads (recorded or visible).
        op: one of :data:`OPERATORS`, or None for the fact itself.
        value: the number compared with (an action's index for ``executed_action``).
    """

    text: str
    fact: str
    op: str | None = None
    value: float = 0.0

    def evaluate(self, values: np.ndarray) -> np.ndarray:
        """The fact's ``[L, B]`` values, or where the comparison holds as ``[L, B]`` int32 0/1."""
        if self.op is None:
            return values
        return OPERATORS[self.op](values, self.value).astype(np.int32)


def parse_event_name(
    text: str, *, game: str, facts: Sequence[str], actions: Sequence[str]
) -> EventName:
    """Parse one row name of ``game``, whose facts (visible forms included) are ``facts`` and
    whose minimal action set is ``actions``.

    Raises:
        ConfigError: the fact is not one of ``facts`` (listed, with "did you mean"), the value
            is not a number, or not one of ``actions`` for ``executed_action``.
    """
    if not isinstance(text, str):
        raise ConfigError(f"a fact name must be a string, got {type(text).__name__}")
    match = _PATTERN.match(text)
    fact = fact_of(text)
    if fact not in facts:
        raise ConfigError(
            f"{game} records no fact {fact!r}{did_you_mean(fact, facts)}; it has "
            f"{', '.join(facts)} (compare one with a value as in {_EXAMPLES})"
        )
    if match is None:
        return EventName(text, fact)
    op, raw = match["op"], match["value"]
    if fact == ACTION_FACT and raw in actions:
        value = float(actions.index(raw))
    else:
        try:
            value = float(raw)
        except ValueError:
            if fact == ACTION_FACT:
                raise ConfigError(
                    f"{text!r}: {game} has no action {raw!r}{did_you_mean(raw, actions)}; its "
                    f"actions are {', '.join(actions)}"
                ) from None
            raise ConfigError(
                f"{text!r}: {fact} is compared with {raw!r}, which is not a number; write it "
                f"as in {fact}>=1"
            ) from None
    if not np.isfinite(value):
        raise ConfigError(f"{text!r}: compare {fact} with a finite number, not {raw!r}")
    return EventName(text, fact, op, value)
