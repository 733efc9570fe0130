"""Space Invaders' facts, read from MinAtar 1.0.15's ``space_invaders.Env`` (``game_facts.py``
for their meaning).

The cannon is at column ``pos`` of row 9; ``alien_map``, ``f_bullet_map`` and ``e_bullet_map``
are ``[10, 10]`` grids, ``alien_dir`` is -1 (left) or 1 (right), ``shot_timer`` counts the frames
until FIRE shoots again.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .facts_common import FactReader, noop_loses

__all__ = ["READER"]


def _clone(env: Any) -> Any:
    twin = copy.copy(env)
    for name in ("alien_map", "f_bullet_map", "e_bullet_map"):
        setattr(twin, name, getattr(env, name).copy())
    return twin


def observe(game: Any) -> list[int]:
    env = game.env
    rows = np.flatnonzero(env.alien_map.any(axis=1))
    return [
        int(env.pos),
        int(np.count_nonzero(env.alien_map)),
        int(rows.max()) if rows.size else 0,
        int(env.alien_dir > 0),
        int(env.e_bullet_map[:, env.pos].any()),
        int(env.shot_timer == 0),
        int(noop_loses(game, _clone, draws=False)),
    ]


def transition(
    before: list[int], action: str, reward: float, terminal: bool, game: Any
) -> list[int]:
    """``[alien_hit, hit]``."""
    return [int(reward > 0), int(terminal)]


READER = FactReader(observe, transition)
