from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    agent = tiny_agent(seed=2)
    trajectory = run_rollouts(agent, "freeway", episodes=4, steps=12, seed=1)
    return explain(trajectory, ExplainConfig(rank=3, top_k=3, stability_refits=1), agent=agent)


def _with_metrics(explanation: Explanation, **metrics: float) -> Explanation:
    return dataclasses.replace(
        explanation, metrics=dataclasses.replace(explanation.metrics, **metrics)
    )


def test_event_precision_against_a_hand_made_mask(explanation: Explanation) -> None:
    mask = np.zeros_like(explanation.valid)
    top = explanation.top_observations
    for b in range(explanation.episodes):
        mask[top[b, 0], b] = True  # exactly the best observation of each rollout
    assert A.assert_top_observations_coincide(
        explanation, mask, min_precision=1 / 3
    ) == pytest.approx(1 / 3)
    assert A.assert_top_observations_coincide(explanation, mask, min_precision=1.0, k=1) == 1.0
    with pytest.raises(
        AssertionError,
        match=r"top-3 observations coincide with the event in 33\.3% of 12 picks over 4 "
        r"rollouts, below the required 50\.0%",
    ):
        A.assert_top_observations_coincide(explanation, mask, min_precision=0.5, evidence="/x/y")
    with pytest.raises(
        AssertionError,
        match=r"\(base rate 8\.3%, null 95% quantiles \d+\.\d% \(circular shifts\) and "
        r"\d+\.\d% \(other episodes\), p = 0\.0417; effect \+\d+\.\d% \[[+-]\d+\.\d%, "
        r"[+-]\d+\.\d%\]\)\nEvidence: /x/y",
    ):
        A.assert_top_observations_coincide(explanation, mask, min_precision=0.5, evidence="/x/y")


def test_event_by_fact_name_and_by_function(explanation: Explanation) -> None:
    at_start = A.assert_top_observations_coincide(
        explanation, lambda e: e.fact("chicken_row") == 9, min_precision=0.0, level=1.0
    )  # level 1 measures only: at 0.05 the 58% would fail against its 60% base rate
    expected = np.mean(
        [
            explanation.fact("chicken_row")[t, b] == 9
            for b, row in enumerate(explanation.top_observations)
            for t in row
        ]
    )
    assert at_start == pytest.approx(expected)
    with pytest.raises(ConfigError, match="records no fact 'lives'"):
        A.assert_top_observations_coincide(explanation, "lives", min_precision=0.1)
    with pytest.raises(ConfigError, match=r"must be a \[steps, episodes\] = \(12, 4\) mask"):
        A.assert_top_observations_coincide(explanation, np.zeros(3), min_precision=0.1)
    with pytest.raises(ConfigError, match="k must be in 1..3"):
        A.assert_top_observations_coincide(explanation, "collision", min_precision=0.1, k=4)


def test_metric_thresholds_pass_and_fail_with_numbers(explanation: Explanation) -> None:
    e = _with_metrics(
        explanation,
        stability_min_cosine=0.8,
        stability_mean_cosine=0.9,
        stability_topk_jaccard=0.4,
        sanity_spearman=0.3,
        confidence_spearman=0.6,
        deletion_topk=0.2,
        deletion_random=0.1,
        deletion_ratio=2.0,
        relative_error=0.1,
        explained_variance=0.7,
    )
    A.assert_factors_stable(e, min_cosine=0.8, min_mean_cosine=0.85, min_topk_jaccard=0.4)
    with pytest.raises(
        AssertionError,
        match=r"minimum matched prototype cosine is 0\.800, below the required 0\.900",
    ):
        A.assert_factors_stable(e, min_cosine=0.9)
    assert A.assert_differs_from_random_weights(e, max_spearman=0.5) == 0.3
    with pytest.raises(
        AssertionError, match=r"randomized weights at Spearman 0\.300, above the allowed 0\.200"
    ):
        A.assert_differs_from_random_weights(e, max_spearman=0.2)
    with pytest.raises(
        AssertionError, match=r"confidence \|\|p\|\|_2 at Spearman 0\.600, above the allowed 0\.500"
    ):
        A.assert_not_just_confidence(e, max_spearman=0.5)
    A.assert_reconstruction(e, max_relative_error=0.1, min_explained_variance=0.7)
    with pytest.raises(
        AssertionError,
        match=r"relative reconstruction error is 0\.1000, above the allowed 0\.0500 \(rank 3\)",
    ):
        A.assert_reconstruction(e, max_relative_error=0.05)
    with pytest.raises(
        AssertionError, match=r"explained variance is 0\.7000, below the required 0\.8000"
    ):
        A.assert_reconstruction(e, min_explained_variance=0.8)
    assert A.assert_deletion_beats_random(e, min_ratio=2.0) == 2.0
    with pytest.raises(
        AssertionError,
        match=r"by 0\.2000 \(total variation\), 2\.00x the 0\.1000 of random steps; at least 3\.00x",
    ):
        A.assert_deletion_beats_random(e, min_ratio=3.0)


def test_missing_metrics_fail_and_say_why(explanation: Explanation) -> None:
    e = _with_metrics(explanation, sanity_spearman=math.nan, stability_min_cosine=math.nan)
    with pytest.raises(
        AssertionError,
        match=r"sanity_spearman was not computed \(the explanation was made without the agent, or the",
    ):
        A.assert_differs_from_random_weights(e, max_spearman=0.5)
    with pytest.raises(AssertionError, match="stability_refits is 0"):
        A.assert_factors_stable(e, min_cosine=0.5)


def test_return_and_action_fractions(explanation: Explanation) -> None:
    e = dataclasses.replace(explanation, rewards=np.ones_like(explanation.rewards))
    assert A.assert_mean_return(e, min_return=12.0) == 12.0
    with pytest.raises(
        AssertionError,
        match=r"mean return is 12\.000 \(std 0\.000 over 4 episodes of up to 12 steps\), below the required 13\.000",
    ):
        A.assert_mean_return(e, min_return=13.0)
    actions = np.zeros_like(explanation.actions)
    actions[:3] = 1
    e = dataclasses.replace(explanation, actions=actions)
    fractions = A.assert_action_fractions(
        e, min_fractions={"up": 0.25}, max_fractions={"down": 0.0}
    )
    assert fractions == {"noop": 0.75, "up": 0.25, "down": 0.0}
    with pytest.raises(
        AssertionError,
        match=r"action 'up' is chosen 25\.0% of steps, below 50\.0%; all fractions: noop 75\.0%, up 25\.0%, down 0\.0%",
    ):
        A.assert_action_fractions(e, min_fractions={"up": 0.5})
    with pytest.raises(
        AssertionError, match=r"action 'noop' is chosen 75\.0% of steps, above 50\.0%"
    ):
        A.assert_action_fractions(e, max_fractions={"noop": 0.5})
    with pytest.raises(ConfigError, match=r"unknown actions \['fire'\]"):
        A.assert_action_fractions(e, min_fractions={"fire": 0.1})
