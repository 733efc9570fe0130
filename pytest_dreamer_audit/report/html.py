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
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..files import open_regular
from ..results.trustworthy import trust_verdicts
from ..results.values import (
    CONTROLS,
    LATENTS,
    CurveSet,
    FactAssociation,
    FactorStatus,
    ProbeRow,
    RandomizationStage,
    ScoreAssociation,
)
from .numbers import format_number, format_percent
from .records import HEADLINE, METRIC_NOTES, AuditRecord, Check, wrong_side
from .terminal import distinct

__all__ = [
    "artifacts_link",
    "checks_html",
    "checkpoint_summary_html",
    "comparison_svg",
    "curves_html",
    "fact_table_html",
    "factor_status_html",
    "probe_table_html",
    "randomization_html",
    "score_table_html",
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
        f"{WRONG_SIDE_MARK} {html.escape(reason)}</span>"
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
    return (
        f'<div class="dreamer-audit"><p><b>dreamer-audit:</b> {html.escape(title)}</p>'
        f"<table><tr><th>metric</th><th>value</th><th>meaning</th></tr>{rows}</table>"
        "<p>the default trust checks (<code>assert_trustworthy</code>)</p>"
        "<table><tr><th>check</th><th>metric</th><th>value</th><th>threshold</th>"
        f"<th>verdict</th></tr>{checks}</table></div>"
    )


def _fact_cell(value: float, event: bool, claimed: bool, p: float, rho: float) -> str:
    if math.isnan(value):
        return "<td>n/a</td>"
    text = f"{value:.0%}" if event else f"{value:+.2f}"
    tested = f"rank correlation {rho:+.2f}, " if event and not math.isnan(rho) else ""
    where = "" if math.isnan(p) else f' title="{tested}adjusted p = {p:.3g}"'
    return f"<td{where}><b>{text}</b></td>" if claimed else f"<td{where}>{text}</td>"


def fact_table_html(associations: Iterable[FactAssociation]) -> str:
    """An HTML table of game facts against factors, with what chance gives beside each row.

    Events show each factor's precision at its top picks and the base rate; the claim is
    tested on the rank-biserial correlation of the factor's whole activation with the event
    (in the cell's tooltip), and the null column gives the 95% quantiles of the best
    factor's under both nulls (circular shifts / other episodes at the same steps). Graded
    facts show each factor's Spearman and both nulls' 95% quantiles of the best ``|rho|``.
    A value is bold only where it is the row's claim (:attr:`FactAssociation.claim`: beyond
    both nulls after maxT and Holm correction); its adjusted p-value is in the cell's tooltip
    and the claim's in the last column with its effect over other episodes and the effect's
    episode-bootstrap 95% interval. A row that beats only the circular shifts says "time" (the
    same steps of other episodes show it too). Every string is escaped. Empty without rows.
    """
    rows = list(associations)
    if not rows:
        return ""
    width = max(len(row.per_factor) for row in rows)
    header = "".join(f"<th>factor {j}</th>" for j in range(width))
    lines = []
    for row in rows:
        event = row.kind == "event"
        claim = row.claim
        p_values = row.p_values or (math.nan,) * len(row.per_factor)
        cells = "".join(
            _fact_cell(v, event, j == claim, p_values[j], row.correlations[j])
            for j, v in enumerate(row.per_factor)
        )
        measure = f"precision of top-{row.k}" if event else "Spearman"
        chance = f"{row.base_rate:.1%}" if event and not math.isnan(row.base_rate) else ""
        if math.isnan(row.null_q95):
            null = "no factor may claim"
        elif event:
            null = f"rho {row.null_q95:+.2f} / {format_number(row.swap_q95)}"
        else:
            null = f"|rho| {row.null_q95:.2f} / {format_number(row.swap_q95)}"
        verdict = _fact_verdict(row)
        lines.append(
            f"<tr><td>{html.escape(row.name)}</td><td>{html.escape(measure)}</td>"
            f"<td>{html.escape(chance)}</td><td>{html.escape(null)}</td>{cells}"
            f"<td>{html.escape(verdict)}</td></tr>"
        )
    level = rows[0].level
    return (
        '<table class="dreamer-audit-facts"><tr><th>fact</th><th>measure</th>'
        "<th>base rate</th><th>null 95%: shifts / other episodes</th>"
        f"{header}<th>claim at level {level:g} (effect over other episodes, 95% interval)</th>"
        "</tr>"
        f"{''.join(lines)}</table>"
    )


def _effect(value: float, low: float, high: float, percent: bool) -> str:
    if math.isnan(value):
        return "effect n/a"
    shown = [f"{v:+.0%}" if percent else f"{v:+.2f}" for v in (value, low, high)]
    return f"{shown[0]} [{shown[1]}, {shown[2]}]"


def _fact_verdict(row: FactAssociation) -> str:
    """The last column: the claim with its effect, "time", or no claim."""
    claim = row.claim
    if claim >= 0:
        effect = _effect(row.effects[claim], row.effect_low[claim], row.effect_high[claim], False)
        return f"factor {claim}, p = {row.p_values[claim]:.3g}, {effect}"
    other = [j for j, yes in enumerate(row.explained_by_other) if yes]
    if other:
        return (
            f"{row.controlled_for}: factor {other[0]} beats the shifts and other episodes, not "
            f"shuffles within {row.controlled_for}, which explains it"
        )
    timed = [j for j, yes in enumerate(row.time_only) if yes]
    if timed:
        return f"time: factor {timed[0]} beats circular shifts only (other episodes show it too)"
    return "none beats chance"


def factor_status_html(statuses: Iterable[FactorStatus]) -> str:
    """An HTML table of each factor's stability, time correlation, start and tie fractions, and
    whether it may claim anything (``FactorStatus``). Empty without rows."""
    rows = list(statuses)
    if not rows:
        return ""
    lines = [
        f"<tr><td>factor {s.factor}</td><td>{html.escape(format_number(s.stability))}</td>"
        f"<td>{html.escape(format_number(s.time_spearman))}</td>"
        f"<td>{format_percent(s.start_fraction)}</td><td>{format_percent(s.tie_fraction)}</td>"
        f"<td>{html.escape(s.label or 'may claim')}</td></tr>"
        for s in rows
    ]
    return (
        '<table class="dreamer-audit-factors"><tr><th>factor</th>'
        "<th>stability (worst matched cosine)</th><th>Spearman with the step</th>"
        "<th>picks in the first steps</th><th>picks tied</th><th>claims</th></tr>"
        f"{''.join(lines)}</table>"
    )


def score_table_html(scores: Iterable[ScoreAssociation]) -> str:
    """An HTML table of the score's top observations per rollout against each event: precision,
    base rate, both nulls' 5-95% ranges (circular shifts, other episodes at the same steps),
    the effect over other episodes with its episode-bootstrap 95% interval, and whether the
    picks hit the event more or less often than chance (beyond both nulls, Holm-corrected over
    every event and direction at the row's level, ``--dreamer-significance``; "time" where only
    the circular shifts are beaten). Empty without rows."""
    rows = list(scores)
    if not rows:
        return ""
    lines = []
    for s in rows:
        verdict = {
            "above": f"above chance (p = {s.p_above:.3g})",
            "below": f"BELOW chance (p = {s.p_below:.3g})",
            "chance": "time (other episodes' same steps show it too)" if s.time_only else "chance",
        }[s.verdict()]
        lines.append(
            f"<tr><td>{html.escape(s.name)}</td><td>{format_percent(s.precision)}</td>"
            f"<td>{format_percent(s.base_rate)}</td>"
            f"<td>{format_percent(s.null_q05)}-{format_percent(s.null_q95)}</td>"
            f"<td>{format_percent(s.swap_q05)}-{format_percent(s.swap_q95)}</td>"
            f"<td>{_effect(s.effect, s.effect_low, s.effect_high, True)}</td>"
            f"<td>{html.escape(verdict)}</td></tr>"
        )
    k = rows[0].k
    return (
        '<table class="dreamer-audit-scores"><tr><th>event</th>'
        f"<th>precision of each rollout's top-{k}</th><th>base rate</th>"
        "<th>null 5-95%: circular shifts</th><th>null 5-95%: other episodes</th>"
        "<th>effect over other episodes (95% interval)</th>"
        f"<th>verdict (beyond both nulls, Holm over the {rows[0].family} tests of the table, "
        f"at {rows[0].level:g})</th></tr>{''.join(lines)}</table>"
    )


def randomization_html(stages: Iterable[RandomizationStage], trained_entropy: float) -> str:
    """An HTML table of the model parameter randomization stages: which layers were randomized,
    the randomized posteriors' entropy next to the trained one's, and how much of the
    explanation survived (Spearman of the observation scores, matched prototype cosine).
    Empty without stages."""
    rows = list(stages)
    if not rows:
        return ""
    lines = [
        f"<tr><td>{html.escape(s.kind)}</td><td>{html.escape(s.layers)}</td>"
        f"<td>{html.escape(format_number(s.entropy))}</td>"
        f"<td>{html.escape(format_number(s.observation_spearman))}</td>"
        f"<td>{html.escape(format_number(s.prototype_cosine))}</td></tr>"
        for s in rows
    ]
    return (
        '<table class="dreamer-audit-randomization"><tr><th>stage</th><th>layers randomized</th>'
        f"<th>posterior entropy (trained {html.escape(format_number(trained_entropy))})</th>"
        "<th>score Spearman with trained</th><th>prototype cosine with trained</th></tr>"
        f"{''.join(lines)}</table>"
    )


def probe_table_html(rows: Iterable[ProbeRow]) -> str:
    """An HTML table of the fact probes: per fact, the out-of-fold AUC (events) or R^2 (graded)
    from each trained input and each control, and whether the best trained input beats the best
    control. Empty without rows."""
    table = list(rows)
    if not table:
        return ""
    names = [*LATENTS, *CONTROLS]
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    lines = []
    for row in table:
        (latent, best), (control, rival) = row.best_latent, row.best_control
        if math.isnan(best) or math.isnan(rival):
            verdict = "undefined"
        elif best > rival:
            verdict = f"{latent} beats {control} by {best - rival:.3f}"
        else:
            verdict = f"{control} (a control) is as good or better"
        scores = dict(row.scores)
        cells = "".join(
            f"<td>{html.escape(format_number(scores.get(name, math.nan)))}</td>" for name in names
        )
        measure = "AUC" if row.kind == "event" else "R^2"
        lines.append(
            f"<tr><td>{html.escape(row.fact)}</td><td>{measure}</td>{cells}"
            f"<td>{html.escape(verdict)}</td></tr>"
        )
    return (
        '<table class="dreamer-audit-probes"><tr><th>fact</th><th>measure</th>'
        f"{header}<th>verdict</th></tr>{''.join(lines)}</table>"
    )


def curves_html(curves: Iterable[CurveSet]) -> str:
    """An HTML table of the deletion and insertion curves: per head, each curve's area over the
    random orders' and the curve itself at a few fractions (score / random). Empty without
    curves."""
    rows = list(curves)
    if not rows:
        return ""
    lines = []
    for c in rows:
        points = "; ".join(
            f"{f:.0%}: {format_number(s)} / {format_number(r)}"
            for f, s, r in zip(c.fractions, c.score_curve, c.random_curve, strict=True)
            if f in (0.1, 0.3, 0.5)
        )
        lines.append(
            f"<tr><td>{html.escape(c.head)}</td><td>{html.escape(c.kind)}</td>"
            f"<td>{html.escape(format_number(c.area))}</td><td>{html.escape(points)}</td></tr>"
        )
    return (
        '<table class="dreamer-audit-curves"><tr><th>head</th><th>curve</th>'
        "<th>area over random (&gt; 0: the score beats chance)</th>"
        "<th>output change, score / random</th></tr>"
        f"{''.join(lines)}</table>"
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
