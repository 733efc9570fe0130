"""The pytest plugin's hooks: the ``--dreamer-*`` options and ini keys, the ``dreamer_audit``
marker, the checks at start-up and collection, one test per checkpoint, and the report hook.
Registers the rest: the fixtures (``plugin/fixtures.py``) and the reporters
(``plugin/reporting.py``); the session's state is in ``plugin/state.py``.

pytest imports this module on every run of every project where the package is installed, so it
imports neither torch nor the heavy modules: fixtures import them when a test first asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from pathlib import Path

import pytest

from ..errors import PYTEST, DreamerAuditError
from ..files import regular_file
from ..report.terminal import printable
from ..settings import MARKER, OPTIONS, AuditSettings, marker_help
from . import fixtures
from .reporting import AuditReporter, HtmlSummary, attach_to_report
from .state import (
    CHECKPOINT_FLAG,
    CHECKPOINT_INI,
    STATE,
    UPDATE_FLAG,
    UPDATE_INI,
    marker_settings,
    read_state,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dreamer-audit", "auditing DreamerV2 agents (pytest-dreamer-audit)")
    group.addoption(
        CHECKPOINT_FLAG,
        action="append",
        default=[],
        dest=CHECKPOINT_INI,
        metavar="PATH",
        help="checkpoint to audit; repeat to audit several (tests run once per checkpoint). "
        f"ini: {CHECKPOINT_INI} (one path per line)",
    )
    parser.addini(CHECKPOINT_INI, "checkpoints to audit, one per line", type="linelist")
    for option in OPTIONS:
        group.addoption(
            option.flag,
            dest=option.ini,
            default=None,
            metavar=PYTEST.metavar(option.field, option.default),
            help=f"{option.help} (ini: {option.ini}"
            + (f"; default: {option.default})" if option.default else ")"),
        )
        parser.addini(option.ini, option.help, default=option.default)
    group.addoption(
        UPDATE_FLAG,
        action="store_true",
        default=None,
        dest=UPDATE_INI,
        help=f"rewrite the explanation baselines (the tests fail once). ini: {UPDATE_INI}",
    )
    parser.addini(UPDATE_INI, "rewrite the explanation baselines", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", marker_help())
    state = read_state(config)
    config.stash[STATE] = state
    # The fixtures live in a module of their own (it imports nothing heavy: each fixture imports
    # what it needs when a test first asks for it).
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "dreamer-audit-fixtures")
    # Under xdist the pictures are kept once where the reports meet (the controller): a worker
    # that kept its own first copies would name tests whose copies the controller dropped.
    reporter = AuditReporter(state, keeps_pictures=not hasattr(config, "workerinput"))
    config.pluginmanager.register(reporter, "dreamer-audit-reporter")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlSummary(state), "dreamer-audit-html")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Check every ``dreamer_audit`` marker before any test runs, as the options are checked:
    keywords (with a "did you mean"), values, and marker checkpoints (file, format, fit)."""
    state = config.stash[STATE]
    checked: set[AuditSettings] = set()
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            continue
        try:
            settings = marker_settings(state.template, marker)
            path = marker.kwargs.get("checkpoint")
            if path is not None:
                regular_file(str(path), f"@pytest.mark.{MARKER}(checkpoint=...)")
            paths = [str(path)] if path is not None else state.checkpoints
            for audited in (dataclasses.replace(settings, checkpoint=p) for p in paths):
                if audited not in checked:
                    checked.add(audited)
                    from .preflight import check_checkpoint  # imports torch when it is new

                    check_checkpoint(audited, state.cache_dir)
        except DreamerAuditError as error:
            raise pytest.UsageError(printable(f"dreamer-audit: {item.nodeid}: {error}")) from None


def _labels(paths: list[str]) -> list[str]:
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [str(Path(p)) for p in paths]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dreamer_checkpoint" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is not None and "checkpoint" in marker.kwargs:
        return
    paths = metafunc.config.stash[STATE].checkpoints
    if paths:
        metafunc.parametrize("dreamer_checkpoint", paths, ids=_labels(paths), indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach audit summaries and pytest-html extras to the report that is shown
    (:func:`~pytest_dreamer_audit.plugin.reporting.attach_to_report`)."""
    report = yield
    attach_to_report(item, report)
    return report
