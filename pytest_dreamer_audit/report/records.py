"""What a report knows about one explanation a test used, typed, with its JSON form.

Standard library only (the plugin's hooks import it on every pytest run). A record travels from
an xdist worker to the controller as JSON in ``report.user_properties``: :meth:`AuditRecord.
to_json` on the worker, :meth:`AuditRecord.from_json` on the controller, typed everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..jsonvalues import from_json_number, to_json_number
from ..results.values import (
    CurveSet,
    FactAssociation,
    FactorStatus,
    ProbeRow,
    RandomizationStage,
    ScoreAssociation,
    TrustMetrics,
)
from .numbers import format_number

__all__ = ["HEADLINE", "METRIC_NOTES", "METRIC_SIDES", "PROPERTY", "AuditRecord", "wrong_side"]

PROPERTY = "dreamer_audit"
"""Name of the user property that carries an audit's record to the controller."""

HEADLINE = (
    "mean_return",
    "relative_error",
    "explained_variance",
    "stability_mean_cosine",
    "stability_min_cosine",
    "stability_topk_jaccard",
    "confidence_spearman",
    "sanity_spearman",
    "sanity_entropy",
    "deletion_ratio",
)
"""The metrics every report shows, in order (``mean_return`` and the trust metrics)."""

METRIC_NOTES: dict[str, str] = {
    "mean_return": "mean episode return over the audited rollouts (steps may truncate them)",
    "relative_error": "||X - AD||_F / ||X||_F; 0 is a perfect fit",
    "explained_variance": "1 is a perfect fit",
    "iterations": "NMF iterations run",
    "stability_mean_cosine": "prototypes of refits from random inits, matched: mean cosine",
    "stability_min_cosine": "the same: worst matched factor",
    "stability_topk_jaccard": "overlap of the top-k observations across refits (n/a: surprise)",
    "confidence_spearman": "score vs ||p||_2; near 1 means the score only restates confidence",
    "sanity_spearman": "vs the same network with its posterior layers permuted; should be low",
    "posterior_entropy": "mean entropy of the trained posteriors' categoricals (nats)",
    "sanity_entropy": (
        "the same for the permuted network (on the trust checks' episodes): not ln K, so not "
        "uniform noise"
    ),
    "deletion_topk": "policy change (TV) when the top-k posteriors are replaced by the prior",
    "deletion_random": "the same for random valid steps",
    "deletion_ratio": "top-k / random; > 1: the explanation points at states the policy uses",
    "sanity_posterior_max_abs": "|rho| of posterior activation scores vs permuted weights: worst",
    "sanity_posterior_mean_abs": "the same: mean over the permutation seeds",
    "sanity_posterior_std": "the same: standard deviation over the seeds",
    "memory_max_abs": "|rho| vs the posterior fed other steps' memory; 1: it ignores it",
    "memory_mean_abs": "the same: mean over the shuffles",
    "deletion_entry_ratio": "policy change deleting the top-ranked entries / random entries",
    "deletion_control_median": "the same ratio for permuted actors: median",
    "deletion_control_max": "the same ratio for permuted actors: maximum",
    "deletion_p_value": "trained ratio among the permuted actors'; small: beyond them",
    "deletion_bottom_ratio": "bottom-ranked entries / random; < 1: they matter less",
    "reward_correlation": "reward head's prediction vs the reward received (Pearson); near 1: "
    "the head means what it says (n/a: no rewards in the rollouts)",
}
"""What each metric means, in a line (the reports' "meaning" column)."""

METRIC_SIDES: dict[str, tuple[str, float]] = {
    "deletion_ratio": (">", 1.0),
    "deletion_entry_ratio": (">", 1.0),
    "deletion_bottom_ratio": ("<", 1.0),
}
"""The metrics whose meaning names a side of a number (``> 1: the explanation points at states
the policy uses``): the side the meaning asks for and the number."""


def wrong_side(name: str, value: float, *, brief: bool = False) -> str:
    """Why ``value`` contradicts the meaning of metric ``name`` (``"deletion_ratio 0.39 is not
    > 1: on the wrong side of its meaning (top-k / random; > 1: ...)"``; ``brief``: without the
    meaning in parentheses), or ``""`` when it does not (or has no side, or was not computed).

    Example:
        >>> wrong_side("deletion_ratio", 0.39, brief=True)
        'deletion_ratio 0.39 is not > 1: on the wrong side of its meaning'
        >>> wrong_side("deletion_ratio", 1.7), wrong_side("relative_error", 0.9)
        ('', '')
    """
    if name not in METRIC_SIDES or math.isnan(value):
        return ""
    side, bound = METRIC_SIDES[name]
    if (value > bound) if side == ">" else (value < bound):
        return ""
    reason = (
        f"{name} {format_number(value)} is not {side} {bound:g}: on the wrong side of its meaning"
    )
    return reason if brief else f"{reason} ({METRIC_NOTES[name]})"


@dataclass(frozen=True)
class AuditRecord:
    """One explanation a test used, as the reports show it.

    Attributes:
        checkpoint: path of the audited checkpoint. label: its short name.
        key: the explanation's cache key (identifies checkpoint and settings).
        game: the game. settings: the audit settings as plain values (field -> value; the
            report layer reads them, the plugin owns them).
        metrics: the trust metrics. mean_return: the rollouts' mean return.
        images: PNG paths (in the cache entry) with a caption each.
        factor_facts: each game fact against each factor (one row of the report's table each).
        factor_status: whether each factor may claim, and why not.
        score_facts: the score's top observations against each event.
        randomization: the model parameter randomization stages.
        probes: each game fact probed from the latents and their controls.
        curves: the deletion and insertion curves of every head.
    """

    checkpoint: str
    label: str
    key: str
    game: str
    settings: Mapping[str, Any]
    metrics: TrustMetrics
    mean_return: float
    images: tuple[tuple[str, str], ...]
    factor_facts: tuple[FactAssociation, ...] = ()
    factor_status: tuple[FactorStatus, ...] = ()
    score_facts: tuple[ScoreAssociation, ...] = ()
    randomization: tuple[RandomizationStage, ...] = ()
    probes: tuple[ProbeRow, ...] = ()
    curves: tuple[CurveSet, ...] = ()

    def __post_init__(self) -> None:
        # plain JSON values, so that a record read back from JSON equals the one written
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in self.settings.items()}
        object.__setattr__(self, "settings", plain)

    def metric(self, name: str) -> float:
        """A headline metric by name (``mean_return`` or a :class:`TrustMetrics` field)."""
        if name == "mean_return":
            return self.mean_return
        return float(getattr(self.metrics, name))

    @property
    def settings_label(self) -> str:
        """``activation score, pooled layout, rank 10, 16x50``."""
        s = self.settings
        return (
            f"{s['score']} score, {s['layout']} layout, rank {s['rank']}, "
            f"{s['episodes']}x{s['steps']}"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain values (NaN as None), without the image paths: ``summary.json``'s entries."""
        return {
            "checkpoint": self.checkpoint,
            "label": self.label,
            "key": self.key,
            "game": self.game,
            "settings": dict(self.settings),
            "metrics": {"mean_return": to_json_number(self.mean_return), **self.metrics.to_json()},
            "factor_facts": [row.to_json() for row in self.factor_facts],
            "factor_status": [row.to_json() for row in self.factor_status],
            "score_facts": [row.to_json() for row in self.score_facts],
            "randomization": [row.to_json() for row in self.randomization],
            "probes": [row.to_json() for row in self.probes],
            "curves": [curve.to_json() for curve in self.curves],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        """The inverse of :meth:`to_json` (no images); KeyError, TypeError or ValueError if
        malformed."""
        metrics = dict(data["metrics"])
        mean_return = from_json_number(metrics.pop("mean_return"))
        settings = data["settings"]
        if not isinstance(settings, Mapping) or not all(isinstance(k, str) for k in settings):
            raise TypeError("settings must be an object of named values")
        missing = sorted({"score", "layout", "rank", "episodes", "steps"} - set(settings))
        if missing:
            raise ValueError(f"settings {missing} missing")
        return cls(
            checkpoint=str(data["checkpoint"]),
            label=str(data["label"]),
            key=str(data["key"]),
            game=str(data["game"]),
            settings=dict(settings),
            metrics=TrustMetrics.from_json(metrics),
            mean_return=mean_return,
            images=(),
            factor_facts=tuple(FactAssociation.from_json(row) for row in data["factor_facts"]),
            factor_status=tuple(FactorStatus.from_json(row) for row in data["factor_status"]),
            score_facts=tuple(ScoreAssociation.from_json(row) for row in data["score_facts"]),
            randomization=tuple(RandomizationStage.from_json(row) for row in data["randomization"]),
            probes=tuple(ProbeRow.from_json(row) for row in data["probes"]),
            curves=tuple(CurveSet.from_json(curve) for curve in data["curves"]),
        )


@dataclass(frozen=True)
class Check:
    """One assertion a test made through :class:`~pytest_dreamer_audit.plugin.audit_object.
    DreamerAudit`, as the report lists it.

    Attributes:
        assertion: its name and arguments (``assert_mean_return(min_return=0.25)``).
        passed: whether it held. outcome: the measured value it returned, or its failure
            message (which gives the value, the threshold and the null).
    """

    assertion: str
    passed: bool
    outcome: str
