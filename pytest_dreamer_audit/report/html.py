"""HTML for the reports: the metrics and checks tables, the pytest-html extras (pictures, links,
the claims tables of ``tables``, each explanation's blocks kept once per report), the summary
section of audited checkpoints.

Standard library only (the plugin imports it on every pytest run); every string is escaped.
The extras are plain JSON-serializable dicts, so they cross xdist.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..files import open_regular
from ..results.config import trust_sample_size
from ..results.trustworthy import sample_label, trust_verdicts
from .numbers import format_number
from .records import HEADLINE, METRIC_NOTES, AuditRecord, Check, wrong_side
from .tables import (
    curves_html,
    fact_table_html,
    factor_status_html,
    probe_table_html,
    randomization_html,
    score_table_html,
)
from .terminal import distinct

__all__ = [
    "artifacts_link",
    "checks_html",
    "checkpoint_summary_html",
    "comparison_svg",
    "html_extras",
    "embed_once",
    "grid_links_html",
    "metric_rows_html",
    "metrics_table",
    "wrong_side_html",
    "pictures_html",
    "problem_extra",
]


def checks_html(checks: Iterable[Check]) -> dict[str, Any]:
    """A pytest-html extra listing the test's checks: each assertion with its arguments (the
    thresholds), whether it held, and its outcome (the measured value, or the failure message
    with the value, the threshold and the null). Every string is escaped."""
    import pytest_html

    rows = "".join(
        f"<tr><td><code>{html.escape(c.assertion)}</code></td>"
        f"<td>{'passed' if c.passed else '<b>FAILED</b>'}</td>"
        f"<td>{html.escape(c.outcome)}</td></tr>"
        for c in checks
    )
    return pytest_html.extras.html(
        '<div class="dreamer-audit"><p><b>dreamer-audit:</b> the checks of this test</p>'
        f"<table><tr><th>assertion</th><th>result</th><th>measured</th></tr>{rows}</table></div>"
    )


WRONG_SIDE_MARK = "&#9888;"
"""The marker beside a metric on the wrong side of its meaning (a warning sign)."""


def wrong_side_html(name: str, value: float) -> str:
    """A marker and the reason when ``value`` contradicts metric ``name``'s meaning
    (:func:`~pytest_dreamer_audit.report.records.wrong_side`), else ``""``. Escaped."""
    reason = wrong_side(name, value)
    if not reason:
        return ""
    return (
        f' <span class="dreamer-audit-wrong-side" title="{html.escape(reason)}">'
        f"{WRONG_SIDE_MARK} {html.escape(wrong_side(name, value, brief=True))}</span>"
    )


def metric_rows_html(values: Iterable[tuple[str, float]]) -> str:
    """Rows of metric name, value (marked when on the wrong side of its meaning) and meaning:
    the one metrics table of the pytest-html extras and the ``dreamer-audit explain`` page."""
    return "".join(
        f"<tr><td>{html.escape(name)}</td>"
        f"<td>{html.escape(format_number(value))}</td>"
        f"<td>{html.escape(METRIC_NOTES.get(name, ''))}{wrong_side_html(name, value)}</td></tr>"
        for name, value in values
    )


def metrics_table(record: AuditRecord) -> str:
    """An HTML table of the headline metrics and one of the default trust checks' verdicts
    (``results/trustworthy.py``); every string is escaped."""
    rows = metric_rows_html((name, record.metric(name)) for name in HEADLINE)
    title = f"{record.label} ({record.game}, {record.settings_label})"
    checks = "".join(
        f"<tr><td>{v.check.number}. {html.escape(v.check.name)}</td>"
        f"<td>{html.escape(v.check.metric)}</td>"
        f"<td>{html.escape(format_number(v.value))}</td>"
        f"<td>{'&le;' if v.check.direction == 'max' else '&ge;'} {v.threshold:g}</td>"
        f"<td>{'passed' if v.passed else '<b>FAILED</b>'}</td></tr>"
        for v in trust_verdicts(record.metrics)
    )
    settings = record.settings
    sample = (
        "; " + sample_label(trust_sample_size(episodes, trust), episodes)
        if isinstance(episodes := settings.get("episodes"), int)
        and isinstance(trust := settings.get("trust_episodes"), int)
        else ""
    )
    return (
        f'<div class="dreamer-audit"><p><b>dreamer-audit:</b> {html.escape(title)}</p>'
        f"<table><tr><th>metric</th><th>value</th><th>meaning</th></tr>{rows}</table>"
        f"<p>the default trust checks (<code>assert_trustworthy</code>{sample})</p>"
        "<table><tr><th>check</th><th>metric</th><th>value</th><th>threshold</th>"
        f"<th>verdict</th></tr>{checks}</table></div>"
    )


def _href(target: Path, report_path: str | None) -> str:
    """A link to ``target``: relative to the report when it is written to a file (so the two
    can be moved together), else a file URI. Percent-encoded, so that it holds only letters,
    digits, ``%``, ``/``, ``:`` and ``_.-~``: pytest-html writes a link's URL into its Links
    column raw, and a folder named ``"><script>...`` must stay a name."""
    if report_path:
        relative = os.path.relpath(target.resolve(), Path(report_path).resolve().parent)
        return urllib.parse.quote(Path(relative).as_posix())
    return target.resolve().as_uri()  # percent-encodes the path


def artifacts_link(evidence: Path, report_path: str | None) -> dict[str, Any]:
    """A pytest-html link (the Links column) to the test's artifacts folder."""
    import pytest_html

    # pytest-html puts ``content`` and ``name`` into ``<a href="{content}">{name}</a>`` as they
    # are: both are escaped here (the one rule for every string this module hands it).
    return pytest_html.extras.url(
        html.escape(_href(evidence, report_path) + "/"), name=html.escape("artifacts")
    )


def problem_extra(message: str) -> dict[str, Any]:
    """A pytest-html extra that shows a problem with the report itself, escaped."""
    import pytest_html

    return pytest_html.extras.html(
        f'<div class="dreamer-audit"><p><b>dreamer-audit warning:</b> {html.escape(message)}</p>'
        "</div>"
    )


_FIGURES_STYLE = "display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start"
_FIGURE_STYLE = "margin:0;flex:0 1 auto;max-width:100%"
_IMAGE_STYLE = "display:block;max-width:100%;height:auto;border:1px solid #ddd"


def _embedded_figure(image: str, caption: str) -> str:
    """An ``<img>`` holding the PNG as a data URI, shown at its own size (never wider than the
    page), captioned."""
    with open_regular(Path(image)) as stream:
        content = base64.b64encode(stream.read()).decode("ascii")
    text = html.escape(caption)
    return (
        f'<figure style="{_FIGURE_STYLE}"><img src="data:image/png;base64,{content}" '
        f'alt="{text}" style="{_IMAGE_STYLE}"><figcaption><small>{text}</small></figcaption>'
        "</figure>"
    )


_ONCE = re.compile(r'<div class="dreamer-audit" data-dreamer-(pictures|tables)="([^"]*)">')
"""A block shown once per explanation in a report (:func:`embed_once`): its kind and key."""


def _once_block(kind: str, key: str, inner: str) -> str:
    """``inner`` in a block that :func:`embed_once` keeps once per explanation and kind."""
    return f'<div class="dreamer-audit" data-dreamer-{kind}="{html.escape(key)}">{inner}</div>'


def pictures_html(record: AuditRecord) -> str:
    """A record's compact figures (each rollout's top steps, the factor gallery) embedded at
    their own size, captioned, in a block marked with the explanation's key (so that
    :func:`embed_once` can keep one copy per report). Empty without such pictures."""
    from .bundle import is_full_grid

    figures = [
        _embedded_figure(image, caption)
        for image, caption in record.images
        if not is_full_grid(image)
    ]
    if not figures:
        return ""
    return _once_block(
        "pictures",
        record.key,
        f"<p><b>dreamer-audit:</b> {html.escape(record.label)}: pictures</p>"
        f'<div style="{_FIGURES_STYLE}">{"".join(figures)}</div>',
    )


def grid_links_html(
    record: AuditRecord, index: int, evidence: Path, report_path: str | None
) -> str:
    """Links to a record's full rollout grids (several screens high each, so linked rather than
    embedded) in the test's artifacts folder ``evidence``; ``index`` is the record's position
    in the test, which names the copies (``artifacts.artifact_name``). Empty without grids."""
    from .artifacts import artifact_name
    from .bundle import is_full_grid

    def link(image: str, caption: str) -> str:
        href = _href(evidence / artifact_name(index, record, image), report_path)
        name = Path(image).stem.replace("-", " ")
        return (
            f'<a href="{html.escape(href)}" title="{html.escape(caption)}">{html.escape(name)}</a>'
        )

    links = [link(image, caption) for image, caption in record.images if is_full_grid(image)]
    if not links:
        return ""
    return (
        f'<div class="dreamer-audit"><p>{html.escape(record.label)}: the full grids, every '
        f"analysed step of a rollout: {', '.join(links)}</p></div>"
    )


def embed_once(
    extras: list[dict[str, Any]], shown: dict[str, str], nodeid: str
) -> list[dict[str, Any]]:
    """Keep each explanation's pictures and tables once per report: the blocks of an
    explanation (:func:`pictures_html`, the tables of :func:`html_extras`) that ``shown``
    ("kind:key" -> test id, updated here) says an earlier test's report carries are replaced by
    one line per kind naming that test; the test's own checks table is never replaced. Run
    where the reports meet (the controller, under xdist), so that the report's size grows with
    the distinct explanations, not with the tests."""
    import pytest_html

    kept = []
    noted = set()
    for extra in extras:
        found = (
            _ONCE.match(str(extra.get("content", "")))
            if extra.get("format_type") == "html"
            else None
        )
        if found is None:
            kept.append(extra)
            continue
        kind, key = found.group(1), html.unescape(found.group(2))
        first = shown.setdefault(f"{kind}:{key}", nodeid)
        if first == nodeid:
            kept.append(extra)
            continue
        if (kind, key) in noted:
            continue
        noted.add((kind, key))
        where = "and are in this test's artifacts folder" if kind == "pictures" else "same values"
        note = f"the {kind} of this explanation are shown with {first} ({where})"
        kept.append(
            pytest_html.extras.html(f'<div class="dreamer-audit"><p>{html.escape(note)}</p></div>')
        )
    return kept


def html_extras(
    records: Iterable[AuditRecord],
    *,
    evidence: Path | None = None,
    report_path: str | None = None,
) -> list[dict[str, Any]]:
    """pytest-html extras of a test's records: the pictures (:func:`pictures_html`), the links
    to the full grids in the test's artifacts folder ``evidence`` (relative to the report's
    file ``report_path``), the metrics table, then the claims tables."""
    import pytest_html

    extras: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        blocks = [pictures_html(record)]
        if evidence is not None:
            blocks.append(grid_links_html(record, index, evidence, report_path))
        blocks.append(_once_block("tables", record.key, metrics_table(record)))
        extras.extend(pytest_html.extras.html(block) for block in blocks if block)
        tables = (
            ("what each factor's observations coincide with", fact_table_html(record.factor_facts)),
            ("which factors may claim", factor_status_html(record.factor_status)),
            ("the score's top observations per event", score_table_html(record.score_facts)),
            (
                "model parameter randomization",
                randomization_html(record.randomization, record.metrics.posterior_entropy),
            ),
            ("what the latents know beyond their controls", probe_table_html(record.probes)),
            ("deletion and insertion curves of every head", curves_html(record.curves)),
        )
        for what, table in tables:
            if not table:
                continue
            title = f"{record.label}: {what}"
            extras.append(
                pytest_html.extras.html(
                    _once_block(
                        "tables",
                        record.key,
                        f"<p><b>dreamer-audit:</b> {html.escape(title)}</p>{table}",
                    )
                )
            )
    return extras


def checkpoint_summary_html(records: Iterable[AuditRecord]) -> str:
    """The HTML report's summary section: one row per audited checkpoint and settings, a value
    on the wrong side of its metric's meaning marked, and what each column means below."""
    columns = ("checkpoint", "game", "settings", *HEADLINE)
    header = "".join(
        f'<th title="{html.escape(METRIC_NOTES.get(name, name))}">{html.escape(name)}</th>'
        for name in columns
    )
    cell = '<td style="white-space: nowrap">'
    rows = []
    chosen = distinct(records)
    for record in chosen:
        cells = [record.label, record.game, record.settings_label]
        values = "".join(
            f"{cell}{html.escape(format_number(record.metric(name)))}"
            f"{_wrong_side_mark(name, record.metric(name))}</td>"
            for name in HEADLINE
        )
        rows.append(
            "<tr>" + "".join(f"{cell}{html.escape(str(c))}</td>" for c in cells) + values + "</tr>"
        )
    meanings = "".join(
        f"<li><code>{html.escape(name)}</code>: {html.escape(METRIC_NOTES[name])}</li>"
        for name in HEADLINE
    )
    plot = comparison_svg(chosen) if len(chosen) > 1 else ""
    return (
        '<div class="dreamer-audit-summary"><h2>Audited checkpoints</h2>'
        f"<table><tr>{header}</tr>{''.join(rows)}</table>"
        f"<details><summary>what each column means ({WRONG_SIDE_MARK}: on the wrong side of its "
        f"meaning)</summary><ul>{meanings}</ul></details>{plot}</div>"
    )


def _wrong_side_mark(name: str, value: float) -> str:
    """Only the marker, the reason in its tooltip (for narrow cells)."""
    reason = wrong_side(name, value)
    if not reason:
        return ""
    return (
        f' <span class="dreamer-audit-wrong-side" title="{html.escape(reason)}">'
        f"{WRONG_SIDE_MARK}</span>"
    )


_BAR_COLOURS = ("#4363d8", "#e6194b", "#3cb44b", "#f58231", "#911eb4", "#42d4f4", "#f032e6")


def comparison_svg(records: list[AuditRecord]) -> str:
    """An inline SVG comparing the checkpoints: one group of bars per headline metric (one bar
    per checkpoint and settings, in the table's order and colours, each labelled with its
    value), every group scaled to its own largest absolute value, so metrics of different units
    sit side by side. Metrics that are n/a for every checkpoint are left out. Standard library
    only; every string is escaped."""
    names = [n for n in HEADLINE if any(not math.isnan(r.metric(n)) for r in records)]
    bar, gap, height, top = 14, 26, 90, 18
    group = bar * len(records) + gap
    width = max(group * len(names) + 20, 200)
    parts = []
    for g, name in enumerate(names):
        values = [r.metric(name) for r in records]
        scale = max((abs(v) for v in values if not math.isnan(v)), default=0.0) or 1.0
        x0 = 10 + g * group
        for i, value in enumerate(values):
            x = x0 + i * bar
            colour = _BAR_COLOURS[i % len(_BAR_COLOURS)]
            if math.isnan(value):
                parts.append(f'<text x="{x + 2}" y="{top + height}" font-size="8">n/a</text>')
                continue
            size = abs(value) / scale * height
            y = top + height - size
            parts.append(
                f'<rect x="{x}" y="{y:.1f}" width="{bar - 2}" height="{size:.1f}" fill="{colour}">'
                f"<title>{html.escape(f'{records[i].label}: {name} = {format_number(value)}')}"
                "</title></rect>"
            )
            parts.append(
                f'<text x="{x + (bar - 2) / 2}" y="{y - 2:.1f}" font-size="7" '
                f'text-anchor="middle">{html.escape(format_number(value))}</text>'
            )
        parts.append(
            f'<text x="{x0}" y="{top + height + 12}" font-size="8">{html.escape(name)}</text>'
        )
    legend = "".join(
        f'<span style="color: {_BAR_COLOURS[i % len(_BAR_COLOURS)]}">&#9632;</span> '
        f"{html.escape(r.label)} ({html.escape(r.settings_label)})&nbsp;&nbsp;"
        for i, r in enumerate(records)
    )
    return (
        f'<div class="dreamer-audit-comparison"><svg width="{width}" height="{top + height + 20}" '
        f'role="img" aria-label="headline metrics by checkpoint">{"".join(parts)}</svg>'
        f"<p>{legend}(each metric scaled to its largest value)</p></div>"
    )
