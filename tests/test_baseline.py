from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
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


def test_a_new_baseline_says_rerun_and_only_names_the_flag_when_it_was_given(
    explanation: Explanation, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError, match=r"created at .*; review and commit it, then rerun$"):
        check_baseline(explanation, tmp_path / "new.json")
    with pytest.raises(AssertionError, match="then rerun without --dreamer-update-baselines"):
        check_baseline(explanation, tmp_path / "new.json", update=True)


def test_an_unwritable_baseline_folder_is_an_assertion_with_a_fix(
    explanation: Explanation, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AssertionError, match="cannot write the baseline .*--dreamer-baseline-dir"):
        check_baseline(explanation, blocker / "sub" / "b.json")


def test_a_malformed_baseline_is_an_assertion_with_a_fix(
    explanation: Explanation, tmp_path: Path
) -> None:
    path = tmp_path / "b.json"
    data = snapshot(explanation)
    del data["score_mean"]
    path.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match="is malformed .*KeyError.*--dreamer-update-baselines"):
        check_baseline(explanation, path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_topk_jaccard", 1.01, r"min_topk_jaccard must be from 0 to 1, got 1\.01"),
        ("min_topk_jaccard", -0.1, r"min_topk_jaccard must be from 0 to 1"),
        ("min_prototype_cosine", 1.5, r"min_prototype_cosine must be from -1 to 1"),
        ("score_mean_abs", -0.01, r"score_mean_abs must be from 0 to inf"),
        ("return_abs", float("nan"), r"return_abs must be from 0 to inf, got nan"),
        ("score_std_abs", "0.05", r"score_std_abs must be a number, got '0.05'"),
        ("return_abs", True, r"return_abs must be a number, got True"),
    ],
)
def test_tolerances_outside_their_range_are_refused_where_they_are_made(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        BaselineTolerances(**{field: value})  # type: ignore[arg-type]
    assert BaselineTolerances(min_topk_jaccard=1.0, min_prototype_cosine=-1.0, return_abs=0)
