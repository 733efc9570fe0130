"""The terminal summary: one line per audited checkpoint and settings. Standard library only."""

from __future__ import annotations

from collections.abc import Iterable

from .numbers import format_number
from .records import HEADLINE, AuditRecord, wrong_side

__all__ = ["distinct", "printable", "summary_lines"]


def printable(text: str) -> str:
    """``text`` with control characters (ESC, CR, ...) shown as escapes, so that a hostile name
    cannot move the cursor, rewrite earlier lines or change colours in the user's terminal."""
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode()
        for char in text
    )


def distinct(records: Iterable[AuditRecord]) -> list[AuditRecord]:
    """The first record of each checkpoint file and explanation (cache key), in order: files
    with identical bytes share a key but are each listed."""
    seen: dict[tuple[str, str], AuditRecord] = {}
    for record in records:
        seen.setdefault((record.key, record.checkpoint), record)
    return list(seen.values())


def summary_lines(records: Iterable[AuditRecord]) -> list[str]:
    """One terminal line per audited checkpoint and settings (deduplicated by cache key), each
    followed by a ``!`` line per metric on the wrong side of its meaning."""
    lines = []
    for record in distinct(records):

        def show(name: str, record: AuditRecord = record) -> str:
            return format_number(record.metric(name))

        lines.append(
            printable(
                f"{record.label} ({record.game}, {record.settings_label}): "
                f"return {show('mean_return')}, rel. error {show('relative_error')}, "
                f"stability cosine mean {show('stability_mean_cosine')} "
                f"min {show('stability_min_cosine')}, "
                f"confidence rho {show('confidence_spearman')}, "
                f"sanity rho {show('sanity_spearman')}, "
                f"deletion x{show('deletion_ratio')}"
            )
        )
        lines.extend(
            printable(f"  ! {reason}")
            for reason in (wrong_side(name, record.metric(name)) for name in HEADLINE)
            if reason
        )
    return lines
