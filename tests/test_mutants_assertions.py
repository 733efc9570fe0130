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

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pytest_dreamer_audit.results import assertions as A
from pytest_dreamer_audit.results.config import ClaimConfig
from pytest_dreamer_audit.results.explanation import Explanation
from pytest_dreamer_audit.results.semantics import EventTest, FactorStatus
from pytest_dreamer_audit.results.strata import StrataTest
from pytest_dreamer_audit.results.two_nulls import NullTest
from pytest_dreamer_audit.results.values import ScoreAssociation
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
