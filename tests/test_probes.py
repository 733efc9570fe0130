"""Fact probes: a linearly encoded fact is recovered and an unrelated one is not, folds never
split an episode, and the assertion compares the trained latent with every control."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pytest_dreamer_audit import assertions as A
from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.results.explanation import ExplainConfig
from pytest_dreamer_audit.results.probes import CONTROLS, LATENTS, ProbeRow, probe, probe_table
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import fake_explanation, tiny_agent


def _world(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """400 steps of 16 episodes, 6 features; feature 0 encodes the fact linearly."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(400, 6))
    groups = np.repeat(np.arange(16), 25)
    encoded = features[:, 0] + 0.3 * rng.normal(size=400)
    unrelated = rng.normal(size=400)
    return features, groups, encoded, unrelated


def test_a_linearly_encoded_fact_is_recovered_and_an_unrelated_one_is_not() -> None:
    features, groups, encoded, unrelated = _world()
    assert probe(features, encoded > 0, groups, event=True) > 0.9
    assert 0.4 < probe(features, unrelated > 0, groups, event=True) < 0.6
    assert probe(features, 2 * encoded, groups, event=False) > 0.8
    assert probe(features, unrelated, groups, event=False) < 0.05
    # The fact is in feature 0 alone: without it the probe is at chance.
    assert 0.4 < probe(features[:, 1:], encoded > 0, groups, event=True) < 0.6


def test_undefined_probes_are_nan() -> None:
    features, groups, encoded, _ = _world()
    assert math.isnan(probe(features, encoded > 0, groups % 3, event=True))  # 3 groups, 4 folds
    rare = np.zeros(400, dtype=bool)
    rare[:25] = True  # one episode holds every event: some training fold has none
    assert math.isnan(probe(features, rare, groups, event=True))


def test_the_table_probes_every_fact_from_every_input() -> None:
    features, groups, encoded, unrelated = _world()
    inputs = {"posterior": features, "time step": features[:, 3:]}
    facts = [("a", encoded > 0, True), ("b", unrelated, False)]
    rows = probe_table(inputs, facts, groups)
    assert [(row.fact, row.kind) for row in rows] == [("a", "event"), ("b", "graded")]
    assert [name for name, _ in rows[0].scores] == ["posterior", "time step"]
    assert rows[0].best_latent[0] == "posterior"
    assert rows[0].best_control[0] == "time step"
    assert ProbeRow.from_json(rows[0].to_json()) == rows[0]
    with pytest.raises(ConfigError, match="no probe input 'deter'; the inputs are posterior, time"):
        rows[0].score("deter")


def _with_probes(scores: dict[str, float]) -> object:
    row = ProbeRow("car_adjacent", "event", tuple(scores.items()))
    return dataclasses.replace(fake_explanation(), probes=(row,))


def test_the_latent_must_beat_every_control_by_the_margin() -> None:
    scores = dict.fromkeys([*LATENTS, *CONTROLS], 0.6) | {"deter": 0.85, "observation": 0.8}
    e = _with_probes(scores)
    assert A.assert_latent_knows(e, "car_adjacent", margin=0.04) == pytest.approx(0.05)  # type: ignore[arg-type]
    with pytest.raises(
        AssertionError,
        match=r"the latent does not know 'car_adjacent' beyond its controls: the best trained "
        r"input, deter, reaches AUC 0\.850, the best control, observation, 0\.800; a margin of "
        r"0\.100 is required",
    ):
        A.assert_latent_knows(e, "car_adjacent", margin=0.1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no probe of 'collision'"):
        A.assert_latent_knows(e, "collision", margin=0.1)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="run with --dreamer-probes true"):
        A.assert_latent_knows(fake_explanation(), "car_adjacent", margin=0.1)


def test_explain_probes_every_table_fact_from_the_latents_and_controls() -> None:
    agent = tiny_agent(seed=1)
    trajectory = run_rollouts(agent, "freeway", episodes=8, steps=15, seed=3)
    config = ExplainConfig(rank=3, stability_refits=0, probes=True)
    e = explain(trajectory, config, agent=agent)
    names = [row.fact for row in e.probes]
    assert names[0] == "chicken_row"
    assert "collision_visible" in names
    assert [name for name, _ in e.probes[0].scores] == [*LATENTS, *CONTROLS]
    # The raw observation shows the chicken's row: for an untrained agent it beats every latent.
    row = e.probes[0]
    assert row.best_control[0] == "observation"
    assert row.score("observation") > row.best_latent[1]
    with pytest.raises(ConfigError, match="the fact probes .* need the agent"):
        explain(trajectory, config)
