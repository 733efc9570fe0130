from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pytest_dreamer_audit.report.html import (
    AuditRecord,
    artifact_directory,
    checkpoint_summary_html,
    fact_table_html,
    html_extras,
    metrics_table,
    record_metrics,
    summary_lines,
    write_artifacts,
)


def _record(tmp_path: Path, label: str = "agent<script>alert(1)</script>") -> AuditRecord:
    image = tmp_path / "rollout-0.png"
    image.write_bytes(b"\x89PNG fake")
    return AuditRecord(
        checkpoint="a.pth",
        label=label,
        key="k1",
        game="freeway",
        settings={
            "rank": 10,
            "score": "activation",
            "layout": "per_step",
            "episodes": 16,
            "steps": 50,
        },
        metrics=record_metrics({"relative_error": 0.25, "sanity_spearman": float("nan")}, 3.5),
        images=((str(image), "rollout 0"),),
    )


def test_metrics_are_cleaned_and_escaped(tmp_path: Path) -> None:
    record = _record(tmp_path)
    assert record.metrics == {"mean_return": 3.5, "relative_error": 0.25, "sanity_spearman": None}
    table = metrics_table(record)
    assert "<script>" not in table
    assert "agent&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert "(freeway, activation score, per_step layout, rank 10, 16x50)" in table
    assert "<td>relative_error</td><td>0.25</td>" in table
    assert "<td>sanity_spearman</td><td>n/a</td>" in table
    assert table.index("stability_mean_cosine") < table.index("stability_min_cosine")
    summary = checkpoint_summary_html([record.summary(), record.summary()])
    assert summary.count("<tr>") == 2  # header + one deduplicated checkpoint
    assert "<script>" not in summary


def test_html_extras_embed_png_and_are_json_serializable(tmp_path: Path) -> None:
    extras = html_extras([_record(tmp_path)])
    assert [e["format_type"] for e in extras] == ["html", "image"]
    assert extras[1]["content"] == "iVBORyBmYWtl"  # base64 of the file's bytes
    json.dumps(extras)
    facts = ({"name": "collision", "kind": "event", "per_factor": [0.4], "base_rate": 0.1, "k": 5},)
    with_facts = dataclasses.replace(_record(tmp_path), factor_facts=facts)
    extras = html_extras([with_facts])
    assert [e["format_type"] for e in extras] == ["html", "html", "image"]
    assert "what each factor&#x27;s observations coincide with" in extras[1]["content"]
    assert (
        "<td>collision</td><td>precision of top-5</td><td>10.0%</td><td><b>40%</b></td>"
        in (extras[1]["content"])
    )
    json.dumps(extras)


def test_fact_table_bolds_the_best_factor_only_where_it_beats_chance() -> None:
    rows = [
        {
            "name": "car<b>",
            "kind": "event",
            "per_factor": [0.2, 0.6, None],
            "base_rate": 0.3,
            "k": 5,
        },
        {"name": "rare", "kind": "event", "per_factor": [0.0, 0.0, 0.0], "base_rate": 0.0, "k": 5},
        {
            "name": "row",
            "kind": "graded",
            "per_factor": [0.1, -0.45, None],
            "base_rate": None,
            "k": 0,
        },
    ]
    table = fact_table_html(rows)
    assert "car&lt;b&gt;" in table
    assert "<b>car" not in table
    assert "<td>30.0%</td><td>20%</td><td><b>60%</b></td><td>n/a</td>" in table
    assert (
        "<td>rare</td><td>precision of top-5</td><td>0.0%</td><td>0%</td><td>0%</td><td>0%</td>"
        in table
    )
    assert (
        "<td>row</td><td>Spearman</td><td></td><td>+0.10</td><td><b>-0.45</b></td><td>n/a</td>"
        in table
    )
    assert table.count("<th>factor ") == 3
    assert fact_table_html([]) == ""


def test_artifacts_are_written_per_test(tmp_path: Path) -> None:
    directory = artifact_directory(tmp_path / "art", "tests/test_x.py::test_y[cp/1]")
    assert directory.name == "tests_test_x.py_test_y_cp_1"
    write_artifacts(directory, "tests/test_x.py::test_y[cp/1]", [_record(tmp_path, label="cp")])
    assert sorted(p.name for p in directory.iterdir()) == ["0-cp-rollout-0.png", "summary.json"]
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["test"] == "tests/test_x.py::test_y[cp/1]"
    assert summary["audits"][0]["metrics"]["mean_return"] == 3.5


def test_summary_lines_deduplicate_by_key(tmp_path: Path) -> None:
    record = _record(tmp_path, label="cp")
    lines = summary_lines([record.summary(), record.summary()])
    assert lines == [
        "cp (freeway, activation score, per_step layout, rank 10, 16x50): return 3.5, rel. error 0.25, stability cosine mean n/a min n/a, confidence rho n/a, sanity rho n/a, deletion xn/a"
    ]
