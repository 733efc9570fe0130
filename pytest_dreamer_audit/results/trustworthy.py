"""The default trust checks, numbered, with documented thresholds: what ``assert_trustworthy``
runs and what the report and ``summary.json`` show per check.

Each threshold is justified by the bundled agent's value (``examples/checkpoints/
freeway_pomdp.pth``, 16 x 50, seeds 7100, 7200, 7300) and by the planted models it must fail
(``pytest_dreamer_audit.planted``, measured by ``examples/planted_matrix.py``). Standard
library only, like the metrics it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

from ..errors import ConfigError
from ..jsonvalues import to_json_number
from .values import TrustMetrics

__all__ = ["TRUST_CHECKS", "TrustCheck", "TrustThresholds", "TrustVerdict", "trust_verdicts"]


@dataclass(frozen=True)
class TrustThresholds:
    """The thresholds of the default trust checks (one field per check)."""

    max_relative_error: float = 0.65
    """1. Reconstruction. Bundled agent 0.55-0.56; it catches an NMF whose rank is too low for
    the posteriors, not a bad agent: the untrained network's near-uniform posteriors fit at
    0.02."""
    min_mean_cosine: float = 0.75
    """2. Stability. Bundled agent 0.86-0.89; it catches factors that depend on the NMF's init,
    not a bad agent (the untrained network: 0.85)."""
    max_posterior_sanity: float = 0.3
    """3. Sanity on the posterior (largest ``|rho|`` over the permutation seeds of the
    activation scores). Bundled agent at most 0.16 over 15 (3 rollouts x 5 seeds); the
    screen-reading posterior 1.000."""
    max_memory_spearman: float = 0.9
    """4. The posterior reads its memory (largest ``|rho|`` over shuffles of the deterministic
    state). Bundled agent 0.62-0.74; a posterior that ignores the deterministic state, or reads
    only the screen, 1.000."""
    max_confidence_spearman: float = 0.75
    """5. Not just confidence (signed Spearman with ``||p||_2``). Bundled agent -0.20 (surprise
    score); the reconstruction score, which restates confidence, 0.99."""
    max_deletion_p_value: float = 0.05
    """6. Deletion against permuted actors: the p-value of the trained actor's entry-deletion
    ratio among 19 permuted actors' (smallest possible 0.05: beating every one). The bundled
    agent beat all 39 permuted actors on three rollout seeds; a permuted actor is one of its own
    controls (p uniform), an actor reading the least surprising categoricals 1.0, the untrained
    network 0.2-0.25; undefined (fails) when deleting never changes the policy."""
    max_bottom_ratio: float = 1.0
    """7. The complement: deleting the bottom-ranked entries changes the policy less than
    deleting random ones. Bundled agent 0.00-0.08; the screen-reading double 7-17. Under the
    surprise score it is weak (a bottom-ranked entry's posterior class is usually the prior's,
    so deleting it changes nothing); under the NMF scores the ranking is not the KL."""

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
