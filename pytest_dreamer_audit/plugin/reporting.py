"""What the plugin adds to pytest's reports: each audited test's summary and pytest-html extras
(:func:`attach_to_report`), the terminal summary (:class:`AuditReporter`) and the pytest-html
summary section (:class:`HtmlSummary`), registered per session by ``plugin/hooks.py``.

A report hook must never raise into pytest (that aborts the session with INTERNALERROR): what
goes wrong here becomes a visible line in the report instead. Standard library and pytest only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..report.records import PROPERTY, AuditRecord
from ..report.terminal import printable, summary_lines
from .state import CHECKS, EVIDENCE, RECORDS, PluginState

__all__ = ["AuditReporter", "HtmlSummary", "attach_to_report"]


def attach_to_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """Attach the test's audit summaries and pytest-html extras to the report that is shown:
    the call's, or the setup's when a fixture failed there."""
    records = item.stash.get(RECORDS, [])
    shown = report.when == "call" or (report.when == "setup" and report.failed)
    if not records or not shown:
        return
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


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class AuditReporter:
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


class HtmlSummary:
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
