"""Asterix's facts, read from MinAtar 1.0.15's ``asterix.Env`` (``game_facts.py`` for their
meaning).

``entities`` holds one slot per row 1-8: ``None`` or ``[x, row, moves_right, is_gold]``; the
player is at ``(player_x, player_y)``.
"""

from __future__ import annotations

import copy
from typing import Any

from .facts_common import FactReader, noop_loses

__all__ = ["READER"]

_FAR = 10


def _clone(env: Any) -> Any:
    twin = copy.copy(env)
    twin.entities = [None if e is None else list(e) for e in env.entities]
    return twin


def observe(game: Any) -> list[int]:
    env = game.env
    x, y = int(env.player_x), int(env.player_y)
    live = [e for e in env.entities if e is not None]
    enemies = [e for e in live if not e[3]]
    gold = [e for e in live if e[3]]

    def near(e: list[Any]) -> bool:
        return abs(e[0] - x) <= 1 and abs(e[1] - y) <= 1

    distance = min((abs(e[0] - x) + abs(e[1] - y) for e in enemies), default=_FAR)
    approaching = any(e[1] == y and (e[0] < x if e[2] else e[0] > x) for e in enemies)
    return [
        min(int(distance), _FAR),
        int(any(near(e) for e in enemies)),
        int(any(near(e) for e in gold)),
        int(approaching),
        int(noop_loses(game, _clone, draws=env.spawn_timer == 0)),
    ]


def transition(
    before: list[int], action: str, reward: float, terminal: bool, game: Any
) -> list[int]:
    """``[collected, hit]``: gold is the only reward, an enemy the only end."""
    return [int(reward > 0), int(terminal)]


READER = FactReader(observe, transition)
