"""Report side of an audit: artifacts per test, pytest-html extras, summaries.

Torch-free. A test that used an explanation carries :class:`AuditRecord` s in its item's stash;
the hooks in ``plugin.py`` turn them into

* files in the artifacts directory (PNGs and ``summary.json``, one directory per test, written
  atomically so that xdist workers and killed runs never leave a half-written file);
* pytest-html extras (base64 PNGs and an HTML table of the metrics, appended to whatever the
  report already has; plain JSON-serializable dicts, so they cross xdist);
* a JSON line in ``report.user_properties`` that the controller collects for the terminal and
  HTML summaries of every audited checkpoint.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_copy, atomic_text
from ..jsonvalues import to_json_number

__all__ = [
    "PROPERTY",
    "AuditRecord",
    "fact_table_html",
    "html_extras",
    "metrics_table",
    "summary_lines",
    "artifact_directory",
    "checkpoint_summary_html",
    "write_artifacts",
]

PROPERTY = "dreamer_audit"
"""Name of the user property that carries an audit's summary to the controller."""

_HEADLINE = (
    "mean_return",
    "relative_error",
    "explained_variance",
    "stability_mean_cosine",
    "stability_min_cosine",
    "stability_topk_jaccard",
    "confidence_spearman",
    "sanity_spearman",
    "deletion_ratio",
)


@dataclass(frozen=True)
class AuditRecord:
    """What a report needs to know about one explanation a test used.

    Attributes:
        checkpoint: path of the audited checkpoint. label: its short name.
        key: the explanation's cache key (identifies the settings).
        game: the game. settings: the audit settings as plain values.
        metrics: the trust metrics and the mean return (NaN written as None).
        images: PNG paths (cache entry) with a caption each.
        factor_facts: each game fact against each factor
            (``semantics.FactAssociation.to_json()``, one per row of the report's table).
    """

    checkpoint: str
    label: str
    key: str
    game: str
    settings: dict[str, Any]
    metrics: dict[str, float | None]
    images: tuple[tuple[str, str], ...]
    factor_facts: tuple[dict[str, Any], ...] = ()

    def summary(self) -> dict[str, Any]:
        """JSON-ready, without the image paths."""
        data = asdict(self)
        data.pop("images")
        return data


def record_metrics(metrics: Mapping[str, Any], mean_return: float) -> dict[str, float | None]:
    """Metrics with NaN as None and the mean return added."""
    return {
        "mean_return": to_json_number(float(mean_return)),
        **{k: to_json_number(v) for k, v in metrics.items()},
    }


def artifact_directory(root: Path, nodeid: str) -> Path:
    """A filesystem-safe directory name for a test id (unique per test id)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("._")[:150]
    return root / safe


def write_artifacts(directory: Path, nodeid: str, records: Iterable[AuditRecord]) -> Path:
    """Copy each record's PNGs into ``directory`` and write ``summary.json`` there."""
    directory.mkdir(parents=True, exist_ok=True)
    summaries = []
    for index, record in enumerate(records):
        for image, _caption in record.images:
            source = Path(image)
            atomic_copy(source, directory / f"{index}-{record.label}-{source.name}")
        summaries.append(record.summary())
    text = json.dumps({"test": nodeid, "audits": summaries}, indent=2, sort_keys=True) + "\n"
    atomic_text(directory / "summary.json", text)
    return directory


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def metrics_table(record: AuditRecord) -> str:
    """An HTML table of the headline metrics; every string is escaped."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(_format(record.metrics.get(name)))}</td></tr>"
        for name in _HEADLINE
    )
    title = f"{record.label} ({record.game}, {_settings_label(record.summary())})"
    return (
        f'<div class="dreamer-audit"><p><b>dreamer-audit:</b> {html.escape(title)}</p>'
        f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table></div>"
    )


def _fact_cell(value: float, event: bool, bold: bool) -> str:
    if math.isnan(value):
        return "<td>n/a</td>"
    text = f"{value:.0%}" if event else f"{value:+.2f}"
    return f"<td><b>{text}</b></td>" if bold else f"<td>{text}</td>"


def fact_table_html(associations: Iterable[Mapping[str, Any]]) -> str:
    """An HTML table of game facts against factors (rows: ``FactAssociation.to_json()``).

    Events show each factor's precision next to the base rate, graded facts each factor's
    Spearman; the best factor of a row is bold where it beats chance (an event: above the
    base rate; a graded fact: any defined value). Every string is escaped. Empty without rows.
    """
    rows = list(associations)
    if not rows:
        return ""
    width = max(len(row["per_factor"]) for row in rows)
    header = "".join(f"<th>factor {j}</th>" for j in range(width))
    lines = []
    for row in rows:
        values = [math.nan if v is None else float(v) for v in row["per_factor"]]
        event = row["kind"] == "event"
        base = row["base_rate"]
        ranked = [abs(v) if not event else v for v in values]
        best = max(
            (j for j, v in enumerate(ranked) if not math.isnan(v)),
            key=lambda j: ranked[j],
            default=-1,
        )
        if best >= 0 and event and not ranked[best] > (base or 0.0):
            best = -1
        cells = "".join(_fact_cell(v, event, j == best) for j, v in enumerate(values))
        measure = f"precision of top-{row['k']}" if event else "Spearman"
        chance = f"{base:.1%}" if event and base is not None else ""
        lines.append(
            f"<tr><td>{html.escape(str(row['name']))}</td><td>{html.escape(measure)}</td>"
            f"<td>{html.escape(chance)}</td>{cells}</tr>"
        )
    return (
        '<table class="dreamer-audit-facts"><tr><th>fact</th><th>measure</th>'
        f"<th>chance</th>{header}</tr>{''.join(lines)}</table>"
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
            content = base64.b64encode(Path(image).read_bytes()).decode("ascii")
            extras.append(pytest_html.extras.png(content, name=f"{record.label}: {caption}"))
    return extras


def _settings_label(summary: Mapping[str, Any]) -> str:
    settings = summary.get("settings", {})
    return (
        f"{settings.get('score')} score, {settings.get('layout')} layout, "
        f"rank {settings.get('rank')}, "
        f"{settings.get('episodes')}x{settings.get('steps')}"
    )


def summary_lines(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """One terminal line per audited checkpoint and settings (deduplicated by cache key)."""
    seen: dict[str, Mapping[str, Any]] = {}
    for summary in summaries:
        seen.setdefault(str(summary["key"]), summary)
    lines = []
    for summary in seen.values():
        m = summary["metrics"]
        lines.append(
            f"{summary['label']} ({summary['game']}, {_settings_label(summary)}): "
            f"return {_format(m.get('mean_return'))}, "
            f"rel. error {_format(m.get('relative_error'))}, stability cosine mean "
            f"{_format(m.get('stability_mean_cosine'))} min "
            f"{_format(m.get('stability_min_cosine'))}, confidence rho "
            f"{_format(m.get('confidence_spearman'))}, sanity rho "
            f"{_format(m.get('sanity_spearman'))}, deletion x{_format(m.get('deletion_ratio'))}"
        )
    return lines


def checkpoint_summary_html(summaries: Iterable[Mapping[str, Any]]) -> str:
    """The HTML report's summary section: one row per audited checkpoint and settings."""
    seen: dict[str, Mapping[str, Any]] = {}
    for summary in summaries:
        seen.setdefault(str(summary["key"]), summary)
    columns = ("checkpoint", "game", "settings", *_HEADLINE)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    rows = []
    for summary in seen.values():
        cells = [summary["label"], summary["game"], _settings_label(summary)] + [
            _format(summary["metrics"].get(name)) for name in _HEADLINE
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
