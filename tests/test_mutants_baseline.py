"""The baseline file and its comparison at their edges, written against the mutants that survived
``tox -e mutation -- pytest_dreamer_audit/results/baseline.py`` (benchmarks/mutation.md): the
file's exact format, a pick at step 0, drift exactly at each tolerance, two empty top-k sets,
baselines malformed in more ways than a missing key, and every message's fix."""

from __future__ import annotations

import dataclasses
import errno
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.results.baseline import BaselineTolerances, check_baseline, snapshot
from pytest_dreamer_audit.results.explanation import ExplainConfig, Explanation
from pytest_dreamer_audit.results.similarity import jaccard, matched_cosines
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent

# Exactly what each fix says, so that a garbled sentence is caught, not only a missing one.
REWRITE = "rewrite it with --dreamer-update-baselines"


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    """3 episodes of 10 steps; top observations made to hold a pick at step 0 and a -1 (an
    episode with fewer analysed steps than k), and returns whose mean is not 0."""
    trajectory = run_rollouts(tiny_agent(seed=5), "freeway", episodes=3, steps=10)
    explained = explain(trajectory, ExplainConfig(rank=3, top_k=2, stability_refits=0))
    top = np.array([[0, 4], [7, -1], [3, 0]])
    rewards = np.zeros_like(explained.rewards)
    rewards[0] = [1.0, 2.0, 3.5]
    return dataclasses.replace(explained, top_observations=top, rewards=rewards)


def _stored(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def _message(explanation: Explanation, path: Path, **kwargs: Any) -> str:
    with pytest.raises(AssertionError) as caught:
        check_baseline(explanation, path, **kwargs)
    return str(caught.value)


def test_the_snapshot_is_the_file_format(explanation: Explanation) -> None:
    # Kills snapshot_6/_7 (`t > 0`, `t >= 1`: a pick at step 0 dropped), _14.._21 (the config's
    # key names: the format older baselines were written in) and _31/_32 (rounding to 6 places).
    data = snapshot(explanation)
    assert data["top_observations"] == [[0, 0], [0, 4], [1, 7], [2, 0], [2, 3]]
    assert data["config"] == {"rank": 3, "layout": "pooled", "score": "surprise", "top_k": 2}
    assert data["prototypes"] == np.round(explanation.prototypes, 6).tolist()
    assert data["prototypes"] != np.round(explanation.prototypes, 7).tolist()
    assert data["mean_return"] == pytest.approx(6.5 / 3)
    assert sorted(data) == [
        "baseline_version",
        "config",
        "episodes",
        "game",
        "mean_return",
        "prototypes",
        "score_mean",
        "score_std",
        "steps",
        "top_observations",
    ]


def test_the_written_file_is_indented_sorted_json_with_a_final_newline(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills _write_7.._13: a baseline is reviewed and committed, so its diff must be stable and
    # readable (keys sorted, two-space indent, newline at the end).
    path = tmp_path / "b.json"
    with pytest.raises(AssertionError, match="created"):
        check_baseline(explanation, path)
    assert path.read_text() == json.dumps(snapshot(explanation), indent=2, sort_keys=True) + "\n"
    assert path.read_text().startswith('{\n  "baseline_version": 1,\n  "config": {\n    "layout"')


def test_drift_exactly_at_each_tolerance_passes(explanation: Explanation, tmp_path: Path) -> None:
    # Kills _differences_28, _37, _55, _65 (`<=`/`>=` in place of the strict comparisons): a
    # value exactly at its tolerance is within it.
    current = snapshot(explanation)
    stored = json.loads(json.dumps(current))
    stored["prototypes"] = (np.asarray(current["prototypes"]) + 0.05).tolist()
    stored["score_mean"] += 0.03
    stored["score_std"] -= 0.02
    # 5 picks; 4 kept and 2 others: Jaccard 4/7.
    stored["top_observations"] = [*current["top_observations"][:4], [1, 1], [1, 2]]
    stored["mean_return"] += 0.75
    cosine = float(matched_cosines(np.asarray(stored["prototypes"]), current["prototypes"]).min())
    overlap = jaccard(
        map(tuple, stored["top_observations"]), map(tuple, current["top_observations"])
    )
    assert overlap == pytest.approx(4 / 7)
    assert 0.9 < cosine < 1
    exactly = BaselineTolerances(
        min_prototype_cosine=cosine,
        score_mean_abs=abs(current["score_mean"] - stored["score_mean"]),
        score_std_abs=abs(current["score_std"] - stored["score_std"]),
        min_topk_jaccard=overlap,
        return_abs=abs(current["mean_return"] - stored["mean_return"]),
    )
    path = _stored(tmp_path / "b.json", stored)
    check_baseline(explanation, path, tolerances=exactly)
    # A hair stricter, each one fails, and says which number and bound.
    stricter = BaselineTolerances(
        min_prototype_cosine=math.nextafter(cosine, 2),
        score_mean_abs=math.nextafter(exactly.score_mean_abs, 0),
        score_std_abs=math.nextafter(exactly.score_std_abs, 0),
        min_topk_jaccard=math.nextafter(overlap, 2),
        return_abs=math.nextafter(exactly.return_abs, 0),
    )
    message = _message(explanation, path, tolerances=stricter)
    problems = message.split("\n  - ")[1:]
    assert [problem.split(":")[0] for problem in problems] == [
        "prototypes",
        "score_mean",
        "score_std",
        "top-k observations",
        "mean return",
    ]
    assert "top-k observations: Jaccard 0.571 < 0.571\n  - mean return" in message


def test_the_return_drift_is_a_difference_not_a_sum(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills _differences_59 (`current + stored`): the returns' means are 2.167 and 2.667.
    stored = snapshot(explanation)
    stored["mean_return"] += 0.5
    check_baseline(explanation, _stored(tmp_path / "b.json", stored))
    stored["mean_return"] = -stored["mean_return"]
    message = _message(explanation, _stored(tmp_path / "b.json", stored))
    assert "mean return: baseline -2.667, now 2.167 (|diff| 4.833 > 1.0)" in message


def test_two_empty_top_k_sets_agree(explanation: Explanation, tmp_path: Path) -> None:
    # Kills _differences_42 (`empty=None`: comparing None is a TypeError, read as a malformed
    # baseline). Every episode shorter than nothing: no top observation at all.
    empty = dataclasses.replace(explanation, top_observations=np.full((3, 2), -1))
    assert snapshot(empty)["top_observations"] == []
    check_baseline(empty, _stored(tmp_path / "b.json", snapshot(empty)))
    # One side empty: Jaccard 0, a drift.
    message = _message(explanation, tmp_path / "b.json")
    assert "top-k observations: Jaccard 0.000 < 0.500" in message


def test_each_problem_is_one_bullet_naming_both_values(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills _differences_13 (the baseline's value read as `stored.get(None)`) and
    # check_baseline_74 (the bullets joined with another separator).
    other = {**snapshot(explanation), "episodes": 4, "steps": 12}
    message = _message(explanation, _stored(tmp_path / "b.json", other))
    assert message == (
        f"dreamer-audit: explanation drifted from the baseline {tmp_path / 'b.json'}:\n"
        "  - episodes changed: baseline 4, now 3\n"
        "  - steps changed: baseline 12, now 10\n"
        "If the change is intended, rerun with --dreamer-update-baselines"
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d.update(score_mean="0.5"), "TypeError"),
        (lambda d: d.update(prototypes=[[1.0, 0.0], [1.0]]), "ValueError"),
        (lambda d: d.update(top_observations=[[0, 1, 2]]), "ValueError"),
        (lambda d: d.update(top_observations=[[0, "x"]]), "ValueError"),
        (lambda d: d.update(top_observations=[0, 1]), "TypeError"),
        (lambda d: d.update(mean_return=None), "TypeError"),
        (lambda d: d.pop("top_observations"), "KeyError"),
    ],
    ids=["text-number", "ragged", "triple", "text-step", "flat", "null-return", "no-top-k"],
)
def test_a_malformed_baseline_is_refused_with_the_fix(
    explanation: Explanation, tmp_path: Path, change: Any, error: str
) -> None:
    # Kills check_baseline_68 (the fix garbled); the issue's "no malformed baseline beyond a
    # missing key".
    data = snapshot(explanation)
    change(data)
    path = _stored(tmp_path / "b.json", data)
    message = _message(explanation, path)
    assert message.startswith(f"dreamer-audit: baseline {path} is malformed ({error}: ")
    assert message.endswith(f"); {REWRITE}")


def test_unreadable_and_foreign_baselines_say_how_to_fix_them(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills check_baseline_47/_48 and _56/_57 (the fixes garbled).
    path = tmp_path / "b.json"
    path.write_text("{not json")
    message = _message(explanation, path)
    assert message.startswith(f"dreamer-audit: baseline {path} is unreadable (Expecting ")
    assert message.endswith(f"); {REWRITE}")
    for data in ([], {"baseline_version": 2}, {"baseline_version": "1"}):
        path.write_text(json.dumps(data))
        assert _message(explanation, path) == (
            f"dreamer-audit: baseline {path} has another format version; {REWRITE}"
        )


def test_a_new_baseline_under_update_names_the_flag(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills check_baseline_32 (the hint garbled).
    path = tmp_path / "b.json"
    assert _message(explanation, path, update=True, evidence="/ev") == (
        f"dreamer-audit: baseline created at {path}; review and commit it, then rerun without "
        "--dreamer-update-baselines\nEvidence: /ev"
    )


def test_an_unwritable_folder_names_the_os_error_and_the_fix(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills check_baseline_26/_27 (`strerror and error`; the fix garbled).
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "sub" / "b.json"
    message = _message(explanation, target)
    assert message.startswith(f"dreamer-audit: cannot write the baseline {target} (")
    assert "[Errno" not in message
    assert message.endswith("); make its folder writable or point --dreamer-baseline-dir elsewhere")


def test_a_baseline_that_cannot_be_looked_up_says_so(
    explanation: Explanation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills check_baseline_15.._18: a folder on the way without search permission (as root,
    # chmod cannot make one, so `exists` is made to fail as it would).
    target = tmp_path / "locked" / "b.json"

    def refuse(self: Path, **kwargs: Any) -> bool:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", refuse)
    assert _message(explanation, target) == (
        f"dreamer-audit: the baseline {target} cannot be looked up (Permission denied); make "
        "its folder readable or point --dreamer-baseline-dir elsewhere"
    )


def test_pytest_hides_check_baseline_from_the_traceback(
    explanation: Explanation, tmp_path: Path
) -> None:
    # Kills check_baseline_2/_3 (`__tracebackhide__` None or False): the user sees their test's
    # line, not the package's raise.
    with pytest.raises(AssertionError) as caught:
        check_baseline(explanation, tmp_path / "b.json")
    assert caught.traceback[-1].ishidden(caught)  # the frame that raised
    assert not caught.traceback[0].ishidden(caught)  # this test
