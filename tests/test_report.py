from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import urllib.parse
from pathlib import Path

import pytest

from pytest_dreamer_audit.report.artifacts import artifact_directory, write_artifacts
from pytest_dreamer_audit.report.html import (
    WRONG_SIDE_MARK,
    checkpoint_summary_html,
    checks_html,
    embed_once,
    html_extras,
    metrics_table,
)
from pytest_dreamer_audit.report.numbers import format_number, format_percent
from pytest_dreamer_audit.report.records import (
    HEADLINE,
    METRIC_NOTES,
    AuditRecord,
    Check,
    wrong_side,
)
from pytest_dreamer_audit.report.tables import fact_table_html, score_table_html
from pytest_dreamer_audit.report.terminal import summary_lines
from pytest_dreamer_audit.results.values import (
    CurveSet,
    FactAssociation,
    FactorStatus,
    ProbeRow,
    RandomizationStage,
    ScoreAssociation,
    TrustMetrics,
)
from pytest_dreamer_audit.settings import AuditSettings


def _record(tmp_path: Path, label: str = "agent<script>alert(1)</script>") -> AuditRecord:
    images = []
    for name, caption in (
        ("rollout-0.png", "rollout 0 <b>grid</b>"),
        ("top-steps.png", "top steps"),
        ("factors.png", "factor gallery"),
    ):
        image = tmp_path / name
        image.write_bytes(b"\x89PNG fake " + name.encode())
        images.append((str(image), caption))
    return AuditRecord(
        checkpoint="a.pth",
        label=label,
        key="k1",
        game="freeway",
        settings=dataclasses.asdict(AuditSettings(checkpoint="a.pth", layout="per_step")),
        metrics=TrustMetrics(relative_error=0.25, explained_variance=0.5, iterations=60),
        mean_return=3.5,
        images=tuple(images),
    )


def test_metrics_are_cleaned_and_escaped(tmp_path: Path) -> None:
    record = _record(tmp_path)
    assert record.to_json()["metrics"]["sanity_spearman"] is None
    assert record.to_json()["metrics"]["mean_return"] == 3.5
    table = metrics_table(record)
    assert "<script>" not in table
    assert "agent&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert "(freeway, surprise score, per_step layout, rank 10, 16x50)" in table
    assert "<td>relative_error</td><td>0.25</td>" in table
    assert "<td>sanity_spearman</td><td>n/a</td>" in table
    assert "<th>meaning</th>" in table
    assert "<td>sanity_entropy</td><td>n/a</td><td>the same for the permuted network" in table
    assert table.index("stability_mean_cosine") < table.index("stability_min_cosine")
    summary = checkpoint_summary_html([record, record])
    assert summary.count("<tr>") == 2  # header + one deduplicated checkpoint
    assert "<script>" not in summary
    assert "<svg" not in summary  # one checkpoint: nothing to compare


def test_several_checkpoints_are_compared_in_one_plot(tmp_path: Path) -> None:
    first = _record(tmp_path, label="early<b>")
    second = dataclasses.replace(
        _record(tmp_path, label="late"),
        key="k2",
        mean_return=7.0,
        metrics=TrustMetrics(relative_error=0.5, explained_variance=0.25, iterations=60),
    )
    summary = checkpoint_summary_html(iter([first, second]))  # any iterable, read once
    assert summary.count("<tr>") == 3
    assert summary.count("<svg") == 1
    assert "early&lt;b&gt;" in summary
    assert "<b>" not in summary.replace("<b>dreamer", "")
    # mean_return: 3.5 and 7.0, scaled to the larger: bars of 45 and 90 pixels.
    assert (
        'height="45.0" fill="#4363d8"><title>early&lt;b&gt;: mean_return = 3.5</title>' in summary
    )
    assert 'height="90.0" fill="#e6194b"><title>late: mean_return = 7</title>' in summary
    assert "sanity_spearman" not in summary.split("<svg")[1]  # n/a everywhere: left out


def test_html_extras_embed_the_compact_figures_and_link_the_full_grids(tmp_path: Path) -> None:
    record = _record(tmp_path)
    evidence = tmp_path / "artifacts" / "test-a"
    report = tmp_path / "report" / "audit.html"
    extras = html_extras([record], evidence=evidence, report_path=str(report))
    assert [e["format_type"] for e in extras] == ["html", "html", "html"]
    pictures, links = extras[0]["content"], extras[1]["content"]
    top = base64.b64encode(b"\x89PNG fake top-steps.png").decode()
    gallery = base64.b64encode(b"\x89PNG fake factors.png").decode()
    grid = base64.b64encode(b"\x89PNG fake rollout-0.png").decode()
    assert f'src="data:image/png;base64,{top}"' in pictures
    assert f'src="data:image/png;base64,{gallery}"' in pictures
    assert grid not in pictures  # the full grid is linked, not embedded
    assert pictures.index(top) < pictures.index(gallery)
    assert "<figcaption><small>top steps</small></figcaption>" in pictures
    # The link is relative to the report and names the copy write_artifacts makes.
    label = "agent<script>alert(1)</script>"
    # Percent-encoded: pytest-html writes URLs raw, so every link keeps to URL-safe characters.
    href = urllib.parse.quote(f"../artifacts/test-a/0-{label}-rollout-0.png")
    assert f'<a href="{href}" title="rollout 0 &lt;b&gt;grid&lt;/b&gt;">rollout 0</a>' in links
    assert "<script>" not in pictures + links
    # Without a report file the links are file URIs; without a folder there are none.
    unfiled = html_extras([record], evidence=evidence)[1]["content"]
    assert evidence.resolve().as_uri() in unfiled
    assert len(html_extras([record])) == 2
    json.dumps(extras)


def test_embed_once_keeps_each_explanations_pictures_in_the_first_test_only(
    tmp_path: Path,
) -> None:
    first = html_extras([_record(tmp_path)])
    other = html_extras([dataclasses.replace(_record(tmp_path), key="k2")])
    shown: dict[str, str] = {}
    assert embed_once(first, shown, "test_a") == first
    assert embed_once(first, shown, "test_a") == first  # the same test's report again
    again = embed_once(first, shown, "test_b")
    assert "data:image/png" not in json.dumps(again)
    assert "the pictures of this explanation are shown with test_a" in again[0]["content"]
    assert "the tables of this explanation are shown with test_a" in again[1]["content"]
    assert len(again) == 2
    assert embed_once(other, shown, "test_b") == other  # another explanation: embedded
    assert shown == {
        "pictures:k1": "test_a",
        "tables:k1": "test_a",
        "pictures:k2": "test_b",
        "tables:k2": "test_b",
    }

    facts = (FactAssociation("collision_visible", "event", (0.4,), 0.1, 20, 0.25, (0.002,)),)
    status = (FactorStatus(0, 0.93, 0.1, 0.0, 0.25, unstable=False, marks_start=False),)
    scores = (ScoreAssociation("collision_visible", 0.02, 0.1, 0.05, 0.15, 0.99, 0.004, 5, 80),)
    with_facts = dataclasses.replace(
        _record(tmp_path), factor_facts=facts, factor_status=status, score_facts=scores
    )
    extras = html_extras([with_facts])[1:]  # after the pictures
    assert [e["format_type"] for e in extras] == ["html", "html", "html", "html"]
    assert "what each factor&#x27;s observations coincide with" in extras[1]["content"]
    assert (
        "<td>collision_visible</td><td>precision of top-20</td><td>10.0%</td><td>rho +0.25 / n/a</td>"
        '<td title="adjusted p = 0.002"><b>40%</b></td><td>factor 0, p = 0.002, effect n/a</td>'
        in extras[1]["content"]
    )
    assert (
        "<td>factor 0</td><td>0.93</td><td>0.1</td><td>0%</td><td>25%</td><td>may claim</td>"
        in (extras[2]["content"])
    )
    stages = (RandomizationStage("full", "all layers", 0.8, -0.1, 0.67),)
    table = html_extras([dataclasses.replace(with_facts, randomization=stages)])[5]["content"]
    assert "<th>posterior entropy (trained n/a)</th>" in table
    assert "<td>full</td><td>all layers</td><td>0.8</td><td>-0.1</td><td>0.67</td>" in table
    # The score's picks hit the event below its null's 5% quantile: said in capitals.
    assert (
        "<td>collision_visible</td><td>2%</td><td>10%</td><td>5%-15%</td><td>n/a-n/a</td>"
        "<td>effect n/a</td><td>BELOW chance (p = 0.004)</td>" in extras[3]["content"]
    )
    json.dumps(extras)


def test_fact_table_bolds_only_the_significant_claim() -> None:
    rows = [
        FactAssociation(
            "car<b>", "event", (0.2, 0.6, math.nan), 0.3, 20, 0.45, (0.5, 0.01, math.nan)
        ),
        FactAssociation("loud", "event", (0.9, 0.1, 0.1), 0.1, 20, 0.95, (0.2, 1.0, 1.0)),
        FactAssociation(
            "row", "graded", (0.1, -0.45, math.nan), math.nan, 0, 0.2, (0.3, 0.001, math.nan)
        ),
        FactAssociation("untested", "event", (0.0, 0.0, 0.0), 0.0, 20),
        FactAssociation(  # beats the circular shifts (0.01) but not the episode swap
            "timed",
            "event",
            (0.7, 0.1, 0.1),
            0.2,
            20,
            0.4,
            (0.3, 1.0, 1.0),
            swap_q95=0.75,
            shift_p_values=(0.01, 1.0, 1.0),
            correlations=(0.3, 0.0, 0.0),
        ),
    ]
    table = fact_table_html(rows)
    assert "car&lt;b&gt;" in table
    assert "<b>car" not in table
    assert (
        '<td>30.0%</td><td>rho +0.45 / n/a</td><td title="adjusted p = 0.5">20%</td>'
        '<td title="adjusted p = 0.01"><b>60%</b></td><td>n/a</td>'
        "<td>factor 1, p = 0.01, effect n/a</td>" in table
    )
    assert (
        "<td>timed</td><td>precision of top-20</td><td>20.0%</td><td>rho +0.40 / 0.75</td>"
        '<td title="rank correlation +0.30, adjusted p = 0.3">70%</td>' in table
    )
    assert (
        "<td>time: factor 0 beats circular shifts only (other episodes show it too)</td>" in table
    )
    # 90% precision at a 10% event, but not beyond its null: shown, not bold, not claimed.
    assert '<td title="adjusted p = 0.2">90%</td>' in table
    assert "<td>loud</td>" in table
    assert table.count("none beats chance") == 2
    assert '<td title="adjusted p = 0.001"><b>-0.45</b></td>' in table
    assert (
        "<td>untested</td><td>precision of top-20</td><td>0.0%</td><td>no factor may claim</td>"
        in table
    )
    assert "<th>claim at level 0.05 (effect over other episodes, 95% interval)</th>" in table
    assert table.count("<th>factor ") == 3
    assert fact_table_html([]) == ""


def test_artifacts_are_written_per_test(tmp_path: Path) -> None:
    directory = artifact_directory(tmp_path / "art", "tests/test_x.py::test_y[cp/1]")
    assert directory.name.startswith("test_x.py_test_y_cp_1-")
    write_artifacts(directory, "tests/test_x.py::test_y[cp/1]", [_record(tmp_path, label="cp")])
    assert sorted(p.name for p in directory.iterdir()) == [
        "0-cp-factors.png",
        "0-cp-rollout-0.png",
        "0-cp-top-steps.png",
        "summary.json",
    ]
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["test"] == "tests/test_x.py::test_y[cp/1]"
    assert summary["audits"][0]["metrics"]["mean_return"] == 3.5


def test_each_explanations_tables_are_shown_once_and_each_test_keeps_its_checks(
    tmp_path: Path,
) -> None:
    """Five tests of one explanation: its metrics and claims tables are in the first test's
    report only (one line in the others names it), while every test keeps its checks table."""
    pytest.importorskip("pytest_html")
    status = (FactorStatus(0, 0.93, 0.1, 0.0, 0.25, unstable=False, marks_start=False),)
    stages = (RandomizationStage("full", "all layers", 0.8, -0.1, 0.67),)
    record = dataclasses.replace(_record(tmp_path), factor_status=status, randomization=stages)
    tables = ("<th>meaning</th>", "dreamer-audit-factors", "dreamer-audit-randomization")
    shown: dict[str, str] = {}
    reports = []
    for n in range(5):
        checks = checks_html([Check(f"assert_mean_return(min_return={n})", True, "3.5")])
        reports.append(embed_once([checks, *html_extras([record])], shown, f"test_{n}"))
    text = [json.dumps(extras) for extras in reports]
    assert all(text[0].count(table) == 1 for table in tables)
    assert "assert_mean_return(min_return=0)" in text[0]
    for n, later in enumerate(text[1:], start=1):
        assert not any(table in later for table in tables)
        assert later.count("the tables of this explanation are shown with test_0") == 1
        assert f"assert_mean_return(min_return={n})" in later  # its own checks


def test_a_metric_on_the_wrong_side_of_its_meaning_is_marked(tmp_path: Path) -> None:
    metrics = TrustMetrics(relative_error=0.25, explained_variance=0.5, iterations=60)
    wrong = dataclasses.replace(_record(tmp_path), metrics=replace_metric(metrics, 0.39))
    right = dataclasses.replace(_record(tmp_path), metrics=replace_metric(metrics, 1.7))
    reason = "deletion_ratio 0.39 is not &gt; 1: on the wrong side of its meaning"
    assert reason in metrics_table(wrong)
    assert WRONG_SIDE_MARK in metrics_table(wrong)
    assert "dreamer-audit-wrong-side" not in metrics_table(right)
    assert "dreamer-audit-wrong-side" in checkpoint_summary_html([wrong])
    assert "dreamer-audit-wrong-side" not in checkpoint_summary_html([right])
    assert wrong_side("deletion_ratio", math.nan) == ""  # not computed: no side
    assert wrong_side("deletion_bottom_ratio", 1.2).startswith(
        "deletion_bottom_ratio 1.2 is not < 1"
    )
    lines = summary_lines([wrong])
    assert len(lines) == 2
    assert lines[1].startswith("  ! deletion_ratio 0.39 is not > 1: on the wrong side")
    assert summary_lines([right])[1:] == []


def replace_metric(metrics: TrustMetrics, deletion_ratio: float) -> TrustMetrics:
    return dataclasses.replace(metrics, deletion_ratio=deletion_ratio)


def test_the_summary_explains_each_column(tmp_path: Path) -> None:
    summary = checkpoint_summary_html([_record(tmp_path)])
    for name in HEADLINE:
        note = html.escape(METRIC_NOTES[name])
        assert f'<th title="{note}">{name}</th>' in summary
        assert f"<li><code>{name}</code>: {note}</li>" in summary
    assert "<li><code>stability_min_cosine</code>: the same: worst matched factor" in summary


def test_one_number_format_for_every_report() -> None:
    assert format_number(2.804e-06) == "2.804e-06"
    assert format_number(math.nan) == format_percent(math.nan) == "n/a"
    assert format_number(math.inf) == "inf"
    assert format_number(0.123456, 3) == "0.123"
    assert format_percent(0.256) == "26%"


def test_summary_lines_deduplicate_by_key(tmp_path: Path) -> None:
    record = _record(tmp_path, label="cp")
    lines = summary_lines([record, record])
    assert lines == [
        "cp (freeway, surprise score, per_step layout, rank 10, 16x50): return 3.5, rel. error 0.25, stability cosine mean n/a min n/a, confidence rho n/a, sanity rho n/a, deletion xn/a"
    ]


def test_records_cross_the_json_edge_unchanged(tmp_path: Path) -> None:
    # What an xdist worker sends is what the controller gets back (images stay on the worker).
    facts = (
        FactAssociation("collision", "event", (0.4, math.nan), 0.1, 5),
        FactAssociation("chicken_row", "graded", (0.2, -0.3), math.nan, 0),
    )
    status = (FactorStatus(0, math.nan, -0.2, 0.5, 0.0, unstable=False, marks_start=True),)
    scores = (ScoreAssociation("move_ready", 0.475, 0.325, 0.225, 0.425, 0.009, 0.996, 5, 80),)
    curve = CurveSet("decoder", "deletion", (0.0, 0.5), (0.0, 0.2), (0.0, 0.1), 0.05)
    probe = ProbeRow("collision_visible", "event", (("posterior", 0.93), ("observation", 0.95)))
    record = dataclasses.replace(
        _record(tmp_path),
        factor_facts=facts,
        factor_status=status,
        score_facts=scores,
        curves=(curve,),
        probes=(probe,),
        randomization=(RandomizationStage("full", "all layers", 0.8, -0.1, 0.67),),
    )
    back = AuditRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert "deletion and insertion curves" in html_extras([record])[-1]["content"]
    assert back == dataclasses.replace(record, images=())
    assert math.isnan(back.metrics.sanity_spearman)
    assert back.settings["layout"] == "per_step"


def test_a_malformed_record_is_refused(tmp_path: Path) -> None:
    data = _record(tmp_path).to_json()
    data["metrics"]["iterations"] = "60"
    with pytest.raises(TypeError, match="iterations must be an integer"):
        AuditRecord.from_json(data)
    data = _record(tmp_path).to_json()
    data["metrics"]["forged"] = 1.0
    with pytest.raises(ValueError, match="unknown metrics"):
        AuditRecord.from_json(data)
    data = _record(tmp_path).to_json()
    data["factor_status"] = [{"factor": "0", "unstable": 1, "marks_start": False}]
    with pytest.raises(TypeError, match="factor must be an integer and the flags booleans"):
        AuditRecord.from_json(data)
    data = _record(tmp_path).to_json()
    score = ScoreAssociation("e", 0.1, 0.1, 0.0, 0.2, 0.5, 0.5, 5, 80).to_json()
    data["score_facts"] = [{**score, "picks": 80.0}]
    with pytest.raises(TypeError, match="k, picks and family must be integers"):
        AuditRecord.from_json(data)


def test_artifact_names_never_collide_and_stay_short(tmp_path: Path) -> None:
    # Ids that one sanitising rule maps to the same text, non-ASCII ids, and very long ids.
    ids = [
        "t.py::test[a/b]",
        "t.py::test[a_b]",
        "t.py::test[a b]",
        "t.py::test[\u00e9t\u00e9]",
        "t.py::test[\u590f]",
        "t.py::test[" + "x" * 240 + "]",
        "t.py::test[" + "x" * 239 + "y]",
    ]
    names = [artifact_directory(tmp_path, nodeid).name for nodeid in ids]
    assert len(set(names)) == len(ids)
    assert max(len(name) for name in names) <= 60 + 13
    for name in names:
        (tmp_path / name).mkdir()  # every one is a valid directory name here
    assert artifact_directory(tmp_path, ids[0]) == tmp_path / names[0]  # stable


def test_terminal_lines_escape_control_characters(tmp_path: Path) -> None:
    record = _record(tmp_path, label="evil\x1b[2J\rname")
    (line,) = summary_lines([record])
    assert "\x1b" not in line
    assert "\r" not in line
    assert line.startswith("evil\\x1b[2J\\rname (freeway")


def test_files_with_identical_bytes_each_have_a_summary_row(tmp_path: Path) -> None:
    """Issue 30: three names for one content share an explanation (one key), not a row."""
    records = [
        dataclasses.replace(_record(tmp_path, label=name), checkpoint=f"{name}.pth")
        for name in ("a", "b", "c")
    ]
    assert {record.key for record in records} == {"k1"}
    summary = checkpoint_summary_html([*records, records[0]])
    assert summary.count("<tr>") == 4  # header + a, b, c (the repeat of a is one row)
    assert len(summary_lines(records)) == 3


def test_score_table_names_the_fact_that_explains_a_row_and_the_json_keeps_it() -> None:
    explained = ScoreAssociation(
        "car_adjacent", 0.02, 0.1, 0.05, 0.15, 1.0, 0.3, 5, 80,
        shift_p_above=1.0, shift_p_below=0.002, controlled_for="chicken_row",
        uncontrolled_p_above=1.0, uncontrolled_p_below=0.004,
    )  # fmt: skip
    timed = dataclasses.replace(explained, name="timed", uncontrolled_p_below=0.3)
    assert explained.explained_by_other
    assert not explained.time_only
    assert timed.time_only
    assert not timed.explained_by_other
    table = score_table_html([explained, timed])
    assert (
        "<td>chicken_row: beyond the shifts and other episodes, not beyond shuffles within "
        "chicken_row, which may explain it</td>" in table
    )
    assert "<td>time (other episodes&#x27; same steps show it too)</td>" in table
    assert "verdict (beyond every null, Holm over the 2 tests" in table
    assert ScoreAssociation.from_json(explained.to_json()) == explained
