"""Freeway's facts, read from MinAtar 1.0.15's ``freeway.Env`` (``game_facts.py`` for their
meaning).

``up_hits`` is 1 when pressing UP in this frame would get the chicken hit by a car (sent back to
the start without scoring), as ``freeway.Env.act`` plays the frame: the chicken first moves to
row ``p = max(0, pos - 1)`` if ``move_timer == 0`` (else stays, ``p = pos``); reaching row 0
scores and resets it to row 9, where no car drives (so ``up_hits`` is 0); otherwise it is hit
when some car in row ``p`` is in the chicken's column 4 now, or its timer is 0 (it moves this
frame) and its next column, ``x + sign(speed)`` wrapped into 0..9, is 4. A finished episode has
``up_hits`` 0 (the game ignores actions).
"""

from __future__ import annotations

from typing import Any

from .facts_common import FactReader

__all__ = ["READER", "START_ROW", "up_hits"]

START_ROW = 9
_CHICKEN_COLUMN = 4
_COLUMNS = 10


def up_hits(env: Any) -> bool:
    """Would UP in this frame get the chicken hit? (module docstring)

    Read from the game state alone (``cars`` as ``[x, row, timer, speed]``, ``pos``,
    ``move_timer``, ``terminal``), without stepping or copying the game.
    """
    if env.terminal:
        return False
    row = max(0, int(env.pos) - 1) if env.move_timer == 0 else int(env.pos)
    if row == 0:  # scores; the chicken restarts in row 9, which has no cars
        return False
    for x, car_row, timer, speed in env.cars:
        if car_row != row:
            continue
        moved = (x + (1 if speed > 0 else -1)) % _COLUMNS
        if x == _CHICKEN_COLUMN or (timer == 0 and moved == _CHICKEN_COLUMN):
            return True
    return False


def observe(game: Any) -> list[int]:
    """``[chicken_row, move_ready, car_adjacent, up_hits]``."""
    env = game.env
    row = int(env.pos)
    adjacent = any(car[1] == row and abs(car[0] - _CHICKEN_COLUMN) <= 1 for car in env.cars)
    return [row, int(env.move_timer == 0), int(adjacent), int(up_hits(env))]


def transition(
    before: list[int], action: str, reward: float, terminal: bool, game: Any
) -> list[int]:
    """``[scored, collision]``: a collision sends the chicken back to the start unscored."""
    row, move_ready = before[0], before[1]
    expected = row
    if move_ready and action == "up":
        expected = max(0, row - 1)
    elif move_ready and action == "down":
        expected = min(START_ROW, row + 1)
    scored = reward > 0
    after = int(game.env.pos)
    collision = (not scored) and after == START_ROW and expected != START_ROW
    return [int(scored), int(collision)]


READER = FactReader(observe, transition)
