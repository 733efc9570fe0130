"""Deletion and insertion curves: a planted reward head driven by one categorical is found by a
score that ranks that categorical first, and not by random orders."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.analysis.curves import FRACTIONS, head_curves
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


@pytest.fixture(scope="module")
def planted():  # type: ignore[no-untyped-def]
    """A tiny agent whose reward head reads categorical 0 only (its other inputs are cut)."""
    agent = tiny_agent(seed=7)
    sizes = agent.sizes
    first = agent.reward_decoder.model[0]  # type: ignore[union-attr]
    with torch.no_grad():
        first.weight.zero_()
        start = sizes.deter  # categorical 0's classes follow the deterministic state
        first.weight[:, start : start + sizes.classes] = (
            torch.randn(
                first.weight.shape[0], sizes.classes, generator=torch.Generator().manual_seed(0)
            )
            * 3
        )
    trajectory = run_rollouts(agent, "freeway", episodes=4, steps=20, seed=1)
    return agent, trajectory


def test_a_score_that_ranks_the_reward_categorical_first_finds_it(planted) -> None:  # type: ignore[no-untyped-def]
    agent, t = planted
    steps, episodes = t.valid.shape
    cats = agent.sizes.categoricals
    scores = torch.zeros(steps, episodes, cats)
    scores[..., 0] = 1.0  # categorical 0 first, the rest tied behind it
    curves = {
        (c.head, c.kind): c
        for c in head_curves(
            agent, t.deter, t.posterior_logits, t.prior_logits, scores, t.valid.bool()
        )
    }
    assert {head for head, _ in curves} == {"actor", "value", "reward", "discount", "decoder"}
    reward = curves[("reward", "deletion")]
    assert reward.fractions == FRACTIONS
    assert reward.score_curve[0] == 0.0 == reward.random_curve[0]  # nothing deleted yet
    # Deleting the first 1/C of the entries (all of categorical 0) already moves the reward as
    # much as deleting everything; random orders get there only gradually.
    first_cut = FRACTIONS.index(0.3)  # >= 1/4 of the entries: all of categorical 0
    assert reward.score_curve[first_cut] == pytest.approx(reward.score_curve[-1], rel=1e-5)
    assert reward.random_curve[first_cut] < 0.8 * reward.score_curve[first_cut]
    assert reward.area > 0
    assert curves[("reward", "insertion")].area > 0
    # The reversed ranking puts categorical 0 last: it now does worse than random.
    reversed_curves = {
        (c.head, c.kind): c
        for c in head_curves(
            agent, t.deter, t.posterior_logits, t.prior_logits, -scores, t.valid.bool()
        )
    }
    assert reversed_curves[("reward", "deletion")].area < 0


def test_explain_with_curves_and_the_assertion(planted) -> None:  # type: ignore[no-untyped-def]
    agent, t = planted
    e = explain(t, ExplainConfig(rank=3, stability_refits=0, curves=True), agent=agent)
    heads = {(c.head, c.kind) for c in e.curves}
    assert ("decoder", "insertion") in heads
    assert len(heads) == 10
    area = A.assert_deletion_curve_beats_random(e, "reward", min_area=-1.0)
    assert area == next(c.area for c in e.curves if (c.head, c.kind) == ("reward", "deletion"))
    with pytest.raises(
        AssertionError, match=r"deleting the top-ranked entries moves the reward head"
    ):
        A.assert_deletion_curve_beats_random(e, "reward", min_area=1e6)
    with pytest.raises(AssertionError, match="run with --dreamer-curves true"):
        A.assert_deletion_curve_beats_random(
            explain(t, ExplainConfig(rank=3, stability_refits=0), agent=agent), "reward", min_area=0
        )
    assert not math.isnan(area)
