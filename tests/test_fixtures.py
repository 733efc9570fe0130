"""The ``dreamer_audit`` fixture's object: assertion methods bound to the evidence, old names."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.plugin.audit import AuditResult
from pytest_dreamer_audit.plugin.audit_object import BASELINE_HELD, DreamerAudit, outcome_text
from pytest_dreamer_audit.report.records import AuditRecord
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.settings import AuditSettings
from pytest_dreamer_audit.testing import tiny_agent


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> DreamerAudit:
    agent = tiny_agent(seed=2)
    trajectory = run_rollouts(agent, "freeway", episodes=3, steps=10, seed=4)
    explanation = explain(trajectory, ExplainConfig(rank=3, top_k=2), agent=agent)
    settings = AuditSettings(checkpoint="tiny.pth", rank=3, top_k=2, episodes=3, steps=10)
    root = tmp_path_factory.mktemp("audit")
    result = AuditResult(settings, "key", root, explanation, ())
    record = AuditRecord(
        "tiny.pth",
        "tiny",
        "key",
        "freeway",
        dataclasses.asdict(settings),
        explanation.metrics,
        0.0,
        (),
    )
    return DreamerAudit(explanation, result, root / "evidence", root / "b.json", False, record)


def test_bound_assertions_are_the_plain_functions_with_the_evidence(audit: DreamerAudit) -> None:
    e = audit.explanation
    ratio = A.assert_deletion_beats_random(e, min_ratio=0.0)
    assert audit.assert_deletion_beats_random(min_ratio=0.0) == ratio
    assert audit.assert_mean_return(min_return=-1.0) == float(e.returns.mean())
    with pytest.raises(AssertionError, match=f"Evidence: {audit.evidence}"):
        audit.assert_mean_return(min_return=1e9)
    # Each call is in the test's check log, with its arguments and what it measured.
    assert [c.assertion for c in audit.checks[-2:]] == [
        "assert_mean_return(min_return=-1.0)",
        "assert_mean_return(min_return=1000000000.0)",
    ]
    last = audit.checks[-1]
    assert (last.assertion, last.passed) == ("assert_mean_return(min_return=1000000000.0)", False)
    assert last.outcome.startswith("mean return is ")
    assert audit.checks[-2].outcome == f"{float(e.returns.mean()):.4g}"


def test_the_checks_table_shows_what_each_assertion_measured(audit: DreamerAudit) -> None:
    """Reconstruction and stability show their numbers (NaN as n/a), never a bare "held"."""
    m = audit.explanation.metrics
    audit.assert_reconstruction(max_relative_error=1.0)
    assert audit.checks[-1].outcome == (
        f"relative_error {m.relative_error:.4g}, explained_variance {m.explained_variance:.4g}"
    )
    audit.assert_factors_stable()
    assert audit.checks[-1].outcome.startswith(
        f"min_cosine {m.stability_min_cosine:.4g}, mean_cosine {m.stability_mean_cosine:.4g}, "
        "topk_jaccard "
    )
    assert outcome_text(A.Stability(0.5, math.nan, 1.0)) == (
        "min_cosine 0.5, mean_cosine n/a, topk_jaccard 1"
    )
    assert outcome_text(A.FactorMatch(2, 0.25)) == "factor 2, value 0.25"
    assert outcome_text({"UP": 0.5, "NOOP": math.nan}) == "UP 0.5, NOOP n/a"
    assert outcome_text(None) == BASELINE_HELD  # check_baseline measures no number
    assert all(c.outcome != "held" for c in audit.checks)


def test_the_pre_release_getter_names_are_gone(audit: DreamerAudit) -> None:
    """Only the assertion names exist; the getter-like names of the unreleased 0.1 are gone."""
    for old in ("mean_return", "reconstruction", "some_factor_tracks", "factors_stable"):
        assert not hasattr(audit, old)
        assert callable(getattr(audit, f"assert_{old}"))


def test_assert_trustworthy_runs_every_default_check_and_logs_each_verdict(
    audit: DreamerAudit,
) -> None:
    from pytest_dreamer_audit.results.trustworthy import (
        TRUST_CHECKS,
        TrustThresholds,
        trust_verdicts,
    )

    verdicts = trust_verdicts(audit.explanation.metrics)
    failed = [v.check.number for v in verdicts if not v.passed]
    assert failed  # a tiny agent with random weights is not trustworthy
    with pytest.raises(AssertionError, match=f"Evidence: {audit.evidence}") as info:
        audit.assert_trustworthy()
    numbers = ", ".join(map(str, failed))
    assert f"{len(failed)} of {len(TRUST_CHECKS)} trust checks failed ({numbers};" in str(
        info.value
    )
    last = audit.checks[-1]
    assert (last.assertion, last.passed) == ("assert_trustworthy()", False)
    assert all(f"{n}. " in last.outcome for n in failed)
    # With thresholds every defined value meets, only the check that could not be computed
    # fails: a tiny agent never scores in 10 steps, so its reward head cannot be checked.
    loose = TrustThresholds(
        max_relative_error=1.0,
        min_mean_cosine=-1.0,
        max_posterior_sanity=1.0,
        max_memory_spearman=1.0,
        max_confidence_spearman=1.0,
        max_deletion_p_value=1.0,
        max_bottom_ratio=1e9,
        min_reward_correlation=-1.0,
    )
    with pytest.raises(AssertionError, match=r"1 of 8 trust checks failed \(8; passed: 1, 2"):
        audit.assert_trustworthy(thresholds=loose)
    assert "8. reward head predicts: reward_correlation not computed" in audit.checks[-1].outcome
