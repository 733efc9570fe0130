"""Every MinAtar game audited through the plugin as a new user would (issue 31): a tiny
checkpoint of each game, the README's per-game example shape, every recorded fact reachable by
name, fact rows in the claims tables beyond the actions, and the report's row names accepted by
the assertions."""

from __future__ import annotations

import pytest

from pytest_dreamer_audit.games import game_spec
from pytest_dreamer_audit.testing import FAST_INI, write_tiny_checkpoint

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
FIRST_GRADED = {
    "asterix": "enemy_distance",
    "breakout": "ball_row",
    "freeway": "chicken_row",
    "seaquest": "sub_row",
    "space_invaders": "player_column",
}


@pytest.mark.slow
@pytest.mark.parametrize("game", GAMES)
def test_every_game_records_its_facts_and_audits_by_row_name(
    pytester: pytest.Pytester, game: str
) -> None:
    write_tiny_checkpoint(pytester.path / f"{game}.pth", game, seed=5)
    pytester.makeini(FAST_INI.replace("dreamer_episodes = 2", "dreamer_episodes = 4"))
    spec = game_spec(game)
    left = spec.action_names[1]
    pytester.makepyfile(
        f"""
        import pytest

        def test_facts(dreamer_audit):
            e = dreamer_audit.explanation
            for name in {list(spec.fact_names)!r}:
                assert e.fact(name).shape == e.valid.shape
            table = dreamer_audit.result.claims
            rows = [row.name for row in table.facts]
            assert {FIRST_GRADED[game]!r} in rows
            assert any(not name.startswith("executed_action") and name != "sticky"
                       for name in rows)
            assert e.observation_channels == {tuple(spec.observed_channel_names(True))!r}

        def test_row_names(dreamer_audit):
            # the report's row names are accepted (a verdict either way, never a ConfigError):
            # an action by name, a fact compared with a value; a typo gets "did you mean"
            from pytest_dreamer_audit.errors import ConfigError

            for event in ("executed_action={left}", "{FIRST_GRADED[game]}>=1"):
                try:
                    dreamer_audit.assert_some_factor_coincides(event, min_precision=0.0)
                except AssertionError as failed:
                    assert "dreamer-audit:" in str(failed)
            with pytest.raises(ConfigError, match="did you mean"):
                dreamer_audit.explanation.fact("executed_action={left}x")
        """
    )
    result = pytester.runpytest(f"--dreamer-checkpoint={game}.pth", f"--dreamer-game={game}")
    result.assert_outcomes(passed=2)
