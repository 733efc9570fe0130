"""The default trust checks (``results/trustworthy.py``) and ``assert_trustworthy``: every check
can fail, a failure names every failed check with its number, and the verdicts reach
``summary.json``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.explanation import Explanation, TrustMetrics
from pytest_dreamer_audit.results.trustworthy import (
    TRUST_CHECKS,
    TrustThresholds,
    trust_verdicts,
)
from pytest_dreamer_audit.testing import fake_explanation

# The bundled agent's values (16 x 50, seed 7100): every default check passes.
BUNDLED = TrustMetrics(
    relative_error=0.555,
    explained_variance=0.669,
    iterations=3,
    stability_mean_cosine=0.887,
    confidence_spearman=-0.195,
    sanity_posterior_max_abs=0.141,
    sanity_posterior_mean_abs=0.094,
    sanity_posterior_std=0.037,
    memory_max_abs=0.650,
    memory_mean_abs=0.646,
    deletion_entry_ratio=4.32,
    deletion_control_median=3.15,
    deletion_control_max=3.54,
    deletion_p_value=0.05,
    deletion_bottom_ratio=0.029,
    reward_correlation=1.0,
)

# One value beyond each check's threshold, in check order.
FAILING = {
    "relative_error": 0.9,
    "stability_mean_cosine": 0.5,
    "sanity_posterior_max_abs": 1.0,
    "memory_max_abs": 1.0,
    "confidence_spearman": 0.99,
    "deletion_p_value": 0.35,
    "deletion_bottom_ratio": 7.3,
    "reward_correlation": 0.2,
}


def _with(metrics: TrustMetrics) -> Explanation:
    return dataclasses.replace(fake_explanation(), metrics=metrics)


def test_the_checks_are_numbered_in_order_and_read_real_fields() -> None:
    assert [c.number for c in TRUST_CHECKS] == list(range(1, len(TRUST_CHECKS) + 1))
    metric_names = {f.name for f in dataclasses.fields(TrustMetrics)}
    threshold_names = [f.name for f in dataclasses.fields(TrustThresholds)]
    assert {c.metric for c in TRUST_CHECKS} <= metric_names
    assert [c.threshold for c in TRUST_CHECKS] == threshold_names  # one field per check
    assert [c.metric for c in TRUST_CHECKS] == list(FAILING)


def test_the_bundled_agent_s_values_pass_every_check() -> None:
    verdicts = A.assert_trustworthy(_with(BUNDLED))
    assert [v.passed for v in verdicts] == [True] * len(TRUST_CHECKS)
    assert verdicts[5].value == 0.05
    assert verdicts[5].threshold == 0.05  # the smallest p-value of 19 controls passes


@pytest.mark.parametrize("metric", list(FAILING))
def test_each_check_can_fail_alone_and_is_named_with_its_number(metric: str) -> None:
    number = [c.metric for c in TRUST_CHECKS].index(metric) + 1
    metrics = dataclasses.replace(BUNDLED, **{metric: FAILING[metric]})
    verdicts = trust_verdicts(metrics)
    assert [v.check.number for v in verdicts if not v.passed] == [number]
    with pytest.raises(AssertionError, match=rf"1 of 8 trust checks failed \({number};") as info:
        A.assert_trustworthy(_with(metrics))
    assert f"\n  {number}. {TRUST_CHECKS[number - 1].name}: {metric} " in str(info.value)


def test_a_failure_lists_every_failed_check_and_what_passed() -> None:
    metrics = dataclasses.replace(
        BUNDLED, memory_max_abs=1.0, deletion_p_value=math.nan, deletion_bottom_ratio=math.nan
    )
    with pytest.raises(AssertionError) as info:
        A.assert_trustworthy(_with(metrics), evidence="out/")
    message = str(info.value)
    assert "3 of 8 trust checks failed (4, 6, 7; passed: 1, 2, 3, 5, 8):" in message
    assert "4. posterior reads memory: memory_max_abs 1 > 0.9" in message
    assert "6. deletion vs permuted actors: deletion_p_value not computed" in message
    assert "7. bottom deletion below random: deletion_bottom_ratio not computed" in message
    assert message.endswith("Evidence: out/")


def test_an_explanation_without_an_agent_fails_the_checks_it_could_not_compute() -> None:
    metrics = TrustMetrics(relative_error=0.1, explained_variance=0.9, iterations=5)
    failed = [v.check.number for v in trust_verdicts(metrics) if not v.passed]
    assert failed == [2, 3, 4, 5, 6, 7, 8]


def test_thresholds_are_overridden_explicitly_and_unknown_names_are_refused() -> None:
    metrics = dataclasses.replace(BUNDLED, deletion_p_value=0.1)
    with pytest.raises(AssertionError, match=r"\(6; passed"):
        A.assert_trustworthy(_with(metrics))
    loose = TrustThresholds(max_deletion_p_value=0.1)
    verdicts = A.assert_trustworthy(_with(metrics), thresholds=loose)
    assert verdicts[5].threshold == 0.1
    with pytest.raises(TypeError, match="max_p"):
        TrustThresholds(max_p=0.1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="must be a number"):
        TrustThresholds(max_relative_error=math.nan)


def test_the_new_metrics_round_trip_through_json_and_old_summaries_still_load() -> None:
    data = BUNDLED.to_json()
    assert data["deletion_p_value"] == 0.05
    assert data["deletion_random"] is None  # NaN
    again = TrustMetrics.from_json(json.loads(json.dumps(data)))
    for f in dataclasses.fields(TrustMetrics):
        value, expected = getattr(again, f.name), getattr(BUNDLED, f.name)
        assert value == expected or (math.isnan(value) and math.isnan(expected)), f.name
    old = {k: v for k, v in data.items() if not k.startswith(("memory_", "sanity_posterior"))}
    assert math.isnan(TrustMetrics.from_json(old).memory_max_abs)


def test_the_summary_reports_each_check_s_verdict(tmp_path: Path) -> None:
    metrics = dataclasses.replace(BUNDLED, deletion_p_value=0.35)
    _with(metrics).save(tmp_path)
    checks = json.loads((tmp_path / "summary.json").read_text())["trust_checks"]
    assert [c["number"] for c in checks] == list(range(1, 9))
    assert [c["passed"] for c in checks] == [True] * 5 + [False, True, True]
    assert checks[5] == {
        "number": 6,
        "name": "deletion vs permuted actors",
        "metric": "deletion_p_value",
        "value": 0.35,
        "threshold": 0.05,
        "direction": "max",
        "passed": False,
    }


def test_a_score_that_restates_confidence_fails_check_5() -> None:
    """The planted score for check 5: the reconstruction score is the norm of the reconstructed
    row, nearly the row's own ``||p||_2``; the surprise score, on the same rollouts, is not."""
    from pytest_dreamer_audit.analysis.pipeline import explain
    from pytest_dreamer_audit.results.explanation import ExplainConfig
    from pytest_dreamer_audit.rollout.rollouts import run_rollouts
    from pytest_dreamer_audit.testing import tiny_agent

    trajectory = run_rollouts(tiny_agent(seed=12), "freeway", episodes=4, steps=20, seed=0)
    restating = explain(trajectory, ExplainConfig(rank=3, score="reconstruction"))
    assert restating.metrics.confidence_spearman > 0.95
    with pytest.raises(AssertionError, match=r"plain confidence \|\|p\|\|_2 at Spearman 0\.9"):
        A.assert_not_just_confidence(restating, max_spearman=0.75)
    verdict = trust_verdicts(restating.metrics)[4]
    assert (verdict.check.number, verdict.passed) == (5, False)
    surprise = explain(trajectory, ExplainConfig(rank=3, score="surprise"))
    assert abs(surprise.metrics.confidence_spearman) < 0.3
    assert trust_verdicts(surprise.metrics)[4].passed


def test_the_report_shows_each_check_s_verdict() -> None:
    from pytest_dreamer_audit.report.html import metrics_table
    from pytest_dreamer_audit.report.records import AuditRecord
    from pytest_dreamer_audit.settings import AuditSettings

    metrics = dataclasses.replace(BUNDLED, memory_max_abs=1.0)
    settings = AuditSettings(checkpoint="agent.pth")
    record = AuditRecord(
        "agent.pth", "agent", "key", "freeway", dataclasses.asdict(settings), metrics, 0.0, ()
    )
    table = metrics_table(record)
    assert (
        "<tr><td>4. posterior reads memory</td><td>memory_max_abs</td><td>1</td>"
        "<td>&le; 0.9</td><td><b>FAILED</b></td></tr>"
    ) in table
    assert (
        "<tr><td>2. stability</td><td>stability_mean_cosine</td><td>0.887</td>"
        "<td>&ge; 0.75</td><td>passed</td></tr>"
    ) in table
    assert table.count("<b>FAILED</b>") == 1


def test_each_verdict_line_shows_the_relation_that_held() -> None:
    # A max check and a min check, passing and failing: the relation printed is the one the
    # value has to its threshold (mutants of describe and _negated printed ">" for a min check).
    fails = {"deletion_p_value": 0.35, "reward_correlation": 0.2}
    lines = [v.describe() for v in trust_verdicts(dataclasses.replace(BUNDLED, **fails))]
    assert lines[5] == "6. deletion vs permuted actors: deletion_p_value 0.35 > 0.05"
    assert lines[7] == "8. reward head predicts: reward_correlation 0.2 < 0.5"
    passing = [v.describe() for v in trust_verdicts(BUNDLED)]
    assert passing[5] == "6. deletion vs permuted actors: deletion_p_value 0.05 <= 0.05"
    assert passing[7] == "8. reward head predicts: reward_correlation 1 >= 0.5"
    assert passing[1] == "2. stability: stability_mean_cosine 0.887 >= 0.75"


def test_a_value_exactly_at_a_minimum_passes() -> None:
    # Both directions are inclusive (check 6 at its 0.05 is pinned above; this is a min check).
    at = trust_verdicts(dataclasses.replace(BUNDLED, reward_correlation=0.5))
    assert at[7].passed
    assert not trust_verdicts(dataclasses.replace(BUNDLED, reward_correlation=0.4999))[7].passed


@pytest.mark.parametrize("value", [True, "0.5", None])
def test_a_threshold_that_is_not_a_number_is_refused_by_name(value: object) -> None:
    with pytest.raises(ConfigError, match=rf"max_relative_error must be a number, got {value!r}"):
        TrustThresholds(max_relative_error=value)  # type: ignore[arg-type]
