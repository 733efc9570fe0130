"""The plugin's fixtures: the checkpoint, the settings, the agent, the rollouts and the audit of a
test (registered by ``plugin/hooks.py``).

Imported on every pytest run, so each fixture imports the heavy modules only when a test first
asks for it (:class:`~pytest_dreamer_audit.plugin.audit_object.DreamerAudit` included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from ..errors import DreamerAuditError
from ..report.artifacts import write_artifacts
from ..report.terminal import printable
from ..settings import MARKER, AuditSettings
from .state import (
    CHECKPOINT_FLAG,
    CHECKPOINT_INI,
    CHECKS,
    EVIDENCE,
    RECORDS,
    STATE,
    marker_settings,
)

if TYPE_CHECKING:
    from ..model.agent import DreamerAgent
    from ..results.explanation import Explanation
    from ..rollout.rollouts import Trajectory
    from .audit import AuditCache
    from .audit_object import DreamerAudit

__all__ = [
    "dreamer_agent",
    "dreamer_audit",
    "dreamer_cache",
    "dreamer_checkpoint",
    "dreamer_explanation",
    "dreamer_rollouts",
    "dreamer_settings",
]

T = TypeVar("T")


@pytest.fixture(scope="session")
def dreamer_cache(pytestconfig: pytest.Config) -> AuditCache:
    """The session's audit cache (in memory, over the on-disk cache shared by xdist workers)."""
    from .audit import AuditCache

    state = pytestconfig.stash[STATE]
    # The torch thread count is set per process (each xdist worker its own) when torch is first
    # needed, so that a warm run never imports torch.
    return AuditCache(state.cache_dir, _progress_lines(pytestconfig), threads=state.threads)


def _progress_lines(config: pytest.Config) -> Callable[[str, bool], None] | None:
    """Progress through the terminal reporter: a line when a computation starts and ends, each
    explanation stage too under -v, nothing under -q. xdist workers have no terminal (their
    progress would be lost or garble the controller's), so they stay silent."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    verbosity = config.get_verbosity()
    if reporter is None or verbosity < 0 or hasattr(config, "workerinput"):
        return None

    def line(text: str, detail: bool) -> None:
        if verbosity >= 1 or not detail:
            reporter.write_line(f"dreamer-audit: {text}")

    return line


@pytest.fixture
def dreamer_checkpoint(request: pytest.FixtureRequest) -> Path:
    """Path of the checkpoint this test audits (one test per ``--dreamer-checkpoint``)."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and "checkpoint" in marker.kwargs:
        return Path(str(marker.kwargs["checkpoint"]))
    if not hasattr(request, "param"):
        pytest.fail(
            f"dreamer-audit: no checkpoint to audit; pass {CHECKPOINT_FLAG} PATH, set "
            f"{CHECKPOINT_INI} in the ini file, or use @pytest.mark.{MARKER}(checkpoint=...)",
            pytrace=False,
        )
    return Path(request.param)


@pytest.fixture
def dreamer_settings(request: pytest.FixtureRequest, dreamer_checkpoint: Path) -> AuditSettings:
    """The settings of this test: options, ini and the marker's overrides, validated."""
    settings = dataclasses.replace(
        request.config.stash[STATE].template, checkpoint=str(dreamer_checkpoint)
    )
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return settings
    try:
        return marker_settings(settings, marker)
    except DreamerAuditError as error:
        problem = str(error)
    pytest.fail(f"dreamer-audit: {problem}", pytrace=False)


def _computed(compute: Callable[[], T]) -> T:
    """Run ``compute``; a package error fails the test with its message alone (no traceback)."""
    try:
        return compute()
    except DreamerAuditError as error:
        problem = str(error)
    pytest.fail(f"dreamer-audit: {problem}", pytrace=False)


@pytest.fixture
def dreamer_agent(dreamer_cache: AuditCache, dreamer_settings: AuditSettings) -> DreamerAgent:
    """The audited agent, loaded once per checkpoint and device."""
    return _computed(lambda: dreamer_cache.agent(dreamer_settings))


@pytest.fixture
def dreamer_rollouts(dreamer_cache: AuditCache, dreamer_settings: AuditSettings) -> Trajectory:
    """The agent's rollouts under this test's settings (computed once, shared)."""
    return _computed(lambda: dreamer_cache.trajectory(dreamer_settings))


@pytest.fixture
def dreamer_audit(
    request: pytest.FixtureRequest, dreamer_cache: AuditCache, dreamer_settings: AuditSettings
) -> DreamerAudit:
    """The explanation with its evidence, bound assertions and the baseline check."""
    from .audit_object import make_audit

    state = request.config.stash[STATE]
    result = _computed(lambda: dreamer_cache.explanation(dreamer_settings))
    audit = make_audit(
        result,
        request,
        state.artifacts,
        state.baseline_dir,
        state.update_baselines,
        state.claimed,
        request.node.stash.setdefault(CHECKS, []),
    )
    request.node.stash.setdefault(RECORDS, []).append(audit.record)
    request.node.stash[EVIDENCE] = audit.evidence
    try:
        write_artifacts(audit.evidence, request.node.nodeid, request.node.stash[RECORDS])
    except OSError as error:
        problem = (
            f"cannot write this test's artifacts to {audit.evidence} ({error.strerror or error}); "
            "make that folder writable or point --dreamer-artifacts at another directory"
        )
        pytest.fail(printable(f"dreamer-audit: {problem}"), pytrace=False)
    return audit


@pytest.fixture
def dreamer_explanation(dreamer_audit: DreamerAudit) -> Explanation:
    """The explanation of this test's checkpoint and settings (computed once, shared)."""
    return dreamer_audit.explanation
