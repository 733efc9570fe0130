"""Start-up checks of the audited checkpoints against the settings (imports torch).

Run by the plugin at configure time, only when checkpoints are given, so that a broken file or a
setting that cannot work with it (a rank above the row width, a game the agent does not fit)
stops the run with one line before any test starts, instead of failing every test.
"""

from __future__ import annotations

from ..errors import PYTEST
from ..games import check_agent_fits
from ..model.checkpoint import load_checkpoint
from ..results.config import check_rank, layout_width
from ..settings import AuditSettings

__all__ = ["check_checkpoint"]


def check_checkpoint(settings: AuditSettings) -> None:
    """Raise a :class:`~pytest_dreamer_audit.errors.DreamerAuditError` if the audit cannot run."""
    agent = load_checkpoint(settings.checkpoint)
    sizes = agent.sizes
    check_rank(
        settings.rank,
        layout_width(settings.layout, sizes.categoricals, sizes.classes),
        rank_name="--dreamer-rank",
        where=f"{settings.checkpoint} in the {settings.layout} layout ({sizes.categoricals} "
        f"categoricals x {sizes.classes} classes)",
    )
    target = settings.target(agent.metadata.game, agent.metadata.pomdp)
    check_agent_fits(
        target, sizes.channels, sizes.actions, source=settings.checkpoint, spelling=PYTEST
    )
