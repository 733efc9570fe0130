"""Markup in test names, parameter ids, checkpoint labels and paths is shown as text, never run:
in the pytest-html report (ours and pytest-html's own cells) and in the CLI's index.html.

pytest-html 4 renders the results table in the browser from a JSON blob (the ``data-jsonblob``
attribute): each cell of ``resultsTableRow``, each ``html`` extra and the log are inserted with
``innerHTML``, and it builds the test-id cell as ``<td class="col-testId">{nodeid}</td>`` without
escaping. Fragments inserted that way do not run ``<script>`` elements, but they do run event
handlers such as ``<img src=x onerror=...>``. The plugin escapes that cell
(``pytest_html_results_table_row`` in ``plugin.py``); media names are set with ``innerText``.

The helpers here are shared with ``test_browser.py``, which opens the same pages in Chromium.
"""

from __future__ import annotations

import dataclasses
import html
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_dreamer_audit.cli import INDEX_FILE, main, write_index
from pytest_dreamer_audit.results.explanation import load_explanation
from pytest_dreamer_audit.testing import write_tiny_checkpoint

from .test_plugin import FAST_INI

EFFECT_MARKERS = ("pwned",)
"""Every payload's effect contains this (case-insensitive): a title "PWNED", an id "pwned"."""
LABEL_PAYLOAD = "ckpt<img src=x onerror=document.title='PWNED-label'>"
"""A legal file name (no "/"): the checkpoint's label is its stem, so it lands in test ids."""
ID_PAYLOAD = (
    "<script>document.title='PWNED-script'</script>"
    "<img src=y onerror=\"document.body.insertAdjacentHTML('beforeend','<b id=pwned-id></b>')\">"
)
"""A parametrize id."""
MESSAGE_PAYLOAD = "<img src=z onerror=document.title='PWNED-message'>"
"""An assertion message (it reaches the report's log)."""
FAST_CLI = ["--episodes", "2", "--steps", "8", "--rank", "2", "--top-k", "2"]
FAST_CLI += ["--stability-refits", "0", "--render-episodes", "1", "--device", "cpu"]
FAST_CLI += ["--no-progress"]

EVIL_TESTS = f"""
import pytest

ID = {ID_PAYLOAD!r}


@pytest.mark.parametrize("value", [1], ids=[ID])
def test_plain(value):
    pass


def test_audited(dreamer_explanation):
    pass


@pytest.mark.parametrize("value", [1], ids=[ID])
def test_audited_failing(dreamer_audit, value):
    assert value == 2, {MESSAGE_PAYLOAD!r}
"""


# --- finding markup ---------------------------------------------------------------------------


class _Markup(HTMLParser):
    """Collects what a browser would run or create from a document or fragment."""

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


def parse(document: str) -> _Markup:
    parser = _Markup()
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
    markup = parse(document)
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
    return "".join(parse(fragment).text)


def report_blob(report: Path) -> dict[str, Any]:
    """pytest-html 4's data: the JSON in the ``data-jsonblob`` attribute."""
    for _tag, attributes in parse(report.read_text(encoding="utf-8")).elements:
        for name, value in attributes:
            if name == "data-jsonblob" and value is not None:
                blob: dict[str, Any] = json.loads(value)
                return blob
    raise AssertionError(f"{report} has no data-jsonblob attribute (not a pytest-html 4 report?)")


def rendered_fragments(blob: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, html) of every blob string the report's script inserts as HTML."""
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


# --- the pages --------------------------------------------------------------------------------


def run_evil_project(pytester: pytest.Pytester) -> Path:
    """A project whose checkpoint label and parameter ids carry payloads; returns the
    self-contained pytest-html report of its run."""
    checkpoint = write_tiny_checkpoint(pytester.path / f"{LABEL_PAYLOAD}.pth", seed=1)
    pytester.makeini(FAST_INI)
    pytester.makepyfile(test_evil=EVIL_TESTS)
    result = pytester.runpytest(
        "--dreamer-checkpoint", str(checkpoint), "--html=report.html", "--self-contained-html"
    )
    result.assert_outcomes(passed=2, failed=1)
    return pytester.path / "report.html"


def run_evil_cli(root: Path) -> Path:
    """``dreamer-audit explain`` of a checkpoint whose path carries a payload; returns the
    output folder (index.html and the PNGs)."""
    folder = root / LABEL_PAYLOAD
    folder.mkdir(parents=True)
    checkpoint = write_tiny_checkpoint(folder / "model<script>.pth", seed=2)
    out = root / "out"
    assert main(["explain", str(checkpoint), "--out", str(out), *FAST_CLI]) == 0
    return out


@pytest.fixture(scope="module")
def evil_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_evil_cli(tmp_path_factory.mktemp("cli"))


# --- the tests --------------------------------------------------------------------------------


def test_the_payloads_are_real_markup() -> None:
    """Unescaped, each payload is an event handler or a script with the marker: the checks
    below would see it."""
    for payload in (LABEL_PAYLOAD, ID_PAYLOAD, MESSAGE_PAYLOAD):
        assert markup_offences(payload), payload
        assert not markup_offences(html.escape(payload))


def test_pytest_html_report_shows_ids_labels_and_messages_as_text(
    pytester: pytest.Pytester,
) -> None:
    report = run_evil_project(pytester)
    document = report.read_text(encoding="utf-8")
    assert markup_offences(document) == []
    blob = report_blob(report)
    offences = [
        f"{where}: {offence}"
        for where, fragment in rendered_fragments(blob)
        for offence in markup_offences(fragment)
    ]
    assert offences == []

    # The payloads are there, as text: the test-id cells read exactly like the node ids.
    nodeids = set(blob["tests"])
    assert f"test_evil.py::test_plain[{ID_PAYLOAD}]" in nodeids
    assert f"test_evil.py::test_audited[{LABEL_PAYLOAD}]" in nodeids
    shown = {
        text_of(cell)
        for entries in blob["tests"].values()
        for entry in entries
        for cell in entry["resultsTableRow"]
        if 'class="col-testId"' in cell
    }
    assert nodeids <= shown

    # Our parts: the summary table and the metrics extras name the checkpoint as text.
    summary = parse(document)
    assert any(LABEL_PAYLOAD in text for text in summary.text)
    extras = [
        extra
        for entries in blob["tests"].values()
        for entry in entries
        for extra in entry["extras"]
    ]
    assert any(LABEL_PAYLOAD in text_of(e["content"]) for e in extras if e["format_type"] == "html")
    # Media names are set with innerText by pytest-html: raw text is right there.
    assert any(e["name"].startswith(LABEL_PAYLOAD) for e in extras if e["format_type"] == "image")
    # The failure message reached the log, escaped.
    logs = [entry["log"] for entries in blob["tests"].values() for entry in entries]
    assert any(MESSAGE_PAYLOAD in text_of(log) for log in logs)


def test_cli_index_shows_a_checkpoint_path_with_markup_as_text(evil_cli: Path) -> None:
    page = (evil_cli / INDEX_FILE).read_text(encoding="utf-8")
    assert markup_offences(page) == []
    texts = parse(page).text
    assert any(LABEL_PAYLOAD in text and "model<script>.pth" in text for text in texts)


def test_write_index_escapes_the_game_label_and_image_names(evil_cli: Path, tmp_path: Path) -> None:
    explanation = dataclasses.replace(load_explanation(evil_cli), game=ID_PAYLOAD)
    write_index(tmp_path, explanation, [f"{LABEL_PAYLOAD}.png"], checkpoint=MESSAGE_PAYLOAD)
    page = (tmp_path / INDEX_FILE).read_text(encoding="utf-8")
    assert markup_offences(page) == []
    markup = parse(page)
    assert f"Explanation of {ID_PAYLOAD}" in markup.text
    assert MESSAGE_PAYLOAD in markup.text
    sources = [dict(attrs).get("src") for tag, attrs in markup.elements if tag == "img"]
    assert f"{LABEL_PAYLOAD}.png" in sources  # a plain relative file name, quoted
