from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.results.baseline import BaselineTolerances, check_baseline, snapshot
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    trajectory = run_rollouts(tiny_agent(seed=5), "freeway", episodes=3, steps=10)
    return explain(trajectory, ExplainConfig(rank=3, top_k=2, stability_refits=0))


def test_snapshot_holds_the_compared_quantities(explanation: Explanation) -> None:
    data = snapshot(explanation)
    scores = explanation.observation_scores[explanation.valid]
    assert data["score_mean"] == pytest.approx(float(scores.mean()))
    assert len(data["top_observations"]) == 6
    assert np.asarray(data["prototypes"]).shape == (3, 5)
    json.dumps(data)  # JSON-ready


def test_create_then_pass_then_update(tmp_path: Path, explanation: Explanation) -> None:
    path = tmp_path / "b" / "base.json"
    with pytest.raises(AssertionError, match="baseline created at .*base.json"):
        check_baseline(explanation, path)
    check_baseline(explanation, path)
    with pytest.raises(AssertionError, match="baseline updated at"):
        check_baseline(explanation, path, update=True)
    check_baseline(explanation, path)


def test_each_kind_of_drift_is_reported(tmp_path: Path, explanation: Explanation) -> None:
    path = tmp_path / "base.json"
    stored = snapshot(explanation)
    stored["prototypes"] = np.roll(np.eye(3, 5), 1, axis=1).tolist()
    stored["score_std"] += 0.2
    stored["mean_return"] += 3.0
    path.write_text(json.dumps(stored))
    with pytest.raises(AssertionError) as caught:
        check_baseline(explanation, path, evidence="/ev")
    message = str(caught.value)
    assert "prototypes: minimum matched cosine" in message
    assert "score_std: baseline" in message
    assert "mean return: baseline 3.000, now 0.000 (|diff| 3.000 > 1.0)" in message
    assert "score_mean" not in message
    assert message.endswith("--dreamer-update-baselines\nEvidence: /ev")
    check_baseline(
        explanation,
        path,
        tolerances=BaselineTolerances(min_prototype_cosine=-1, score_std_abs=1, return_abs=5),
    )


def test_changed_settings_and_unreadable_files(tmp_path: Path, explanation: Explanation) -> None:
    path = tmp_path / "base.json"
    other = dataclasses.replace(explanation, config=dataclasses.replace(explanation.config, rank=2))
    path.write_text(json.dumps(snapshot(other)))
    with pytest.raises(AssertionError, match="config changed"):
        check_baseline(explanation, path)
    path.write_text("{not json")
    with pytest.raises(AssertionError, match="is unreadable"):
        check_baseline(explanation, path)
    path.write_text(json.dumps({"baseline_version": 99}))
    with pytest.raises(AssertionError, match="another format version"):
        check_baseline(explanation, path)
