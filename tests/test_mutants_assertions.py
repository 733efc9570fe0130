"""The claim assertions (``results/assertions.py``) pinned where the covering tests left them
loose, against the mutants of ``_why_not``, ``_quantiles``, ``_by``, ``_best_claim``,
``_enough_episodes``, ``_excluded``, ``_effect``, ``_per_factor`` and the three claim assertions
that survived ``python tests/run_mutation.py pytest_dreamer_audit/results/assertions.py --tests
tests/test_assertions.py tests/test_semantics.py tests/test_strata.py`` (benchmarks/mutation.md,
session 12 sample): the verdict at its boundaries (a value exactly at its threshold), which
reason a failure gives, the third null's quantile in the message, the evidence path on every
failure, the settings each test is computed with and the frames pytest hides.

The tests and their nulls are replaced by hand-made results (``Stubs``), so every number in a
message is known exactly and the file runs in well under a second.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results import assertions as A
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.imagination import (
    ALL_CHANNELS,
    HeadPrediction,
    ImaginationTable,
    PredictionError,
)
from pytest_dreamer_audit.results.semantics import EventTest, FactorStatus
from pytest_dreamer_audit.results.strata import StrataTest
from pytest_dreamer_audit.results.two_nulls import NullTest
from pytest_dreamer_audit.results.values import CurveSet, ProbeRow, ScoreAssociation, TrustMetrics
from pytest_dreamer_audit.testing import fake_explanation

EVIDENCE = "/runs/evidence.html"


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    return fake_explanation(steps=10, episodes=4, rank=3, top_k=3, seed=3)


def _status(factor: int, *, unstable: bool = False, marks_start: bool = False) -> FactorStatus:
    return FactorStatus(factor, 0.42, 0.0, 0.75, 0.0, unstable, marks_start)


def _event_test(
    values: list[float],
    *,
    p: float = 0.01,
    shift_p: float = 0.01,
    swap_p: float = 0.01,
    control: StrataTest | None = None,
    statuses: tuple[FactorStatus, ...] | None = None,
    q95: tuple[float, float] = (0.111111, 0.222222),
) -> EventTest:
    """Factor 0 is the best; ``p``: the first two nulls' p-value of every factor."""
    r = len(values)
    null = NullTest(
        values=np.linspace(0.5, 0.1, r),  # the rank correlations (events)
        shift_p=np.full(r, shift_p),
        swap_p=np.full(r, swap_p),
        shift_q95=q95[0],
        swap_q95=q95[1],
        effects=np.full(r, 0.25),
        effect_low=np.full(r, -0.125),
        effect_high=np.full(r, 0.5),
    )
    return EventTest(
        values=np.asarray(values, dtype=np.float64),
        p_values=np.full(r, p),
        null_q95=q95[0],
        base_rate=0.2,
        k=3,
        statuses=statuses or tuple(_status(j) for j in range(r)),
        test=null,
        control=control,
    )


def _score(**fields: Any) -> ScoreAssociation:
    base: dict[str, Any] = dict(
        name="sticky", precision=0.5, base_rate=0.25, null_q05=0.1, null_q95=0.3,
        p_above=0.01, p_below=1.0, k=3, picks=12, swap_q95=0.35, shift_p_above=0.01,
        effect=0.2, effect_low=0.1, effect_high=0.3,
    )  # fmt: skip
    return ScoreAssociation(**{**base, **fields})


class Stubs:
    """The three tests replaced: ``results[name]`` is what a call returns; ``calls`` records
    each call's arguments (the keywords last)."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.calls: list[tuple[Any, ...]] = []

    def fake(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((*args, kwargs))
            return self.results[name]

        return call


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Stubs:
    stubs = Stubs()
    for name in ("score_event_test", "factor_event_test", "factor_fact_test"):
        monkeypatch.setattr(A, name, stubs.fake(name))
    return stubs


def _message(run: Callable[[], object]) -> str:
    with pytest.raises(AssertionError) as caught:
        run()
    # every frame that asks pytest to hide it is hidden: the user sees their test's line
    for entry in caught.traceback:
        if "__tracebackhide__" in entry.frame.f_locals:
            assert entry.ishidden(caught), entry.name
    return str(caught.value)


# --- the helpers, called directly


def test_why_not_names_the_reason_at_each_boundary() -> None:
    # kills _why_not_2 (`by or ...`), _3 (both_p < level), _5 (`not isnan or ...`), _8 (shift_p
    # < level)
    explained = A._why_not(0.2, 0.01, 0.05, "lives", 0.05)  # both_p exactly at the level
    assert explained.startswith("explained by lives: it beats circular shifts and the facts of")
    assert "(p = 0.05) but not shuffles within the values of lives (p = 0.2)" in explained
    assert A._why_not(0.2, 0.2, 0.05, "lives", 0.2) == "not beyond chance at level 0.05"
    assert A._why_not(0.2, 0.2, 0.05, "", 0.01) == "not beyond chance at level 0.05"
    time = A._why_not(0.2, 0.05, 0.05)  # shift_p exactly at the level: time
    assert time.startswith("not beyond chance at level 0.05: it beats circular shifts (p = 0.05)")
    assert time.endswith("so the step explains it (time), not this episode's fact")
    assert A._why_not(0.2, math.nan, 0.05) == "not beyond chance at level 0.05"


def test_quantiles_and_effect_show_every_number_in_place() -> None:
    # kills _quantiles_14 (the spec formatted), _15 (no spec), _19 (the separator), _20
    # (shown[:+1]), _24 (shown[+1]); _effect_4, _5 (the interval's ends); and what _by_3
    # killed, now EventTest.controlled_for
    test = _event_test([0.5, 0.2], control=StrataTest("lives", np.array([0.3, 0.4]), 0.333333))
    assert A._quantiles(test, "+.3f") == (
        "+0.111 (circular shifts), +0.222 (other episodes) and +0.333 (shuffles within lives)"
    )
    assert A._effect(test, 1) == "effect +0.250 [-0.125, +0.500] over other episodes"
    assert test.controlled_for == "lives"
    assert _event_test([0.5]).controlled_for == ""


def test_excluded_lists_only_factors_that_make_no_claims() -> None:
    # kills _excluded_4 (always listed), _7 ("XXXX" when none)
    assert A._excluded(_event_test([0.5, 0.2])) == ""
    test = _event_test([0.5, 0.2], statuses=(_status(0), _status(1, marks_start=True)))
    assert A._excluded(test) == "; making no claims: 1 episode start (75% of picks)"


def test_best_claim_takes_the_strongest_claimable_factor_or_fails_with_the_evidence() -> None:
    # kills _best_claim_1, _2 (not hidden), _6 to _10 (the message, the evidence), _12
    test = _event_test([0.9, 0.2, 0.6], statuses=(_status(0, unstable=True), _status(1),
                                                  _status(2)))  # fmt: skip
    assert A._best_claim(test, test.values, "x", None) == 2
    nobody = _event_test([0.9], statuses=(_status(0, unstable=True),))
    assert _message(lambda: A._best_claim(nobody, nobody.values, "'sticky'", EVIDENCE)) == (
        "dreamer-audit: no factor may claim 'sticky'; making no claims: 0 unstable (cosine "
        f"0.42)\nEvidence: {EVIDENCE}"
    )


def test_too_few_episodes_fail_with_the_evidence() -> None:
    # kills _enough_episodes_1, _2 (not hidden), _10 (no evidence); and through the assertions
    # assert_top_observations_coincide_6, assert_some_factor_coincides_6, assert_some_factor_tracks_6
    three = fake_explanation(steps=10, episodes=3, seed=3)
    runs: list[Callable[[], object]] = [
        lambda: A._enough_episodes(three, 0.05, EVIDENCE),
        lambda: A.assert_top_observations_coincide(three, "sticky", min_precision=0.0,
                                                   evidence=EVIDENCE),
        lambda: A.assert_some_factor_coincides(three, "sticky", min_precision=0.0,
                                               evidence=EVIDENCE),
        lambda: A.assert_some_factor_tracks(three, "sticky", min_abs_spearman=0.0,
                                            evidence=EVIDENCE),
    ]  # fmt: skip
    for run in runs:
        message = _message(run)
        assert message.startswith("dreamer-audit: cannot claim anything at level 0.05: 3 episode")
        assert message.endswith(f"\nEvidence: {EVIDENCE}")


# --- assert_top_observations_coincide


def test_top_observations_are_tested_with_the_level_and_k_given(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_top_observations_coincide_13 (the default level), _2, _3 (not hidden)
    stubs.results["score_event_test"] = _score()
    assert A.assert_top_observations_coincide(explanation, "sticky", min_precision=0.5,
                                              k=2, level=0.1) == 0.5  # fmt: skip
    e, event, claims, k, kwargs = stubs.calls[-1]
    assert (e, event, claims, k, kwargs) == (explanation, "sticky", ClaimConfig(level=0.1), 2,
                                             {"one_sided": True})  # fmt: skip
    stubs.results["score_event_test"] = _score(p_above=0.2, shift_p_above=0.2)
    _message(lambda: A.assert_top_observations_coincide(explanation, "sticky", min_precision=0))


def test_top_observations_pass_exactly_at_their_thresholds(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_top_observations_coincide_31 (p >= level), _35 (precision <= min)
    stubs.results["score_event_test"] = _score(precision=0.5, p_above=0.05)
    assert A.assert_top_observations_coincide(explanation, "sticky", min_precision=0.5) == 0.5
    stubs.results["score_event_test"] = _score(precision=0.5, p_above=0.5, shift_p_above=0.5)
    message = _message(
        lambda: A.assert_top_observations_coincide(explanation, "sticky", min_precision=0.5)
    )
    assert ", not beyond chance at level 0.05 (base rate" in message


def test_top_observations_name_time_and_the_event(explanation: Explanation, stubs: Stubs) -> None:
    # kills assert_top_observations_coincide_37 (no shift p-value), _50 (the event's name)
    stubs.results["score_event_test"] = _score(p_above=0.2, shift_p_above=0.01)
    message = _message(
        lambda: A.assert_top_observations_coincide(explanation, "sticky", min_precision=0.1)
    )
    assert message.startswith(
        "dreamer-audit: top-3 observations coincide with 'sticky' in 50.0% of 12 picks over 4 "
        "rollouts, not beyond chance at level 0.05: it beats circular shifts (p = 0.01)"
    )


def test_top_observations_without_picks_fail_with_the_evidence(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_top_observations_coincide_24 to _27
    stubs.results["score_event_test"] = _score(precision=math.nan, k=2)
    assert (
        _message(
            lambda: A.assert_top_observations_coincide(
                explanation, "sticky", min_precision=0.1, evidence=EVIDENCE
            )
        )
        == f"dreamer-audit: the rollouts have no top-2 observations to test\nEvidence: {EVIDENCE}"
    )


# --- assert_some_factor_coincides


def test_factor_event_is_tested_with_the_level_and_k_given(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_some_factor_coincides_13, _14, _18, _20, _22 (the claims or k not passed),
    # _2, _3 (not hidden)
    stubs.results["factor_event_test"] = _event_test([0.5, 0.2])
    match = A.assert_some_factor_coincides(explanation, "sticky", min_precision=0.5, k=2,
                                           level=0.1)  # fmt: skip
    assert match == (0, 0.5)
    e, event, claims, k, kwargs = stubs.calls[-1]
    assert (e, event, claims, k, kwargs) == (explanation, "sticky",
                                             ClaimConfig(level=0.1, k=2), 2, {})  # fmt: skip
    _message(lambda: A.assert_some_factor_coincides(explanation, "sticky", min_precision=0.9))


def test_factor_event_passes_exactly_at_its_thresholds(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_some_factor_coincides_56 (precision <= min), _57 (p >= level), _61
    stubs.results["factor_event_test"] = _event_test([0.5, 0.2], p=0.05)
    assert A.assert_some_factor_coincides(explanation, "sticky", min_precision=0.5) == (0, 0.5)
    stubs.results["factor_event_test"] = _event_test([0.5, 0.2], p=0.5, shift_p=0.5)
    message = _message(
        lambda: A.assert_some_factor_coincides(explanation, "sticky", min_precision=0.5)
    )
    assert "factor 0, in 50.0%, not beyond chance at level 0.05 (base rate 20.0%" in message


def test_factor_event_message_names_the_event_and_a_nan_quantile(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_some_factor_coincides_24 (the event's name), _44 ('+.3F': "+NAN")
    stubs.results["factor_event_test"] = _event_test([0.5, 0.2], q95=(math.nan, 0.2))
    message = _message(
        lambda: A.assert_some_factor_coincides(explanation, "sticky", min_precision=0.9)
    )
    assert message.startswith("dreamer-audit: no factor's top-3 observations coincide with "
                              "'sticky' enough: the best, factor 0, in 50.0%, below")  # fmt: skip
    assert "95% quantiles +nan (circular shifts) and +0.200 (other episodes), p = 0.01" in message


def test_factor_event_without_claimable_factors_fails_with_the_evidence(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_some_factor_coincides_28 (what), _29 (evidence)
    stubs.results["factor_event_test"] = _event_test([0.5], statuses=(_status(0, unstable=True),))
    assert _message(
        lambda: A.assert_some_factor_coincides(
            explanation, "sticky", min_precision=0.1, evidence=EVIDENCE
        )
    ) == (
        "dreamer-audit: no factor may claim 'sticky'; making no claims: 0 unstable (cosine "
        f"0.42)\nEvidence: {EVIDENCE}"
    )


# --- assert_some_factor_tracks


def test_factor_fact_is_tested_with_the_level_given(explanation: Explanation, stubs: Stubs) -> None:
    # kills assert_some_factor_tracks_13, _16 (the default level), _2, _3 (not hidden)
    stubs.results["factor_fact_test"] = _event_test([-0.5, 0.2])
    assert A.assert_some_factor_tracks(explanation, "sticky", min_abs_spearman=0.5,
                                       level=0.1) == (0, -0.5)  # fmt: skip
    e, fact, claims, kwargs = stubs.calls[-1]
    assert (e, fact, claims, kwargs) == (explanation, "sticky", ClaimConfig(level=0.1), {})
    _message(lambda: A.assert_some_factor_tracks(explanation, "sticky", min_abs_spearman=0.9))


def test_factor_fact_passes_exactly_at_its_thresholds(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_some_factor_tracks_42 (|rho| <= min), _43 (p >= level), _48, _50 (no shift
    # p-value), _72 ('.3F': "NAN")
    stubs.results["factor_fact_test"] = _event_test([-0.5, 0.2], p=0.05)
    assert A.assert_some_factor_tracks(explanation, "sticky", min_abs_spearman=0.5) == (0, -0.5)
    test = _event_test([-0.5, 0.2], p=0.5, shift_p=0.01, q95=(math.nan, 0.2))
    stubs.results["factor_fact_test"] = test
    message = _message(
        lambda: A.assert_some_factor_tracks(explanation, "sticky", min_abs_spearman=0.5)
    )
    assert message.startswith(
        "dreamer-audit: no factor tracks 'sticky': the best, factor 0, has Spearman -0.500, not "
        "beyond chance at level 0.05: it beats circular shifts (p = 0.01)"
    )
    assert "null 95% quantiles of |rho| nan (circular shifts) and 0.200 (other episodes)" in message


def test_factor_fact_failures_name_the_fact_and_the_evidence(
    explanation: Explanation, stubs: Stubs
) -> None:
    # kills assert_some_factor_tracks_20, _23, _24, _25 (the constant fact's message), _29,
    # _30, _36 (no claimable factor), _63 (the evidence of a weak one)
    stubs.results["factor_fact_test"] = _event_test([math.nan, math.nan])
    assert _message(
        lambda: A.assert_some_factor_tracks(
            explanation, "sticky", min_abs_spearman=0.1, evidence=EVIDENCE
        )
    ) == (
        "dreamer-audit: 'sticky' or the activation of every factor that may claim is constant "
        f"over the valid steps, so no factor can track it\nEvidence: {EVIDENCE}"
    )
    stubs.results["factor_fact_test"] = _event_test([0.5], statuses=(_status(0, unstable=True),))
    assert _message(
        lambda: A.assert_some_factor_tracks(
            explanation, "sticky", min_abs_spearman=0.1, evidence=EVIDENCE
        )
    ) == (
        "dreamer-audit: no factor may claim 'sticky'; making no claims: 0 unstable (cosine "
        f"0.42)\nEvidence: {EVIDENCE}"
    )
    stubs.results["factor_fact_test"] = _event_test([0.5, 0.2])
    assert _message(
        lambda: A.assert_some_factor_tracks(
            explanation, "sticky", min_abs_spearman=0.9, evidence=EVIDENCE
        )
    ).endswith(f"\nEvidence: {EVIDENCE}")


def test_factor_fact_with_only_undefined_claimable_factors_fails_as_an_assertion(
    explanation: Explanation, stubs: Stubs
) -> None:
    test = _event_test([0.5, math.nan], statuses=(_status(0, unstable=True), _status(1)))
    stubs.results["factor_fact_test"] = test
    message = _message(
        lambda: A.assert_some_factor_tracks(explanation, "sticky", min_abs_spearman=0.1)
    )
    # Was a raw ValueError (All-NaN slice): the all-NaN guard looked at every factor, and the
    # excluded factor 0's rho is defined. Found by this file; fixed.
    assert message == (
        "dreamer-audit: 'sticky' or the activation of every factor that may claim is constant "
        "over the valid steps, so no factor can track it; making no claims: 0 unstable (cosine "
        "0.42)"
    )


# --- the metric, probe, curve, imagination and trust assertions (the survivors of the full run
# of issue 35: 583/723 killed). Each builds its explanation directly, so every number in a
# message is known exactly.


def _metrics(**fields: float) -> TrustMetrics:
    return TrustMetrics(relative_error=0.1, explained_variance=0.9, iterations=5, **fields)


def _with_metrics(explanation: Explanation, **fields: float) -> Explanation:
    return dataclasses.replace(explanation, metrics=_metrics(**fields))


def test_describe_names_a_string_a_function_and_anything_else() -> None:
    # kills _describe_2 (getattr(None, ...)), _8, _9 (the attribute's name)
    def ball_hit(explanation: Explanation) -> np.ndarray:
        return np.zeros(0, dtype=bool)

    assert A._describe("sticky") == "'sticky'"
    assert A._describe(ball_hit) == "ball_hit"
    assert A._describe(functools.partial(ball_hit)) == "the event"


def test_why_not_without_a_controlling_fact_and_with_p_exactly_at_the_level() -> None:
    # kills _why_not_1 (the default `by` "XXXX"), _4 (level <= p)
    assert A._why_not(0.2, 0.2, 0.05, both_p=0.01) == "not beyond chance at level 0.05"
    # p at the level is not beyond the third null: not "explained by" it
    assert A._why_not(0.05, 0.2, 0.05, "lives", 0.01) == "not beyond chance at level 0.05"


def test_stability_failures_name_each_metric_with_the_evidence(explanation: Explanation) -> None:
    # kills assert_factors_stable_16, _17 (the mean cosine's label), _20 to _22 (the Jaccard's
    # label), _24 (`break` at the first None threshold), _36 (the evidence), _1, _2 (not hidden)
    e = _with_metrics(
        explanation,
        stability_min_cosine=0.9,
        stability_mean_cosine=0.6,
        stability_topk_jaccard=0.3,
    )
    assert _message(lambda: A.assert_factors_stable(e, min_mean_cosine=0.7, evidence=EVIDENCE)) == (
        "dreamer-audit: mean matched prototype cosine is 0.600, below the required 0.700\n"
        f"Evidence: {EVIDENCE}"
    )
    assert _message(lambda: A.assert_factors_stable(e, min_topk_jaccard=0.5)) == (
        "dreamer-audit: top-k Jaccard overlap across NMF seeds is 0.300, below the required 0.500"
    )
    # kills assert_factors_stable_40 to _42 (the measured values returned)
    assert A.assert_factors_stable(
        e, min_cosine=0.9, min_mean_cosine=0.6, min_topk_jaccard=0.3
    ) == (0.9, 0.6, 0.3)


def test_stability_not_computed_says_why_with_the_evidence(explanation: Explanation) -> None:
    # kills assert_factors_stable_4, _6 to _8 (why), _29 (the evidence); _metric_1, _2 (not
    # hidden), _11 (the evidence)
    e = _with_metrics(explanation, stability_min_cosine=0.9)
    assert _message(
        lambda: A.assert_factors_stable(e, min_topk_jaccard=0.1, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: stability_topk_jaccard was not computed (stability_refits is 0 (set "
        "--dreamer-stability-refits >= 1), or, for the top-k Jaccard, the score is surprise, "
        "whose top observations do not depend on the NMF)\n"
        f"Evidence: {EVIDENCE}"
    )


@pytest.mark.parametrize(
    ("check", "metric", "value", "ceiling", "too_high", "why"),
    [
        (  # kills assert_differs_from_random_weights_19 (value >= max fails), _21, _24, _25 (the
            # message, the evidence), _7, _16 to _18 (not computed), _1, _2 (not hidden)
            A.assert_differs_from_random_weights,
            "sanity_spearman",
            0.5,
            0.25,
            "observation scores correlate with those of randomized weights at Spearman 0.500, "
            "above the allowed 0.250: the explanation may reflect the inputs rather than what "
            "the agent learned",
            "the explanation was made without the agent, or the scores of the trained or the "
            "randomized agent are constant (a Spearman correlation is undefined then)",
        ),
        (  # kills assert_not_just_confidence_16 (value >= max fails), _18 (the evidence), _6,
            # _7, _14, _15 (not computed), _1, _2 (not hidden)
            A.assert_not_just_confidence,
            "confidence_spearman",
            0.75,
            0.5,
            "row scores correlate with plain confidence ||p||_2 at Spearman 0.750, above the "
            "allowed 0.500",
            "too few rows",
        ),
    ],
)
def test_a_spearman_ceiling_at_its_threshold_and_when_not_computed(
    explanation: Explanation,
    check: Callable[..., float],
    metric: str,
    value: float,
    ceiling: float,
    too_high: str,
    why: str,
) -> None:
    e = _with_metrics(explanation, **{metric: value})
    assert check(e, max_spearman=value) == value  # exactly at the ceiling passes
    assert _message(lambda: check(e, max_spearman=ceiling, evidence=EVIDENCE)) == (
        f"dreamer-audit: {too_high}\nEvidence: {EVIDENCE}"
    )
    nan = _with_metrics(explanation)
    assert _message(lambda: check(nan, max_spearman=ceiling, evidence=EVIDENCE)) == (
        f"dreamer-audit: {metric} was not computed ({why})\nEvidence: {EVIDENCE}"
    )


def test_reconstruction_failures_carry_the_evidence_and_a_pass_returns_both_values(
    explanation: Explanation,
) -> None:
    # kills assert_reconstruction_8, _15 (the evidence), _18, _19 (the values returned), _1, _2
    e = dataclasses.replace(
        explanation,
        metrics=TrustMetrics(relative_error=0.7, explained_variance=0.25, iterations=5),
    )
    assert _message(
        lambda: A.assert_reconstruction(e, max_relative_error=0.65, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: NMF relative reconstruction error is 0.7000, above the allowed 0.6500 "
        f"(rank 3)\nEvidence: {EVIDENCE}"
    )
    assert _message(
        lambda: A.assert_reconstruction(e, min_explained_variance=0.5, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: NMF explained variance is 0.2500, below the required 0.5000 (rank 3)\n"
        f"Evidence: {EVIDENCE}"
    )
    assert A.assert_reconstruction(e, max_relative_error=0.7, min_explained_variance=0.25) == (
        0.7,
        0.25,
    )


def test_deletion_beats_random_default_ratio_message_and_not_computed(
    explanation: Explanation,
) -> None:
    # kills assert_deletion_beats_random_1 (the default 1.0), _21 (the evidence), _4 to _6,
    # _10, _11 (not computed), _2, _3 (not hidden)
    e = _with_metrics(explanation, deletion_topk=0.3, deletion_random=0.2, deletion_ratio=1.5)
    assert A.assert_deletion_beats_random(e) == 1.5
    low = _with_metrics(explanation, deletion_topk=0.1, deletion_random=0.2, deletion_ratio=0.5)
    assert _message(lambda: A.assert_deletion_beats_random(low, evidence=EVIDENCE)) == (
        "dreamer-audit: deleting the top-k posteriors changes the action distribution by 0.1000 "
        "(total variation), 0.50x the 0.2000 of random steps; at least 1.00x is required\n"
        f"Evidence: {EVIDENCE}"
    )
    nan = _with_metrics(explanation)
    assert _message(lambda: A.assert_deletion_beats_random(nan, evidence=EVIDENCE)) == (
        "dreamer-audit: deletion_ratio was not computed (the explanation was made without the "
        f"agent, or deleting never changes the policy)\nEvidence: {EVIDENCE}"
    )


def test_mean_return_and_action_fractions_fail_with_the_evidence(
    explanation: Explanation,
) -> None:
    # kills assert_mean_return_8, assert_action_fractions_22, _29 (the evidence); _1, _2 of both
    # (not hidden). The fixture's returns are [2, 0, 0, 0].
    assert _message(
        lambda: A.assert_mean_return(explanation, min_return=1.0, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: mean return is 0.500 (std 0.866 over 4 episodes of up to 10 steps), "
        f"below the required 1.000\nEvidence: {EVIDENCE}"
    )
    low = _message(
        lambda: A.assert_action_fractions(
            explanation, min_fractions={"up": 0.99}, evidence=EVIDENCE
        )
    )
    assert low.startswith("dreamer-audit: action 'up' is chosen ")
    assert low.endswith(f"\nEvidence: {EVIDENCE}")
    high = _message(
        lambda: A.assert_action_fractions(explanation, max_fractions={"up": 0.0}, evidence=EVIDENCE)
    )
    assert ", above 0.0%; all fractions: noop " in high
    assert high.endswith(f"\nEvidence: {EVIDENCE}")


def test_trust_failure_lists_each_failed_check_on_its_own_line_and_none_passed(
    explanation: Explanation,
) -> None:
    # kills assert_trustworthy_17 (the lines' separator), _23, _24 ("none"), _1, _2
    e = dataclasses.replace(
        explanation,
        metrics=TrustMetrics(relative_error=0.9, explained_variance=0.1, iterations=5),
    )
    assert _message(lambda: A.assert_trustworthy(e)) == (
        "dreamer-audit: 8 of 8 trust checks failed (1, 2, 3, 4, 5, 6, 7, 8; passed: none):\n"
        "  1. reconstruction: relative_error 0.9 > 0.65\n"
        "  2. stability: stability_mean_cosine not computed\n"
        "  3. posterior sanity: sanity_posterior_max_abs not computed\n"
        "  4. posterior reads memory: memory_max_abs not computed\n"
        "  5. not just confidence: confidence_spearman not computed\n"
        "  6. deletion vs permuted actors: deletion_p_value not computed\n"
        "  7. bottom deletion below random: deletion_bottom_ratio not computed\n"
        "  8. reward head predicts: reward_correlation not computed"
    )


# --- assert_latent_knows


def _probes(explanation: Explanation, *rows: ProbeRow) -> Explanation:
    return dataclasses.replace(explanation, probes=rows)


def test_latent_knows_refuses_an_unknown_fact_listing_every_probed_one(
    explanation: Explanation,
) -> None:
    # kills assert_latent_knows_14 (the facts' separator)
    e = _probes(
        explanation,
        ProbeRow("car_adjacent", "event", (("posterior", 0.75), ("time step", 0.5))),
        ProbeRow("chicken_row", "graded", (("posterior", 0.75), ("time step", 0.5))),
    )
    with pytest.raises(ConfigError) as caught:
        A.assert_latent_knows(e, "collision", margin=0.1)
    assert str(caught.value) == (
        "no probe of 'collision'; the probed facts are car_adjacent, chicken_row"
    )


def test_latent_knows_a_graded_fact_by_r2_with_every_input_listed(
    explanation: Explanation,
) -> None:
    # kills assert_latent_knows_19 (always "AUC"), _25, _26 ("R^2"), _27, _29 (the table), _40
    # (the evidence), _1, _2 (not hidden)
    scores = (("posterior", 0.5), ("deter", 0.25), ("time step", 0.375))
    e = _probes(explanation, ProbeRow("chicken_row", "graded", scores))
    assert _message(
        lambda: A.assert_latent_knows(e, "chicken_row", margin=0.25, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: the latent does not know 'chicken_row' beyond its controls: the best "
        "trained input, posterior, reaches R^2 0.500, the best control, time step, 0.375; a "
        "margin of 0.250 is required (all inputs: posterior 0.500, deter 0.250, time step "
        f"0.375)\nEvidence: {EVIDENCE}"
    )


def test_latent_knows_passes_exactly_at_its_margin(explanation: Explanation) -> None:
    # kills assert_latent_knows_38 (difference <= margin fails)
    e = _probes(explanation, ProbeRow("sticky", "event", (("posterior", 0.75), ("time step", 0.5))))
    assert A.assert_latent_knows(e, "sticky", margin=0.25) == 0.25


def test_latent_knows_fails_when_only_the_latent_s_probe_is_undefined(
    explanation: Explanation,
) -> None:
    # kills assert_latent_knows_30 (`and`: an undefined latent passed, returning NaN), _33 to
    # _36 (the message, the evidence)
    scores = (("posterior", math.nan), ("time step", 0.5))
    e = _probes(explanation, ProbeRow("sticky", "event", scores))
    assert _message(lambda: A.assert_latent_knows(e, "sticky", margin=0.0, evidence=EVIDENCE)) == (
        "dreamer-audit: the probes of 'sticky' are undefined (too few events per fold): "
        f"posterior nan, time step 0.500\nEvidence: {EVIDENCE}"
    )


def test_latent_knows_without_probes_fails_with_the_evidence(explanation: Explanation) -> None:
    # kills assert_latent_knows_6 (the evidence), _9 (the message)
    assert _message(
        lambda: A.assert_latent_knows(explanation, "sticky", margin=0.0, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: the probes were not computed; run with --dreamer-probes true\n"
        f"Evidence: {EVIDENCE}"
    )


# --- assert_deletion_curve_beats_random


def _curves(explanation: Explanation, *curves: CurveSet) -> Explanation:
    return dataclasses.replace(explanation, curves=curves)


def _curve(head: str = "actor", area: float = 0.1, kind: str = "deletion") -> CurveSet:
    return CurveSet(head, kind, (0.1, 0.5), (0.2, 0.4), (0.1, 0.3), area)  # type: ignore[arg-type]


def test_deletion_curve_without_curves_fails_with_the_evidence(explanation: Explanation) -> None:
    # kills assert_deletion_curve_beats_random_6 (the evidence), _9 (the message), _1, _2
    assert _message(
        lambda: A.assert_deletion_curve_beats_random(
            explanation, "actor", min_area=0.0, evidence=EVIDENCE
        )
    ) == (
        "dreamer-audit: the deletion curves were not computed; run with --dreamer-curves true\n"
        f"Evidence: {EVIDENCE}"
    )


def test_deletion_curve_of_an_unknown_head_lists_the_heads_there_are(
    explanation: Explanation,
) -> None:
    # kills assert_deletion_curve_beats_random_15 to _19 (the heads in the message)
    e = _curves(explanation, _curve("value"), _curve("actor", kind="insertion"), _curve("value"))
    with pytest.raises(ConfigError) as caught:
        A.assert_deletion_curve_beats_random(e, "reward", min_area=0.0)
    assert str(caught.value) == "no deletion curve of 'reward'; the heads are actor, value"


def test_deletion_curve_passes_at_its_area_and_fails_listing_every_point(
    explanation: Explanation,
) -> None:
    # kills assert_deletion_curve_beats_random_21 (area <= min fails), _22, _24 (the points),
    # _35 (the evidence)
    e = _curves(explanation, _curve("actor", area=0.25))
    assert A.assert_deletion_curve_beats_random(e, "actor", min_area=0.25) == 0.25
    assert _message(
        lambda: A.assert_deletion_curve_beats_random(e, "actor", min_area=0.5, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: deleting the top-ranked entries moves the actor head by +0.25 more than "
        "random orders on average over the fractions, below the required +0.5 (score vs "
        f"random: 10%: 0.2 vs 0.1, 50%: 0.4 vs 0.3)\nEvidence: {EVIDENCE}"
    )


def test_a_curve_of_unequal_lengths_is_refused_where_it_is_built() -> None:
    # assert_deletion_curve_beats_random_28, _32, _33 (zip not strict in its message) are
    # equivalent: no CurveSet with fractions and curves of different lengths can be built.
    with pytest.raises(ValueError, match=r"2 fractions, 3 score values and 3 random values"):
        CurveSet("actor", "deletion", (0.1, 0.5), (0.2, 0.4, 0.6), (0.1, 0.3, 0.5), 0.1)
    good = CurveSet("actor", "deletion", (0.1, 0.5), (0.2, 0.4), (0.1, 0.3), 0.1)
    with pytest.raises(ValueError, match="differ in length"):
        CurveSet.from_json({**good.to_json(), "random_curve": [0.1]})


# --- the imagination assertions


def _prediction(**changes: float) -> PredictionError:
    values: dict[str, Any] = dict(
        horizon=3, channel=ALL_CHANNELS, starts=100, changed_fraction=0.05, model_nll=0.05,
        persistence_nll=0.1, randomized_nll=0.2, ceiling_nll=0.01, model_changed_accuracy=0.9,
        randomized_changed_accuracy=0.5, ceiling_changed_accuracy=1.0, p_persistence=0.001,
        p_randomized=0.001,
    )  # fmt: skip
    return PredictionError(**{**values, **changes})


def _heads(**changes: float) -> HeadPrediction:
    values: dict[str, Any] = dict(
        horizon=3, starts=100, reward_events=5, reward_auc=0.95, reward_persistence_auc=0.5,
        reward_randomized_auc=0.55, reward_ceiling_auc=1.0, terminals=0, discount_auc=math.nan,
    )  # fmt: skip
    return HeadPrediction(**{**values, **changes})


def _imagined(
    explanation: Explanation, *errors: PredictionError, head: HeadPrediction | None = None
) -> Explanation:
    table = ImaginationTable((3,), "exact sign flips", errors, (head or _heads(),))
    return dataclasses.replace(explanation, imagination=table)


NUMBERS = (
    "nats per cell, persistence 0.1000 (p = 0.001), randomized dynamics 0.2000 (p = 0.001), "
    "ceiling 0.0100; accuracy on the 5.0% of cells that change 90.0% (randomized 50.0%); "
    "100 starts"
)


def test_imagination_not_computed_fails_with_the_evidence(explanation: Explanation) -> None:
    # kills _imagination_1, _2 (not hidden), _5 (the evidence), _8, _10 to _12 (the message);
    # assert_imagination_beats_persistence_10, assert_reward_prediction_6 (the evidence)
    expected = (
        "dreamer-audit: the imagination audit was not computed; run with --dreamer-imagination "
        f"1,3,5,10 (or ExplainConfig(imagination=(1, 3, 5, 10)))\nEvidence: {EVIDENCE}"
    )
    assert (
        _message(
            lambda: A.assert_imagination_beats_persistence(
                explanation, horizon=3, evidence=EVIDENCE
            )
        )
        == expected
    )
    assert (
        _message(
            lambda: A.assert_reward_prediction(
                explanation, horizon=3, min_auc=0.5, evidence=EVIDENCE
            )
        )
        == expected
    )


def test_imagination_reads_the_channel_asked_for(explanation: Explanation) -> None:
    # kills assert_imagination_beats_persistence_6, _8 (the channel not passed)
    one = _prediction(channel=1, model_nll=0.07)
    e = _imagined(explanation, _prediction(), one)
    assert A.assert_imagination_beats_persistence(e, horizon=3, channel=1) == one
    assert A.assert_imagination_beats_persistence(e, horizon=3) == _prediction()


def test_imagination_at_its_boundaries(explanation: Explanation) -> None:
    # kills assert_imagination_beats_persistence_21 (an equal NLL beats the null), _22 (p at
    # the level fails), _2, _3 (not hidden)
    row = _prediction(p_persistence=0.05)
    assert A.assert_imagination_beats_persistence(_imagined(explanation, row), horizon=3) == row
    tied = _imagined(explanation, _prediction(model_nll=0.1))
    assert _message(lambda: A.assert_imagination_beats_persistence(tied, horizon=3)) == (
        "dreamer-audit: the world model's 3-step imagination (all channels) does not beat "
        f"persistence at level 0.05: model 0.1000 {NUMBERS}; with 4 episodes no p-value can go "
        "below 0.0625, record more episodes"
    )


def test_imagination_beating_neither_null_names_both_without_a_hint() -> None:
    # kills assert_imagination_beats_persistence_28 (always the hint), _32 ("XXXX"), _38, _39
    # (the nulls' separator): with 8 episodes a p-value can reach 0.0039
    e = _imagined(fake_explanation(steps=4, episodes=8), _prediction(model_nll=0.3))
    assert _message(lambda: A.assert_imagination_beats_persistence(e, horizon=3)) == (
        "dreamer-audit: the world model's 3-step imagination (all channels) does not beat "
        f"persistence or the randomized dynamics at level 0.05: model 0.3000 {NUMBERS}"
    )


def test_imagination_hint_only_when_the_smallest_p_value_is_above_the_level(
    explanation: Explanation,
) -> None:
    # kills assert_imagination_beats_persistence_31 (smallest >= level), _29, _30 (the hint's
    # words): with 4 episodes the smallest p-value is exactly 0.0625
    e = _imagined(explanation, _prediction(p_persistence=0.5))
    at = _message(lambda: A.assert_imagination_beats_persistence(e, horizon=3, level=0.0625))
    assert at.endswith("; 100 starts")
    above = _message(lambda: A.assert_imagination_beats_persistence(e, horizon=3, level=0.05))
    assert above.endswith(
        "; 100 starts; with 4 episodes no p-value can go below 0.0625, record more episodes"
    )


REWARD = "over 100 starts, 5 rewarded"  # the end of every reward message's numbers


def test_reward_prediction_undefined_says_why_with_the_evidence(
    explanation: Explanation,
) -> None:
    # kills assert_reward_prediction_11 (the evidence), _14, _15 (the message), _1, _2
    e = _imagined(explanation, _prediction(), head=_heads(reward_events=0, reward_auc=math.nan))
    assert _message(
        lambda: A.assert_reward_prediction(e, horizon=3, min_auc=0.5, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: the reward prediction at horizon 3 is undefined: 0 of 100 imagined "
        "transitions were rewarded (an AUC needs both); record more or longer episodes\n"
        f"Evidence: {EVIDENCE}"
    )


def test_reward_prediction_at_its_threshold_and_below_it(explanation: Explanation) -> None:
    # kills assert_reward_prediction_22 (AUC at the minimum fails), _21 (the numbers), _24 (the
    # evidence)
    head = _heads()
    e = _imagined(explanation, _prediction(), head=head)
    assert A.assert_reward_prediction(e, horizon=3, min_auc=0.95) == head
    assert _message(
        lambda: A.assert_reward_prediction(e, horizon=3, min_auc=0.99, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: the reward head 3 steps into imagination reaches AUC 0.950 (persistence "
        "0.500, randomized dynamics 0.550, ceiling 1.000) over 100 starts, 5 rewarded, below the "
        f"required 0.990\nEvidence: {EVIDENCE}"
    )


def test_reward_prediction_tied_with_a_null_does_not_beat_it(explanation: Explanation) -> None:
    # kills assert_reward_prediction_29 (a tie beats the null), _17, _18 ("persistence"), _31
    # (the evidence), _35, _36 (the nulls' separator)
    tied = _heads(reward_persistence_auc=0.95, reward_randomized_auc=0.97)
    e = _imagined(explanation, _prediction(), head=tied)
    assert _message(
        lambda: A.assert_reward_prediction(e, horizon=3, min_auc=0.5, evidence=EVIDENCE)
    ) == (
        "dreamer-audit: the reward head 3 steps into imagination does not beat persistence or "
        "randomized dynamics: AUC 0.950 (persistence 0.950, randomized dynamics 0.970, ceiling "
        f"1.000) {REWARD}\nEvidence: {EVIDENCE}"
    )
    only = _imagined(explanation, _prediction(), head=_heads(reward_persistence_auc=0.95))
    assert _message(lambda: A.assert_reward_prediction(only, horizon=3, min_auc=0.5)).startswith(
        "dreamer-audit: the reward head 3 steps into imagination does not beat persistence: AUC"
    )
