"""What every game's fact reader shares: its interface and the NOOP counterfactual.

A reader turns MinAtar's game state into the integers of ``game_facts.GAME_FACTS`` for one game
(``rollout/facts_<game>.py``). It reads the ``Environment`` behind ``env.unwrapped.game``: its
``env`` (the game's ``Env``, whose fields the MinAtar 1.0.15 sources name) and ``random`` (the
generator the game and its sticky actions share).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FactReader", "noop_loses"]

_SCRATCH = np.random.RandomState(0)
"""The copies' generator (a new ``RandomState()`` would read OS entropy on every frame)."""


class FactReader(NamedTuple):
    """One game's fact readers.

    Attributes:
        observe: ``observe(game)`` -> the observation facts of the state the game is in now.
        transition: ``transition(before, action, reward, terminal, game)`` -> the game's own
            transition facts of the step just played: ``before`` the observation facts of the
            state it started from, ``action`` the name of the action that ran, ``game`` after it.
    """

    observe: Callable[[Any], list[int]]
    transition: Callable[[list[int], str, float, bool, Any], list[int]]


def noop_loses(game: Any, clone: Callable[[Any], Any], *, draws: bool = True) -> bool:
    """Would NOOP in this frame end the episode? The game's own ``act`` on a copy of its state.

    ``clone(env)`` copies the game's ``Env`` so that ``act`` on the copy changes nothing of the
    original. Where the step ``draws`` random numbers (a spawn is due), the copy plays with the
    generator's state, after the number the sticky-action check of ``Environment.act`` draws
    first, so its spawns are the ones the real step would make if NOOP ran; elsewhere copying
    that state (most of the cost) is skipped. A finished episode gives False (the game ignores
    actions).
    """
    env = game.env
    if env.terminal:
        return False
    copy = clone(env)
    copy.random = _SCRATCH  # one generator, whose state is set only when it matters
    if draws:
        _SCRATCH.set_state(game.random.get_state())
        _SCRATCH.rand()  # Environment.act's sticky-action draw comes before the game's step
    copy.act(copy.action_map.index("n"))
    return bool(copy.terminal)
