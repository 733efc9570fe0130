"""Regression against a stored baseline: prototypes, score statistics, top-k sets, return.

A baseline is a small JSON file. The workflow follows pytest-regressions: a missing baseline is
written and the test fails once ("baseline created, check it in"); a later run compares; with
``--dreamer-update-baselines`` the file is rewritten and the test fails once more so that the
change is seen. Torch-free.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..files import atomic_text
from .explanation import Explanation
from .similarity import jaccard, matched_cosines

__all__ = ["BASELINE_VERSION", "BaselineTolerances", "check_baseline", "snapshot"]

BASELINE_VERSION = 1


@dataclass(frozen=True)
class BaselineTolerances:
    """How far an explanation may drift from its baseline.

    Attributes:
        min_prototype_cosine: every prototype, Hungarian-matched to the baseline's, must have at
            least this cosine similarity.
        score_mean_abs, score_std_abs: absolute tolerance on the mean and standard deviation of
            the normalised observation scores over valid steps.
        min_topk_jaccard: Jaccard overlap of the top-k (episode, step) sets.
        return_abs: absolute tolerance on the mean return.
    """

    min_prototype_cosine: float = 0.95
    score_mean_abs: float = 0.05
    score_std_abs: float = 0.05
    min_topk_jaccard: float = 0.5
    return_abs: float = 1.0

    def __post_init__(self) -> None:
        ranges = {
            "min_prototype_cosine": (-1.0, 1.0),  # a cosine
            "min_topk_jaccard": (0.0, 1.0),  # an overlap
            "score_mean_abs": (0.0, math.inf),
            "score_std_abs": (0.0, math.inf),
            "return_abs": (0.0, math.inf),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"BaselineTolerances.{name} must be a number, got {value!r}")
            if not low <= value <= high:  # NaN fails too
                raise ConfigError(
                    f"BaselineTolerances.{name} must be from {low:g} to {high:g}, got {value!r}: "
                    "a tolerance outside that range passes or fails every explanation"
                )


def snapshot(explanation: Explanation) -> dict[str, Any]:
    """The baseline of an explanation (JSON-ready)."""
    scores = explanation.observation_scores[explanation.valid]
    top = sorted(
        [b, int(t)]
        for b, row in enumerate(explanation.top_observations.tolist())
        for t in row
        if t >= 0
    )
    return {
        "baseline_version": BASELINE_VERSION,
        "game": explanation.game,
        "config": {
            "rank": explanation.config.rank,
            "layout": explanation.config.layout,
            "score": explanation.config.score,
            "top_k": explanation.config.top_k,
        },
        "episodes": explanation.episodes,
        "steps": explanation.steps,
        "prototypes": np.round(explanation.prototypes, 6).tolist(),
        "score_mean": float(scores.mean()),
        "score_std": float(scores.std()),
        "top_observations": top,
        "mean_return": float(explanation.returns.mean()),
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    atomic_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _differences(
    current: dict[str, Any], stored: dict[str, Any], tol: BaselineTolerances
) -> list[str]:
    problems: list[str] = []
    for key in ("game", "config", "episodes", "steps"):
        if current[key] != stored.get(key):
            problems.append(f"{key} changed: baseline {stored.get(key)!r}, now {current[key]!r}")
    if problems:
        return problems  # the rest is not comparable
    old, new = np.asarray(stored["prototypes"]), np.asarray(current["prototypes"])
    if old.shape != new.shape:
        return [f"prototype shape changed: baseline {old.shape}, now {new.shape}"]
    cosine = float(matched_cosines(old, new).min())
    if cosine < tol.min_prototype_cosine:
        problems.append(
            f"prototypes: minimum matched cosine {cosine:.3f} < {tol.min_prototype_cosine:.3f}"
        )
    for key, allowed in (("score_mean", tol.score_mean_abs), ("score_std", tol.score_std_abs)):
        delta = abs(current[key] - stored[key])
        if delta > allowed:
            problems.append(
                f"{key}: baseline {stored[key]:.4f}, now {current[key]:.4f} "
                f"(|diff| {delta:.4f} > {allowed})"
            )
    overlap = jaccard(
        ((int(b), int(t)) for b, t in stored["top_observations"]),
        ((int(b), int(t)) for b, t in current["top_observations"]),
        empty=1.0,  # two empty sets agree
    )
    if overlap < tol.min_topk_jaccard:
        problems.append(f"top-k observations: Jaccard {overlap:.3f} < {tol.min_topk_jaccard:.3f}")
    delta = abs(current["mean_return"] - stored["mean_return"])
    if delta > tol.return_abs or math.isnan(delta):
        problems.append(
            f"mean return: baseline {stored['mean_return']:.3f}, now {current['mean_return']:.3f} "
            f"(|diff| {delta:.3f} > {tol.return_abs})"
        )
    return problems


def check_baseline(
    explanation: Explanation,
    path: str | os.PathLike[str],
    *,
    update: bool = False,
    tolerances: BaselineTolerances | None = None,
    evidence: str | os.PathLike[str] | None = None,
) -> None:
    """Compare ``explanation`` with the baseline at ``path`` (see the module docstring)."""
    __tracebackhide__ = True
    target = Path(path)
    current = snapshot(explanation)
    where = f"\nEvidence: {os.fspath(evidence)}" if evidence is not None else ""
    try:
        existed = target.exists()
    except OSError as error:  # a folder on the way that cannot be searched
        raise AssertionError(
            f"dreamer-audit: the baseline {target} cannot be looked up "
            f"({error.strerror or error}); make its folder readable or point "
            "--dreamer-baseline-dir elsewhere"
        ) from None
    if update or not existed:
        try:
            _write(target, current)
        except OSError as error:
            raise AssertionError(
                f"dreamer-audit: cannot write the baseline {target} ({error.strerror or error}); "
                "make its folder writable or point --dreamer-baseline-dir elsewhere"
            ) from None
        then = "then rerun without --dreamer-update-baselines" if update else "then rerun"
        verb = "updated" if existed else "created"
        raise AssertionError(
            f"dreamer-audit: baseline {verb} at {target}; review and commit it, {then}{where}"
        )
    try:
        stored = json.loads(target.read_text())
    except (OSError, ValueError) as error:
        raise AssertionError(
            f"dreamer-audit: baseline {target} is unreadable ({error}); rewrite it with "
            "--dreamer-update-baselines"
        ) from None
    if not isinstance(stored, dict) or stored.get("baseline_version") != BASELINE_VERSION:
        raise AssertionError(
            f"dreamer-audit: baseline {target} has another format version; rewrite it with "
            "--dreamer-update-baselines"
        )
    try:
        problems = _differences(current, stored, tolerances or BaselineTolerances())
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise AssertionError(
            f"dreamer-audit: baseline {target} is malformed ({type(error).__name__}: {error}); "
            "rewrite it with --dreamer-update-baselines"
        ) from None
    if problems:
        raise AssertionError(
            f"dreamer-audit: explanation drifted from the baseline {target}:\n  - "
            + "\n  - ".join(problems)
            + f"\nIf the change is intended, rerun with --dreamer-update-baselines{where}"
        )
