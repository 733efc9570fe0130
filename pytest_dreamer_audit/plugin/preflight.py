"""Start-up checks of the audited checkpoints against the settings (imports torch).

Run by the plugin at configure time, only when checkpoints are given, so that a broken file or a
setting that cannot work with it (a rank above the row width, a game the agent does not fit)
stops the run with one line before any test starts, instead of failing every test.
"""

from __future__ import annotations

from ..model.checkpoint import load_checkpoint
from ..model.devices import resolve_device
from ..settings import AuditSettings

__all__ = ["check_checkpoint"]


def check_checkpoint(settings: AuditSettings) -> None:
    """Raise a :class:`~pytest_dreamer_audit.errors.DreamerAuditError` if the audit cannot run."""
    if settings.device not in ("auto", "cpu"):
        resolve_device(settings.device)  # cuda:N that this machine lacks fails here, cache or not
    agent = load_checkpoint(settings.checkpoint)
    settings.check_agent(agent.sizes, agent.metadata.game, agent.metadata.pomdp)
