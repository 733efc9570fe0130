"""The five MinAtar games: names, channel subsets of the POMDP variants, action sets.

Torch-free and gymnasium-free, so that the plugin can validate a ``--dreamer-game`` option at
start-up without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownGameError

__all__ = ["GAMES", "GameSpec", "game_spec"]


@dataclass(frozen=True)
class GameSpec:
    """Static facts about one MinAtar game.

    Attributes:
        name: MinAtar's name (``"space_invaders"``).
        gym_id: the gymnasium id with the minimal action set (``"MinAtar/SpaceInvaders-v1"``).
        channels: observation channels of the fully observable (MDP) game.
        pomdp_channels: the channels the POMDP variant keeps, in order.
        action_names: the minimal action set, by MinAtar's action letters' meaning.
    """

    name: str
    gym_id: str
    channels: int
    pomdp_channels: tuple[int, ...]
    action_names: tuple[str, ...]

    def observed_channels(self, pomdp: bool) -> tuple[int, ...]:
        """Channels the agent sees: all of them, or the POMDP subset."""
        return self.pomdp_channels if pomdp else tuple(range(self.channels))

    @property
    def actions(self) -> int:
        """Size of the minimal action set."""
        return len(self.action_names)


GAMES: dict[str, GameSpec] = {
    spec.name: spec
    for spec in (
        GameSpec(
            "asterix", "MinAtar/Asterix-v1", 4, (0, 1, 3), ("noop", "left", "up", "right", "down")
        ),
        GameSpec("breakout", "MinAtar/Breakout-v1", 4, (0, 1, 3), ("noop", "left", "right")),
        GameSpec("freeway", "MinAtar/Freeway-v1", 7, (0, 1), ("noop", "up", "down")),
        GameSpec(
            "seaquest",
            "MinAtar/Seaquest-v1",
            10,
            (0, 1, 2, 4, 5, 6, 7, 8, 9),
            ("noop", "left", "up", "right", "down", "fire"),
        ),
        GameSpec(
            "space_invaders",
            "MinAtar/SpaceInvaders-v1",
            6,
            (0, 1, 4, 5),
            ("noop", "left", "right", "fire"),
        ),
    )
}
"""Every supported game by name."""


def game_spec(name: str) -> GameSpec:
    """The spec of game ``name``; :class:`UnknownGameError` lists the valid names otherwise."""
    spec = GAMES.get(name)
    if spec is None:
        raise UnknownGameError(
            f"unknown game {name!r}; MinAtar has {', '.join(sorted(GAMES))} "
            "(use the lower-case name with an underscore, e.g. 'space_invaders')"
        )
    return spec
