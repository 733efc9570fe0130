"""The pytest plugin: ``--dreamer-*`` options, the ``dreamer_audit`` marker, fixtures, hooks.

pytest imports this module on every run of every project where the package is installed, so it
imports neither torch nor the heavy modules: fixtures import them when a test first asks.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ..errors import ConfigError, DreamerAuditError
from ..files import ensure_writable, regular_file
from ..report.artifacts import write_artifacts
from ..report.records import PROPERTY, AuditRecord, Check
from ..report.terminal import printable, summary_lines
from ..settings import MARKER, OPTIONS, AuditSettings, marker_help, parse_value

if TYPE_CHECKING:
    from ..model.agent import DreamerAgent
    from ..results.explanation import Explanation
    from ..rollout.rollouts import Trajectory
    from .audit import AuditCache
    from .fixtures import DreamerAudit

T = TypeVar("T")
CHECKPOINT_FLAG = "--dreamer-checkpoint"
CHECKPOINT_INI = "dreamer_checkpoint"
UPDATE_FLAG = "--dreamer-update-baselines"
UPDATE_INI = "dreamer_update_baselines"


@dataclass
class PluginState:
    """Validated start-up settings and what the controller collects for the summaries."""

    template: AuditSettings
    checkpoints: list[str]
    update_baselines: bool
    artifacts: Path
    cache_dir: Path
    baseline_dir: str
    threads: int = 1
    summaries: list[AuditRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Lines for the terminal summary about reports the plugin could not read."""
    claimed: dict[Path, str] = field(default_factory=dict)
    """Which test writes each artifacts folder and baseline in this process."""
    pictures: dict[str, str] = field(default_factory=dict)
    """Which test's report carries each explanation's pictures (by key): the controller's,
    under xdist, where the workers' reports meet."""


STATE = pytest.StashKey[PluginState]()
RECORDS = pytest.StashKey[list[AuditRecord]]()
EVIDENCE = pytest.StashKey[Path]()
CHECKS = pytest.StashKey[list[Check]]()


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
            metavar=option.field.upper(),
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


def _value(config: pytest.Config, name: str) -> Any:
    cli = config.getoption(name)
    return cli if cli not in (None, []) else config.getini(name)


def _check_writable(path: Path, what: str, flag: str) -> None:
    """Create ``path`` and write a probe file there, so a bad path fails at start-up."""
    try:
        ensure_writable(path, what, flag)
    except ConfigError as error:
        raise pytest.UsageError(printable(f"dreamer-audit: {error}")) from None


def _state(config: pytest.Config) -> PluginState:
    values = {}
    checkpoints = [str(p) for p in _value(config, CHECKPOINT_INI)]
    try:
        from .cache import signing_key

        signing_key()  # a key set but empty must stop the run, not silently turn signing off
        for option in OPTIONS:
            values[option.field] = parse_value(option, str(_value(config, option.ini)))
        for path in checkpoints:
            regular_file(path, CHECKPOINT_FLAG)
        artifacts = Path(values.pop("artifacts"))
        cache_dir = values.pop("cache_dir")
        baseline_dir = values.pop("baseline_dir")
        threads = values.pop("threads")
        template = AuditSettings(checkpoint="", **values)
    except DreamerAuditError as error:
        raise pytest.UsageError(printable(f"dreamer-audit: {error}")) from None
    cache = (
        Path(cache_dir) if cache_dir else config.rootpath / ".pytest_cache" / "d" / "dreamer-audit"
    )
    if template.device.startswith("cuda"):
        from ..model.devices import resolve_device  # imports torch: only when CUDA is asked for

        try:
            resolve_device(template.device)
        except DreamerAuditError as error:
            raise pytest.UsageError(
                printable(f"dreamer-audit: --dreamer-device: {error}")
            ) from None
    if checkpoints:
        _check_writable(artifacts, "artifacts directory", "--dreamer-artifacts")
        _check_writable(cache, "cache directory", "--dreamer-cache-dir")
        from .preflight import check_checkpoint  # imports torch when a checkpoint is new

        for path in checkpoints:
            try:
                check_checkpoint(dataclasses.replace(template, checkpoint=path), cache)
            except DreamerAuditError as error:
                raise pytest.UsageError(printable(f"dreamer-audit: {error}")) from None
    update = bool(_value(config, UPDATE_INI))
    if baseline_dir and not update and not Path(baseline_dir).is_dir():
        raise pytest.UsageError(
            f"dreamer-audit: --dreamer-baseline-dir {baseline_dir} does not exist; create it, or "
            "pass --dreamer-update-baselines to write the baselines there"
        )
    return PluginState(
        template=template,
        checkpoints=checkpoints,
        update_baselines=update,
        artifacts=artifacts,
        cache_dir=cache,
        baseline_dir=baseline_dir,
        threads=threads,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", marker_help())
    state = _state(config)
    config.stash[STATE] = state
    # Under xdist the pictures are kept once where the reports meet (the controller): a worker
    # that kept its own first copies would name tests whose copies the controller dropped.
    reporter = _Reporter(state, keeps_pictures=not hasattr(config, "workerinput"))
    config.pluginmanager.register(reporter, "dreamer-audit-reporter")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(_HtmlSummary(state), "dreamer-audit-html")


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
            settings = _marker_settings(state.template, marker)
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


def _marker_settings(template: AuditSettings, marker: pytest.Mark) -> AuditSettings:
    """The template with a marker's keywords applied; typed errors for anything else."""
    if marker.args:
        raise ConfigError(f"@pytest.mark.{MARKER} takes keyword arguments only, got {marker.args}")
    known = [f.name for f in dataclasses.fields(AuditSettings)]
    for name in marker.kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(known)}"
            raise ConfigError(f"@pytest.mark.{MARKER} got an unknown setting {name!r}{hint}")
    return template.with_overrides(marker.kwargs)


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


# --- fixtures ----------------------------------------------------------------------------------


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
        return _marker_settings(settings, marker)
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
    from .fixtures import make_audit

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


# --- report hooks ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach audit summaries and pytest-html extras to the report that is shown: the call's,
    or the setup's when a fixture failed there."""
    report = yield
    records = item.stash.get(RECORDS, [])
    shown = report.when == "call" or (report.when == "setup" and report.failed)
    if not records or not shown:
        return report
    # A report hook must never raise into pytest (that aborts the session with INTERNALERROR):
    # whatever goes wrong becomes a visible line in the report instead.
    try:
        for record in records:
            report.user_properties.append((PROPERTY, json.dumps(record.to_json(), sort_keys=True)))
    except Exception as error:
        report.sections.append(("dreamer-audit", f"summary not recorded: {_describe(error)}"))
    if item.config.pluginmanager.hasplugin("html"):
        from ..report.html import artifacts_link, checks_html, html_extras, problem_extra

        try:
            evidence = item.stash.get(EVIDENCE, None)
            report_path = item.config.getoption("htmlpath", None)
            added = html_extras(records, evidence=evidence, report_path=report_path)
            checks = item.stash.get(CHECKS, [])
            if checks:
                added.insert(0, checks_html(checks))
            if evidence is not None:
                added.append(artifacts_link(evidence, report_path))
        except Exception as error:
            added = [
                problem_extra(
                    f"the pictures of this test could not be attached: {_describe(error)}"
                )
            ]
        report.extras = [*getattr(report, "extras", []), *added]  # type: ignore[attr-defined]
    return report


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Reporter:
    """Collects audit summaries from test reports (the controller's, under xdist) and prints
    them; registered per session in ``pytest_configure``, its state lives in the plugin state."""

    def __init__(self, state: PluginState, *, keeps_pictures: bool) -> None:
        self.state = state
        self.keeps_pictures = keeps_pictures

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY:
                self._collect(report.nodeid, value)
        extras = getattr(report, "extras", None)
        if extras and self.keeps_pictures:  # pytest-html reads them at teardown, after this
            from ..report.html import embed_once

            try:
                kept = embed_once(list(extras), self.state.pictures, report.nodeid)
            except Exception:  # a hook must never raise: the pictures then stay as they are
                return
            report.extras = kept  # type: ignore[attr-defined]

    def _collect(self, nodeid: str, value: object) -> None:
        """Keep a summary the plugin recorded; anything else under its property name (a test's
        own ``record_property``) is reported in the summary, never raised from this hook (that
        would abort the session with INTERNALERROR)."""
        try:
            self.state.summaries.append(AuditRecord.from_json(json.loads(str(value))))
        except Exception as error:
            self.state.problems.append(
                printable(
                    f"dreamer-audit: {nodeid} recorded a {PROPERTY!r} property that is not an "
                    f"audit summary ({type(error).__name__}), so it is left out of the summary; "
                    f"the name {PROPERTY!r} is the plugin's: record your own values under "
                    "another name"
                )[:400]
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for problem in self.state.problems:
            terminalreporter.write_line(problem)
        lines = summary_lines(self.state.summaries)
        if lines:
            terminalreporter.write_sep("-", "dreamer-audit")
            for line in lines:
                terminalreporter.write_line(line)


class _HtmlSummary:
    """Registered only when pytest-html is active (its hook specs exist only then)."""

    def __init__(self, state: PluginState) -> None:
        self.state = state

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str]
    ) -> None:
        from ..report.html import checkpoint_summary_html

        if self.state.summaries:
            postfix.append(checkpoint_summary_html(self.state.summaries))

    @pytest.hookimpl(tryfirst=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """Escape the test-id cell: pytest-html 4 writes the node id into it raw and its script
        inserts the cell with innerHTML, so markup in a parameter id or a checkpoint's label
        (``<img src=x onerror=...>``) would run in the report."""
        import html

        test_id = report.nodeid if report.when == "call" else f"{report.nodeid}::{report.when}"
        raw = f'<td class="col-testId">{test_id}</td>'
        for index, cell in enumerate(cells):
            if cell == raw:  # pytest-html's own cell, untouched (a later version may escape it)
                cells[index] = f'<td class="col-testId">{html.escape(test_id)}</td>'
