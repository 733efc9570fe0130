"""HTML for the reports: the metrics table, the facts-by-factors table, pytest-html extras, the
summary section of audited checkpoints.

Standard library only (the plugin imports it on every pytest run); every string is escaped.
The extras are plain JSON-serializable dicts, so they cross xdist.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..files import open_regular
from ..results.values import FactAssociation
from .records import HEADLINE, AuditRecord, format_number
from .terminal import distinct

__all__ = [
    "artifacts_link",
    "checkpoint_summary_html",
    "fact_table_html",
    "html_extras",
    "metrics_table",
    "problem_extra",
]


def metrics_table(record: AuditRecord) -> str:
    """An HTML table of the headline metrics; every string is escaped."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        f"<td>{html.escape(format_number(record.metric(name)))}</td></tr>"
        for name in HEADLINE
    )
    title = f"{record.label} ({record.game}, {record.settings_label})"
    return (
        f'<div class="dreamer-audit"><p><b>dreamer-audit:</b> {html.escape(title)}</p>'
        f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table></div>"
    )


def _fact_cell(value: float, event: bool, bold: bool) -> str:
    if math.isnan(value):
        return "<td>n/a</td>"
    text = f"{value:.0%}" if event else f"{value:+.2f}"
    return f"<td><b>{text}</b></td>" if bold else f"<td>{text}</td>"


def fact_table_html(associations: Iterable[FactAssociation]) -> str:
    """An HTML table of game facts against factors.

    Events show each factor's precision next to the base rate, graded facts each factor's
    Spearman; the best factor of a row is bold where it beats chance
    (:attr:`FactAssociation.beats_chance`). Every string is escaped. Empty without rows.
    """
    rows = list(associations)
    if not rows:
        return ""
    width = max(len(row.per_factor) for row in rows)
    header = "".join(f"<th>factor {j}</th>" for j in range(width))
    lines = []
    for row in rows:
        event = row.kind == "event"
        best = row.best_factor if row.beats_chance else -1
        cells = "".join(_fact_cell(v, event, j == best) for j, v in enumerate(row.per_factor))
        measure = f"precision of top-{row.k}" if event else "Spearman"
        chance = f"{row.base_rate:.1%}" if event and not math.isnan(row.base_rate) else ""
        lines.append(
            f"<tr><td>{html.escape(row.name)}</td><td>{html.escape(measure)}</td>"
            f"<td>{html.escape(chance)}</td>{cells}</tr>"
        )
    return (
        '<table class="dreamer-audit-facts"><tr><th>fact</th><th>measure</th>'
        f"<th>chance</th>{header}</tr>{''.join(lines)}</table>"
    )


def artifacts_link(evidence: Path, report_path: str | None) -> dict[str, Any]:
    """A pytest-html link (the Links column) to the test's artifacts folder: relative to the
    report when it is written to a file, so the two can be moved together."""
    import pytest_html

    target = evidence.resolve()
    if report_path:
        relative = os.path.relpath(target, Path(report_path).resolve().parent)
        href = Path(relative).as_posix() + "/"
    else:
        href = target.as_uri() + "/"
    return pytest_html.extras.url(href, name="artifacts")


def problem_extra(message: str) -> dict[str, Any]:
    """A pytest-html extra that shows a problem with the report itself, escaped."""
    import pytest_html

    return pytest_html.extras.html(
        f'<div class="dreamer-audit"><p><b>dreamer-audit warning:</b> {html.escape(message)}</p>'
        "</div>"
    )


def html_extras(records: Iterable[AuditRecord]) -> list[dict[str, Any]]:
    """pytest-html extras: the metrics table and the fact table, then each PNG as base64."""
    import pytest_html

    extras: list[dict[str, Any]] = []
    for record in records:
        extras.append(pytest_html.extras.html(metrics_table(record)))
        if record.factor_facts:
            title = f"{record.label}: what each factor's observations coincide with"
            table = fact_table_html(record.factor_facts)
            extras.append(
                pytest_html.extras.html(
                    f'<div class="dreamer-audit"><p><b>dreamer-audit:</b> '
                    f"{html.escape(title)}</p>{table}</div>"
                )
            )
        for image, caption in record.images:
            with open_regular(image) as stream:
                content = base64.b64encode(stream.read()).decode("ascii")
            extras.append(pytest_html.extras.png(content, name=f"{record.label}: {caption}"))
    return extras


def checkpoint_summary_html(records: Iterable[AuditRecord]) -> str:
    """The HTML report's summary section: one row per audited checkpoint and settings."""
    columns = ("checkpoint", "game", "settings", *HEADLINE)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    rows = []
    for record in distinct(records):
        cells = [record.label, record.game, record.settings_label] + [
            format_number(record.metric(name)) for name in HEADLINE
        ]
        rows.append(
            "<tr>"
            + "".join(f'<td style="white-space: nowrap">{html.escape(str(c))}</td>' for c in cells)
            + "</tr>"
        )
    return (
        '<div class="dreamer-audit-summary"><h2>Audited checkpoints</h2>'
        f"<table><tr>{header}</tr>{''.join(rows)}</table></div>"
    )
