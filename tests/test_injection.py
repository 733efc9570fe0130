"""Markup in test names, parameter ids, checkpoint labels and paths is shown as text, never run:
in the pytest-html report (ours and pytest-html's own cells) and in the CLI's index.html.

pytest-html 4 renders the results table in the browser from a JSON blob (the ``data-jsonblob``
attribute): each cell of ``resultsTableRow``, each ``html`` extra and the log are inserted with
``innerHTML``, and it builds the test-id cell as ``<td class="col-testId">{nodeid}</td>`` without
escaping. Fragments inserted that way do not run ``<script>`` elements, but they do run event
handlers such as ``<img src=x onerror=...>``. The plugin escapes that cell
(``pytest_html_results_table_row`` in ``plugin/reporting.py``); media names are set with ``innerText``.

The payloads and markup checks live in ``pytest_dreamer_audit.testing``, the payload-carrying
project and CLI run in ``conftest.py`` (fixtures ``evil_project_report`` and ``evil_cli``):
``test_browser.py`` opens the same pages in Chromium.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

from pytest_dreamer_audit.cli import INDEX_FILE, write_index
from pytest_dreamer_audit.results.explanation import load_explanation
from tests.html_checks import (
    ID_PAYLOAD,
    LABEL_PAYLOAD,
    MESSAGE_PAYLOAD,
    markup_offences,
    parse_html,
    rendered_fragments,
    report_blob,
    text_of,
)


def test_the_payloads_are_real_markup() -> None:
    """Unescaped, each payload is an event handler or a script with the marker: the checks
    below would see it."""
    for payload in (LABEL_PAYLOAD, ID_PAYLOAD, MESSAGE_PAYLOAD):
        assert markup_offences(payload), payload
        assert not markup_offences(html.escape(payload))


def test_pytest_html_report_shows_ids_labels_and_messages_as_text(
    evil_project_report: Path,
) -> None:
    report = evil_project_report
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
    summary = parse_html(document)
    assert any(LABEL_PAYLOAD in text for text in summary.text)
    extras = [
        extra
        for entries in blob["tests"].values()
        for entry in entries
        for extra in entry["extras"]
    ]
    assert any(LABEL_PAYLOAD in text_of(e["content"]) for e in extras if e["format_type"] == "html")
    # The pictures are embedded in our HTML (no pytest-html media extras), under the label as
    # text; the markup scan above covered their alt and caption attributes.
    assert not [e for e in extras if e["format_type"] == "image"]
    pictures = [text_of(e["content"]) for e in extras if "data-dreamer-pictures" in e["content"]]
    assert any(f"{LABEL_PAYLOAD}: pictures" in text for text in pictures)
    # The failure message reached the log, escaped.
    logs = [entry["log"] for entries in blob["tests"].values() for entry in entries]
    assert any(MESSAGE_PAYLOAD in text_of(log) for log in logs)


def test_cli_index_shows_a_checkpoint_path_with_markup_as_text(evil_cli: Path) -> None:
    page = (evil_cli / INDEX_FILE).read_text(encoding="utf-8")
    assert markup_offences(page) == []
    texts = parse_html(page).text
    assert any(LABEL_PAYLOAD in text and "model<script>.pth" in text for text in texts)


def test_write_index_escapes_the_game_label_and_image_names(evil_cli: Path, tmp_path: Path) -> None:
    explanation = dataclasses.replace(load_explanation(evil_cli), game=ID_PAYLOAD)
    write_index(tmp_path, explanation, [f"{LABEL_PAYLOAD}.png"], checkpoint=MESSAGE_PAYLOAD)
    page = (tmp_path / INDEX_FILE).read_text(encoding="utf-8")
    assert markup_offences(page) == []
    markup = parse_html(page)
    assert f"Explanation of {ID_PAYLOAD}" in markup.text
    assert MESSAGE_PAYLOAD in markup.text
    sources = [dict(attrs).get("src") for tag, attrs in markup.elements if tag == "img"]
    assert f"{LABEL_PAYLOAD}.png" in sources  # a plain relative file name, quoted
