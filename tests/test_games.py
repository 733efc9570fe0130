from __future__ import annotations

import pytest

from pytest_dreamer_audit.errors import ConfigError, UnknownGameError
from pytest_dreamer_audit.games import GAMES, game_spec


def test_five_games_with_documented_pomdp_channels() -> None:
    assert {name: spec.pomdp_channels for name, spec in GAMES.items()} == {
        "asterix": (0, 1, 3),
        "breakout": (0, 1, 3),
        "freeway": (0, 1),
        "seaquest": (0, 1, 2, 4, 5, 6, 7, 8, 9),
        "space_invaders": (0, 1, 4, 5),
    }
    assert game_spec("freeway").observed_channels(pomdp=False) == tuple(range(7))


def test_unknown_game_lists_the_valid_names() -> None:
    with pytest.raises(
        UnknownGameError, match="unknown game 'SpaceInvaders'.*space_invaders"
    ) as caught:
        game_spec("SpaceInvaders")
    assert isinstance(caught.value, ConfigError)
