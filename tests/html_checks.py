"""What the report tests read reports with: the markup checks that find HTML a payload in a
test id, label or message turned into markup, the payloads, and Chromium's flags (the browser
tests and ``docs/screenshot.py``). Test helpers, not shipped with the package."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

HEADLESS_CHROMIUM = (
    "--headless",
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)
"""Chromium's flags for photographing and reading a report offline, the same in the browser
tests and ``docs/screenshot.py`` (add ``--user-data-dir``, the window size and the action)."""

EFFECT_MARKERS = ("pwned",)
"""Every payload's effect contains this (case-insensitive): a title "PWNED", an id "pwned"."""
LABEL_PAYLOAD = "ckpt<img src=x onerror=document.title='PWNED-label'>"
"""A legal file name (no "/"): a checkpoint's label is its stem, so it lands in test ids."""
ID_PAYLOAD = (
    "<script>document.title='PWNED-script'</script>"
    "<img src=y onerror=\"document.body.insertAdjacentHTML('beforeend','<b id=pwned-id></b>')\">"
)
"""A parametrize id."""
MESSAGE_PAYLOAD = "<img src=z onerror=document.title='PWNED-message'>"
"""An assertion message (it reaches a pytest-html report's log)."""


class ParsedHTML(HTMLParser):
    """What a browser would run or create from a document or fragment (see :func:`parse_html`).

    Attributes:
        elements: ``(tag, attributes)`` of every start tag, in document order.
        scripts: the text inside ``<script>`` elements. text: every other text node.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def parse_html(document: str) -> ParsedHTML:
    """Parse an HTML document or fragment (entities in text decoded)."""
    parser = ParsedHTML()
    parser.feed(document)
    parser.close()
    return parser


def _marked(value: str | None) -> bool:
    return value is not None and any(m in value.lower() for m in EFFECT_MARKERS)


def markup_offences(document: str) -> list[str]:
    """Places where a payload became markup: an element or attribute carrying a marker in its
    name, an event handler carrying one, an element whose ``id`` starts with one (what the
    payloads create), a script containing one, a ``javascript:`` URL. A marker inside text or
    an ordinary attribute value (``alt``, ``src``, an ``id`` set from a test id) is inert."""
    markup = parse_html(document)
    offences = [f"<script> containing {s[:80]!r}" for s in markup.scripts if _marked(s)]
    for tag, attributes in markup.elements:
        if _marked(tag):
            offences.append(f"element <{tag}>")
        for name, value in attributes:
            text = (value or "").strip().lower()
            if (
                _marked(name)
                or (name.startswith("on") and _marked(value))
                or (name == "id" and text.startswith(EFFECT_MARKERS))  # an element a payload made
                or (name in ("src", "href") and text.startswith("javascript:"))
            ):
                offences.append(f"<{tag} {name}={value!r}>")
    return offences


def text_of(fragment: str) -> str:
    """What a browser shows for ``fragment``: its text, entities decoded."""
    return "".join(parse_html(fragment).text)


def report_blob(report: Path) -> dict[str, Any]:
    """pytest-html 4's data: the JSON in the ``data-jsonblob`` attribute of ``report``."""
    for _tag, attributes in parse_html(report.read_text(encoding="utf-8")).elements:
        for name, value in attributes:
            if name == "data-jsonblob" and value is not None:
                blob: dict[str, Any] = json.loads(value)
                return blob
    raise AssertionError(f"{report} has no data-jsonblob attribute (not a pytest-html 4 report?)")


def rendered_fragments(blob: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, html)`` of every string of a pytest-html 4 blob that its script inserts as
    HTML: table cells, html extras, logs and table html."""
    fragments = []
    for nodeid, entries in blob["tests"].items():
        for entry in entries:
            for cell in entry.get("resultsTableRow", []):
                fragments.append((f"{nodeid}: table cell", cell))
            for extra in entry.get("extras", []):
                if extra.get("format_type") == "html":
                    fragments.append((f"{nodeid}: html extra", extra["content"]))
            fragments.append((f"{nodeid}: log", entry.get("log", "")))
            for item in entry.get("tableHtml", []):
                fragments.append((f"{nodeid}: table html", item))
    return fragments
