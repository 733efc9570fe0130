"""Seaquest's facts, read from MinAtar 1.0.15's ``seaquest.Env`` (``game_facts.py`` for their
meaning).

The submarine's front is at ``(sub_x, sub_y)``; enemies, bullets and divers are lists of
``[x, row, moves_right, ...]``; ``oxygen`` runs from 200 down, ``diver_count`` counts the divers
on board, ``shot_timer`` the frames until FIRE shoots again.
"""

from __future__ import annotations

import copy
from typing import Any

from .facts_common import FactReader, noop_loses

__all__ = ["READER"]

MAX_OXYGEN = 200
_LOW_GAUGE = 2  # lit oxygen-gauge cells at or below which the oxygen counts as low


def _clone(env: Any) -> Any:
    twin = copy.copy(env)
    for name in ("f_bullets", "e_bullets", "e_fish", "e_subs", "divers"):
        setattr(twin, name, [list(item) for item in getattr(env, name)])
    return twin


def observe(game: Any) -> list[int]:
    env = game.env
    x, y = int(env.sub_x), int(env.sub_y)
    oxygen = max(0, int(env.oxygen))
    threats = env.e_fish + env.e_subs + env.e_bullets
    adjacent = any(abs(t[0] - x) <= 1 and abs(t[1] - y) <= 1 for t in threats)
    enemies = env.e_fish + env.e_subs
    approaching = any(e[1] == y and (e[0] < x if e[2] else e[0] > x) for e in enemies)
    return [
        y,
        x,
        oxygen,
        int(oxygen * 10 // MAX_OXYGEN <= _LOW_GAUGE),
        # The game lets the count reach -1 after surfacing with six; the gauge shows none.
        max(0, int(env.diver_count)),
        int(y == 0),
        int(adjacent),
        int(approaching),
        int(env.shot_timer == 0),
        int(noop_loses(game, _clone, draws=env.e_spawn_timer == 0 or env.d_spawn_timer == 0)),
    ]


def transition(
    before: list[int], action: str, reward: float, terminal: bool, game: Any
) -> list[int]:
    """``[scored, died]``."""
    return [int(reward > 0), int(terminal)]


READER = FactReader(observe, transition)
