"""Start-up checks of the audited checkpoints against the settings (imports torch).

Run by the plugin at configure time, only when checkpoints are given, so that a broken file or a
setting that cannot work with it (a rank above the row width, a game the agent does not fit)
stops the run with one line before any test starts, instead of failing every test.
"""

from __future__ import annotations

from ..model.checkpoint import load_checkpoint
from ..settings import AuditSettings

__all__ = ["check_checkpoint"]


def check_checkpoint(settings: AuditSettings) -> None:
    """Raise a :class:`~pytest_dreamer_audit.errors.DreamerAuditError` if the audit cannot run."""
    agent = load_checkpoint(settings.checkpoint)
    settings.check_agent(agent.sizes, agent.metadata.game, agent.metadata.pomdp)
