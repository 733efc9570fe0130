"""The default trust checks, numbered, with documented thresholds: what ``assert_trustworthy``
runs and what the report and ``summary.json`` show per check.

Each threshold is justified by the bundled agent's value (``examples/checkpoints/
freeway_pomdp.pth``, 16 x 50, seeds 7100, 7200, 7300, 7400) and by the planted models it fails
(``pytest_dreamer_audit.planted``, measured by ``research/planted_matrix.py``). Standard
library only, like the metrics it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

from ..errors import ConfigError
from ..jsonvalues import to_json_number
from .values import TrustMetrics

__all__ = [
    "REPLAYING_CHECKS",
    "TRUST_CHECKS",
    "TrustCheck",
    "TrustThresholds",
    "TrustVerdict",
    "sample_label",
    "trust_verdicts",
]


@dataclass(frozen=True)
class TrustThresholds:
    """The thresholds of the default trust checks (one field per check)."""

    max_relative_error: float = 0.65
    """1. Reconstruction. Bundled agent 0.554-0.560. It catches an NMF whose rank is too low
    for the posteriors (a fit, not an agent, property): the untrained network's near-uniform
    posteriors fit at 0.016-0.019 and pass; only the screen-reading double (0.692) fails it."""
    min_mean_cosine: float = 0.75
    """2. Stability. Bundled agent 0.886-0.938. It catches factors that depend on the NMF's
    init, not a bad agent: the untrained network passes (0.848-0.862), the screen-reading
    double fails (0.535-0.594)."""
    max_posterior_sanity: float = 0.3
    """3. Sanity on the posterior: the largest ``|rho|`` over 5 permutation seeds of the
    activation scores of the trained and the randomized posteriors (no prior enters them).
    Bundled agent 0.141-0.194 (mean over the seeds 0.094-0.145, standard deviation 0.026-
    0.047); the screen-reading double 1.000 (or a constant score, which fails too)."""
    max_memory_spearman: float = 0.9
    """4. The posterior reads its memory: the largest ``|rho|`` over 3 shuffles of the
    deterministic states. Bundled agent 0.62-0.71; a posterior that ignores the deterministic
    state, and the screen-reading double, 1.000."""
    max_confidence_spearman: float = 0.75
    """5. Not just confidence (signed Spearman with ``||p||_2``). Bundled agent -0.195 to
    -0.205 (surprise score); the reconstruction score, which restates confidence, 0.97 on a
    tiny agent (``tests/test_trustworthy.py``). No planted weight edit fails it."""
    max_deletion_p_value: float = 0.05
    """6. Deletion against permuted actors: the p-value of the trained actor's entry-deletion
    ratio among 19 permuted actors' (0.05, its smallest value, is beating every one). Bundled
    agent 0.05 on 4 rollout seeds (ratio 3.74-6.14 against a permuted maximum of 3.26-3.54);
    the permuted actor 0.10-0.70, the untrained network 0.45-0.80, the actor reading the least
    surprising categoricals 1.0; undefined (fails) when deleting never changes the policy."""
    max_bottom_ratio: float = 1.0
    """7. The complement: deleting the bottom-ranked entries changes the policy less than
    deleting random ones. Bundled agent 0.000-0.029; the screen-reading double 2.16, the
    untrained network 0.92-1.38. Weak under the surprise score (a bottom-ranked entry's
    posterior class is usually the prior's, so deleting it changes little for any actor);
    under the NMF scores the ranking is not the KL."""

    min_reward_correlation: float = 0.5
    """8. The reward head predicts the rollouts' rewards (Pearson). Bundled agent 1.000 (6-8
    scoring events per 16 x 50); the reward head that reads one categorical 0.16-0.22; the
    untrained network never scores in 50 steps (undefined, fails). It checks the world model
    the explanation is made of, not the explanation: audit rollouts without a reward cannot
    pass it."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise ConfigError(f"TrustThresholds.{f.name} must be a number, got {value!r}")


class TrustCheck(NamedTuple):
    """One default check: its number, name, the metric it reads and the threshold's field."""

    number: int
    name: str
    metric: str
    threshold: str
    direction: Literal["max", "min"]


TRUST_CHECKS: tuple[TrustCheck, ...] = (
    TrustCheck(1, "reconstruction", "relative_error", "max_relative_error", "max"),
    TrustCheck(2, "stability", "stability_mean_cosine", "min_mean_cosine", "min"),
    TrustCheck(3, "posterior sanity", "sanity_posterior_max_abs", "max_posterior_sanity", "max"),
    TrustCheck(4, "posterior reads memory", "memory_max_abs", "max_memory_spearman", "max"),
    TrustCheck(5, "not just confidence", "confidence_spearman", "max_confidence_spearman", "max"),
    TrustCheck(6, "deletion vs permuted actors", "deletion_p_value", "max_deletion_p_value", "max"),
    TrustCheck(
        7, "bottom deletion below random", "deletion_bottom_ratio", "max_bottom_ratio", "max"
    ),
    TrustCheck(8, "reward head predicts", "reward_correlation", "min_reward_correlation", "min"),
)
"""The default trust checks, in the order they are numbered and reported."""


class TrustVerdict(NamedTuple):
    """One check's outcome: the check, what it measured, its threshold, whether it passed (a
    value that could not be computed, NaN, fails)."""

    check: TrustCheck
    value: float
    threshold: float
    passed: bool

    def describe(self) -> str:
        """``"6. deletion vs permuted actors: deletion_p_value 0.35 > 0.05"``-like line."""
        c = self.check
        relation = "<=" if c.direction == "max" else ">="
        if math.isnan(self.value):
            shown = "not computed"
        else:
            shown = f"{self.value:.4g} {relation if self.passed else _negated(relation)} "
            shown += f"{self.threshold:.4g}"
        return f"{c.number}. {c.name}: {c.metric} {shown}"

    def to_json(self) -> dict[str, Any]:
        """Plain values for ``summary.json`` (NaN written as None)."""
        return {
            "number": self.check.number,
            "name": self.check.name,
            "metric": self.check.metric,
            "value": to_json_number(self.value),
            "threshold": self.threshold,
            "direction": self.check.direction,
            "passed": self.passed,
        }


def _negated(relation: str) -> str:
    return ">" if relation == "<=" else "<"


REPLAYING_CHECKS = (3, 4, 6, 7)
"""The checks that replay the rollouts or permute the actor: they run on the first
``ExplainConfig.trust_episodes`` episodes with a step to explain (16 by default, the size of
the thresholds' calibration)."""


def sample_label(used: int, episodes: int) -> str:
    """Which episodes :data:`REPLAYING_CHECKS` ran on, as the reports say it (with them the
    randomization stages, whose entropies and Spearmans are of the same episodes)."""
    share = f"all {episodes}" if used >= episodes else f"the first {used} of {episodes}"
    numbers = ", ".join(map(str, REPLAYING_CHECKS[:-1])) + f" and {REPLAYING_CHECKS[-1]}"
    return f"checks {numbers} and the randomization stages on {share} episodes"


def trust_verdicts(
    metrics: TrustMetrics, thresholds: TrustThresholds | None = None
) -> tuple[TrustVerdict, ...]:
    """Every default check's verdict on ``metrics``, in :data:`TRUST_CHECKS` order."""
    thresholds = thresholds or TrustThresholds()
    verdicts = []
    for check in TRUST_CHECKS:
        value = float(getattr(metrics, check.metric))
        bound = float(getattr(thresholds, check.threshold))
        within = value <= bound if check.direction == "max" else value >= bound
        verdicts.append(TrustVerdict(check, value, bound, not math.isnan(value) and within))
    return tuple(verdicts)
