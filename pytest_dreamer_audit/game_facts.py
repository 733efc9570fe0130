"""The game facts each MinAtar game records, with what they mean and what a frame shows of them.

The one registry of facts per game: ``rollout/envs.py`` records them in this order (observation
facts, then the transition facts every game has, then the game's own), ``results/facts.py``
derives the visible forms from it, and the README's fact table is this module in words.

Row ``t`` of a rollout holds observation ``o_t`` and the action ``a_t`` chosen after it:

* an **observation** fact describes the state ``o_t`` shows;
* a **transition** fact describes what happened when ``a_t`` ran (shown by ``o_{t+1}``); the
  ones an observation can show have a visible form ``name_visible`` one row later
  (``results/facts.py``), the ones that always end the episode do not (no observation follows).

``screen`` says what a single frame shows of a fact: ``"both"`` (the MDP and the POMDP frame),
``"mdp"`` (only the full frame: the POMDP drops the channel, so a POMDP agent needs memory) or
``"none"`` (no frame: a timer or a counterfactual the agent must infer).

Pure Python: the plugin reads it at start-up without NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ACTION_FACTS",
    "GAME_FACTS",
    "SCREENS",
    "STEPS",
    "Fact",
]

STEPS = ("observation", "transition")
SCREENS = ("both", "mdp", "none")


@dataclass(frozen=True)
class Fact:
    """One recorded game fact.

    Attributes:
        name: the fact's name (``"ball_row"``).
        step: ``"observation"`` (the state ``o_t`` shows) or ``"transition"`` (what ``a_t`` did).
        meaning: what the integer means, with its units and range.
        screen: what one frame shows of it: ``"both"``, ``"mdp"`` or ``"none"`` (module docstring).
        visible: a transition fact has a visible form ``name_visible`` (the next observation
            shows it); False for observation facts and for transitions that end the episode.
    """

    name: str
    step: str
    meaning: str
    screen: str = "both"
    visible: bool = False

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise ValueError(f"fact {self.name!r}: step {self.step!r} is not one of {STEPS}")
        if self.screen not in SCREENS:
            raise ValueError(f"fact {self.name!r}: screen {self.screen!r} is not one of {SCREENS}")
        if self.visible and self.step != "transition":
            raise ValueError(f"fact {self.name!r}: only a transition fact has a visible form")


def _obs(name: str, meaning: str, screen: str = "both") -> Fact:
    return Fact(name, "observation", meaning, screen)


def _move(name: str, meaning: str, *, visible: bool) -> Fact:
    return Fact(name, "transition", meaning, "both" if visible else "none", visible)


_NOOP_LOSES = (
    "1 when NOOP in this frame would end the episode (the game's own step played on a copy of "
    "its state, random numbers included, assuming NOOP is what runs)"
)

ACTION_FACTS = (
    Fact(
        "executed_action",
        "transition",
        "the minimal-set index of the action that really ran (sticky actions repeat the "
        "previous one with probability 0.1)",
        "none",
    ),
    Fact("sticky", "transition", "1 when the executed action differs from the chosen one", "none"),
)
"""Every game's facts about what action ``a_t`` did, recorded after its observation facts."""

_FACTS: dict[str, tuple[Fact, ...]] = {
    "asterix": (
        _obs(
            "enemy_distance",
            "cells from the player to the nearest enemy, |dx| + |dy|, capped at 10 (10 also "
            "when no enemy is on screen)",
        ),
        _obs("enemy_adjacent", "1 when an enemy is in the 3 x 3 square around the player"),
        _obs("gold_adjacent", "1 when gold is in the 3 x 3 square around the player"),
        _obs(
            "enemy_approaching",
            "1 when an enemy in the player's row moves towards the player (the direction is "
            "the trail channel, which the POMDP drops)",
            "mdp",
        ),
        _obs("noop_loses", _NOOP_LOSES, "none"),
        *ACTION_FACTS,
        _move("collected", "1 when the step picked up gold (reward > 0)", visible=True),
        _move("hit", "1 when an enemy touched the player: the episode ended", visible=False),
    ),
    "breakout": (
        _obs("ball_row", "the ball's row, 0 (top) to 9"),
        _obs("ball_column", "the ball's column, 0 (left) to 9"),
        _obs("paddle_column", "the paddle's column, 0 to 9 (the paddle is in row 9)"),
        _obs(
            "ball_moving_down",
            "1 when the ball's next move is downwards (the trail channel, which the POMDP "
            "drops, shows the ball's last cell)",
            "mdp",
        ),
        _obs("ball_above_paddle", "1 when the ball is in the paddle's column"),
        _obs(
            "miss_coming",
            "1 when the ball, flying on without hitting a brick, reaches the bottom past a "
            "paddle that stays where it is (depends on the ball's direction)",
            "mdp",
        ),
        _obs("bricks_left", "bricks on the screen, 0 to 30"),
        _obs(
            "noop_loses",
            "1 when NOOP in this frame would end the episode: a miss is coming and the ball is "
            "in row 8 (the ball moves on whatever the paddle does)",
            "mdp",
        ),
        *ACTION_FACTS,
        _move("brick_hit", "1 when the ball broke a brick (reward > 0)", visible=True),
        _move("missed", "1 when the ball passed the paddle: the episode ended", visible=False),
    ),
    "freeway": (
        _obs("chicken_row", "the chicken's row, 0 (top) to 9 (start)"),
        _obs(
            "move_ready",
            "1 when the move timer is 0, so an up or down action takes effect this frame",
            "none",
        ),
        _obs("car_adjacent", "1 when a car is in the chicken's row within one column of it"),
        _obs(
            "up_hits",
            "1 when UP in this frame would get the chicken hit by a car (depends on the cars' "
            "timers and directions, which only the MDP's speed channels hint at)",
            "none",
        ),
        *ACTION_FACTS,
        _move("scored", "1 when the chicken reached the top (reward > 0)", visible=True),
        _move(
            "collision",
            "1 when a car hit the chicken, sending it back to the start unscored",
            visible=True,
        ),
    ),
    "seaquest": (
        _obs("sub_row", "the submarine's row, 0 (surface) to 8"),
        _obs("sub_column", "the submarine's column (its front), 0 to 9"),
        _obs("oxygen", "oxygen left, 0 to 200 (the gauge shows oxygen * 10 // 200 cells)"),
        _obs("low_oxygen", "1 when the oxygen gauge shows at most 2 of its 10 cells"),
        _obs("divers_carried", "divers on board, 0 to 6 (the diver gauge)"),
        _obs("at_surface", "1 when the submarine is in row 0"),
        _obs(
            "enemy_adjacent",
            "1 when an enemy fish, enemy submarine or enemy bullet is in the 3 x 3 square "
            "around the submarine's front",
        ),
        _obs(
            "enemy_approaching",
            "1 when an enemy fish or submarine in the submarine's row moves towards it (the "
            "direction is the trail channel, which the POMDP drops)",
            "mdp",
        ),
        _obs("shot_ready", "1 when the shot timer is 0, so FIRE shoots this frame", "none"),
        _obs("noop_loses", _NOOP_LOSES, "none"),
        *ACTION_FACTS,
        _move(
            "scored",
            "1 when the step earned a reward: an enemy shot, or surfacing with six divers",
            visible=True,
        ),
        _move(
            "died",
            "1 when the episode ended: hit, out of oxygen, or surfacing without a diver",
            visible=False,
        ),
    ),
    "space_invaders": (
        _obs("player_column", "the cannon's column, 0 to 9 (it is in row 9)"),
        _obs("aliens_left", "aliens on the screen, 1 to 24"),
        _obs("lowest_alien_row", "the row of the lowest alien, 0 to 9"),
        _obs(
            "aliens_moving_right",
            "1 when the aliens move right (the alien_left / alien_right channels, which the "
            "POMDP drops)",
            "mdp",
        ),
        _obs("bullet_above", "1 when an enemy bullet is in the cannon's column"),
        _obs("shot_ready", "1 when the shot timer is 0, so FIRE shoots this frame", "none"),
        _obs("noop_loses", _NOOP_LOSES, "none"),
        *ACTION_FACTS,
        _move("alien_hit", "1 when the step shot an alien (reward > 0)", visible=True),
        _move(
            "hit",
            "1 when an enemy bullet or an alien reached the cannon: the episode ended",
            visible=False,
        ),
    ),
}

GAME_FACTS = MappingProxyType(_FACTS)
"""Each game's facts in the order of the facts' last axis: observation facts, then
:data:`ACTION_FACTS`, then the game's own transition facts."""
