"""Start-up checks of the audited checkpoints against the settings (imports torch).

Run by the plugin at configure time, only when checkpoints are given, so that a broken file or a
setting that cannot work with it (a rank above the row width, a game the agent does not fit)
stops the run with one line before any test starts, instead of failing every test.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..games import game_spec
from ..model.checkpoint import load_checkpoint
from ..settings import AuditSettings

__all__ = ["check_checkpoint"]


def check_checkpoint(settings: AuditSettings) -> None:
    """Raise a :class:`~pytest_dreamer_audit.errors.DreamerAuditError` if the audit cannot run."""
    agent = load_checkpoint(settings.checkpoint)
    sizes = agent.sizes
    width = sizes.classes if settings.layout == "pooled" else sizes.categoricals * sizes.classes
    if settings.rank > width:
        raise ConfigError(
            f"--dreamer-rank {settings.rank} is larger than the {width} columns of the "
            f"{settings.layout} NMF matrix of {settings.checkpoint} ({sizes.categoricals} "
            f"categoricals x {sizes.classes} classes); use a rank <= {width}"
        )
    game = settings.game or agent.metadata.game
    if not game:
        raise ConfigError(
            f"{settings.checkpoint} records no game (a reference-format file); pass "
            "--dreamer-game (e.g. freeway) or set dreamer_game in the ini file"
        )
    spec = game_spec(game)
    pomdp = settings.pomdp_flag
    if pomdp is None:
        pomdp = agent.metadata.pomdp if agent.metadata.pomdp is not None else True
    channels = len(spec.observed_channels(pomdp))
    if sizes.channels != channels or sizes.actions != spec.actions:
        raise ConfigError(
            f"{settings.checkpoint} takes {sizes.channels} channels and {sizes.actions} actions, "
            f"but {game} ({'POMDP' if pomdp else 'MDP'}) has {channels} and {spec.actions}; "
            "check --dreamer-game and --dreamer-pomdp"
        )
