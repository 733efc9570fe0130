"""The five MinAtar games: names, channels, channel subsets of the POMDP variants, action sets.

Torch-free and gymnasium-free, so that the plugin can validate a ``--dreamer-game`` option at
start-up without importing either.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .errors import PYTHON, ConfigError, Spelling, UnknownGameError
from .game_facts import ACTION_FACTS, GAME_FACTS, Fact

__all__ = [
    "FREEWAY_TRANSITION_FACTS",
    "Fact",
    "GENERIC_TRANSITION_FACTS",
    "MAX_SEED",
    "check_episode_seeds",
    "GAMES",
    "GameSpec",
    "GameTarget",
    "check_agent_fits",
    "game_spec",
    "resolve_target",
]


MAX_SEED = 2**32 - 1
"""MinAtar seeds its games with 32-bit integers: every episode seed is in ``[0, MAX_SEED]``."""


def check_episode_seeds(seed: int, episodes: int) -> None:
    """The one rule for a rollout's seeds ``seed .. seed + episodes - 1``: all in
    ``[0, MAX_SEED]``; ConfigError saying how to fix it otherwise."""
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    last = seed + episodes - 1
    if seed < 0 or last > MAX_SEED:
        raise ConfigError(
            f"episode seeds run from {seed} to {last}, outside MinAtar's [0, {MAX_SEED}]; use a "
            f"seed from 0 to {max(MAX_SEED - episodes + 1, 0)}"
        )


GENERIC_TRANSITION_FACTS = tuple(fact.name for fact in ACTION_FACTS)
"""Facts every game records about what action ``a_t`` did (``rollout/envs.py``)."""
FREEWAY_TRANSITION_FACTS = tuple(
    fact.name
    for fact in GAME_FACTS["freeway"]
    if fact.step == "transition" and fact not in ACTION_FACTS
)
"""Freeway's own facts about the transition ``t -> t+1`` (shown by observation ``t+1``)."""


@dataclass(frozen=True)
class GameSpec:
    """Static facts about one MinAtar game.

    Attributes:
        name: MinAtar's name (``"space_invaders"``).
        gym_id: the gymnasium id with the minimal action set (``"MinAtar/SpaceInvaders-v1"``).
        channels: observation channels of the fully observable (MDP) game.
        pomdp_channels: the channels the POMDP variant keeps, in order.
        action_names: the minimal action set, by MinAtar's action letters' meaning.
        channel_names: the name of each MDP channel, in MinAtar's order (``Env.channels``).
    """

    name: str
    gym_id: str
    channels: int
    pomdp_channels: tuple[int, ...]
    action_names: tuple[str, ...]
    channel_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.channel_names) != self.channels:
            raise ValueError(f"{self.name}: {len(self.channel_names)} names for {self.channels}")

    def observed_channels(self, pomdp: bool) -> tuple[int, ...]:
        """Channels the agent sees: all of them, or the POMDP subset."""
        return self.pomdp_channels if pomdp else tuple(range(self.channels))

    def observed_channel_names(self, pomdp: bool) -> tuple[str, ...]:
        """The name of each channel the agent sees, in the order of the observations' axis."""
        return tuple(self.channel_names[c] for c in self.observed_channels(pomdp))

    @property
    def facts(self) -> tuple[Fact, ...]:
        """The facts a rollout records, in the order of the facts' last axis (``game_facts``)."""
        return GAME_FACTS[self.name]

    @property
    def fact_names(self) -> tuple[str, ...]:
        return tuple(fact.name for fact in self.facts)

    @property
    def observation_fact_names(self) -> tuple[str, ...]:
        """The facts of the state ``o_t`` shows; they come first on the facts' last axis."""
        return tuple(fact.name for fact in self.facts if fact.step == "observation")

    @property
    def actions(self) -> int:
        """Size of the minimal action set."""
        return len(self.action_names)


GAMES: dict[str, GameSpec] = {
    spec.name: spec
    for spec in (
        GameSpec(
            "asterix",
            "MinAtar/Asterix-v1",
            4,
            (0, 1, 3),
            ("noop", "left", "up", "right", "down"),
            ("player", "enemy", "trail", "gold"),
        ),
        GameSpec(
            "breakout",
            "MinAtar/Breakout-v1",
            4,
            (0, 1, 3),
            ("noop", "left", "right"),
            ("paddle", "ball", "trail", "brick"),
        ),
        GameSpec(
            "freeway",
            "MinAtar/Freeway-v1",
            7,
            (0, 1),
            ("noop", "up", "down"),
            ("chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5"),
        ),
        GameSpec(
            "seaquest",
            "MinAtar/Seaquest-v1",
            10,
            (0, 1, 2, 4, 5, 6, 7, 8, 9),
            ("noop", "left", "up", "right", "down", "fire"),
            # MinAtar spells the gauges "guage"; the names here are for people.
            (
                "sub_front",
                "sub_back",
                "friendly_bullet",
                "trail",
                "enemy_bullet",
                "enemy_fish",
                "enemy_sub",
                "oxygen_gauge",
                "diver_gauge",
                "diver",
            ),
        ),
        GameSpec(
            "space_invaders",
            "MinAtar/SpaceInvaders-v1",
            6,
            (0, 1, 4, 5),
            ("noop", "left", "right", "fire"),
            ("cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"),
        ),
    )
}
"""Every supported game by name."""


def game_spec(name: str) -> GameSpec:
    """The spec of game ``name``; :class:`UnknownGameError` lists the valid names otherwise."""
    spec = GAMES.get(name)
    if spec is None:
        close = difflib.get_close_matches(str(name).lower(), list(GAMES), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownGameError(
            f"unknown game {name!r}{hint}; MinAtar has {', '.join(sorted(GAMES))} "
            "(use the lower-case name with an underscore, e.g. 'space_invaders')"
        )
    return spec


@dataclass(frozen=True)
class GameTarget:
    """The game an audit plays and whether the agent sees the POMDP channel subset."""

    spec: GameSpec
    pomdp: bool

    @property
    def channels(self) -> int:
        """Observation channels the agent sees."""
        return len(self.spec.observed_channels(self.pomdp))

    @property
    def variant(self) -> str:
        return "POMDP" if self.pomdp else "MDP"


def resolve_target(
    game: str | None,
    pomdp: bool | None,
    *,
    recorded_game: str | None,
    recorded_pomdp: bool | None,
    source: str,
    spelling: Spelling = PYTHON,
) -> GameTarget:
    """The requested game, else the one the checkpoint records; POMDP likewise, else True.

    ``source`` names the checkpoint in the message when it records no game and none was asked
    for; ``spelling`` says how the user passes one at this edge.
    """
    name = game or recorded_game
    if not name:
        raise ConfigError(
            f"{source} records no game (a reference-format file); pass "
            f"{spelling.option('game', 'freeway')} or another of {', '.join(sorted(GAMES))}"
        )
    flag = pomdp if pomdp is not None else (recorded_pomdp if recorded_pomdp is not None else True)
    return GameTarget(game_spec(name), flag)


def check_agent_fits(
    target: GameTarget, channels: int, actions: int, *, source: str, spelling: Spelling = PYTHON
) -> None:
    """Refuse an agent whose input channels or action count do not match the game it plays."""
    spec = target.spec
    if channels != target.channels:
        other = len(spec.observed_channels(not target.pomdp))
        hint = (
            f"pass {spelling.option('pomdp', not target.pomdp)}"
            if other == channels
            else f"check {spelling.name('game')} and {spelling.name('pomdp')}"
        )
        raise ConfigError(
            f"{source} takes {channels} observation channels, but {spec.name} ({target.variant}) "
            f"has {target.channels}; {hint}"
        )
    if actions != spec.actions:
        raise ConfigError(
            f"{source} has {actions} actions, but {spec.name}'s minimal action set has "
            f"{spec.actions} ({', '.join(spec.action_names)}); it was trained on another game "
            f"(check {spelling.name('game')})"
        )
