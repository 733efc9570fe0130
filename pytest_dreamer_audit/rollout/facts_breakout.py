"""Breakout's facts, read from MinAtar 1.0.15's ``breakout.Env`` (``game_facts.py`` for their
meaning).

The ball moves one cell diagonally per frame in direction ``ball_dir`` (0 up-left, 1 up-right,
2 down-right, 3 down-left), reflected by the walls and by bricks; on reaching row 9 it bounces
when the paddle (``pos``, after the action) is in its old or new column, else the episode ends.
Bricks only ever fill rows 1-3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .facts_common import FactReader

__all__ = ["READER", "miss_coming"]

_DOWN = (2, 3)


def miss_coming(env: Any) -> bool:
    """Does the ball reach row 9 past a paddle that stays in its column? False when the ball
    moves up, or hits a brick first (it then bounces back up), or the episode is over."""
    if env.terminal or env.ball_dir not in _DOWN:
        return False
    x, y, direction, strike = int(env.ball_x), int(env.ball_y), int(env.ball_dir), env.strike
    for _ in range(10):  # at most 9 rows to the bottom
        new_x = x + (-1 if direction in (0, 3) else 1)
        new_y = y + 1
        if not 0 <= new_x <= 9:
            new_x = min(max(new_x, 0), 9)
            direction = (1, 0, 3, 2)[direction]
        if env.brick_map[new_y, new_x] == 1:
            if not strike:
                return False
        else:
            strike = False
            if new_y == 9:
                return env.pos not in (x, new_x)
        x, y = new_x, new_y
    return False


def observe(game: Any) -> list[int]:
    env = game.env
    coming = miss_coming(env)
    return [
        int(env.ball_y),
        int(env.ball_x),
        int(env.pos),
        int(env.ball_dir in _DOWN),
        int(env.ball_x == env.pos),
        int(coming),
        int(np.count_nonzero(env.brick_map)),
        # NOOP loses exactly when a miss is one row away (the ball moves on regardless).
        int(coming and env.ball_y == 8),
    ]


def transition(
    before: list[int], action: str, reward: float, terminal: bool, game: Any
) -> list[int]:
    """``[brick_hit, missed]``: the only reward is a broken brick, the only end a missed ball."""
    return [int(reward > 0), int(terminal)]


READER = FactReader(observe, transition)
