"""The plain-value results that cross process and file boundaries: the trust metrics of an
explanation and what each factor has to do with each game fact.

Standard library only: the plugin's report hooks (imported on every pytest run) and the xdist
controller read them without NumPy or torch. Each has ``to_json`` / ``from_json`` for the edge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from ..jsonvalues import from_json_number, to_json_number

__all__ = ["FactAssociation", "TrustMetrics"]


@dataclass(frozen=True)
class TrustMetrics:
    """How far to trust an explanation; each is a number an assertion can test.

    Attributes:
        relative_error: ``||X - A D||_F / ||X||_F`` (0 is a perfect fit).
        explained_variance: ``1 - ||X - A D||_F^2 / ||X - column means||_F^2`` (1 is perfect).
        iterations: NMF iterations run.
        stability_mean_cosine, stability_min_cosine: prototypes of refits from random inits,
            matched to the main fit's by the Hungarian algorithm on cosine similarity: mean and
            minimum matched cosine (1 = the same factors). NaN when no refits were asked for.
        stability_topk_jaccard: mean Jaccard overlap of the top-k observation sets (all
            rollouts together) between the main fit and each refit.
        confidence_spearman: Spearman correlation of the row scores with the rows' L2 norm
            ``||p||_2`` (the categorical's confidence); near 1 means the score only restates
            confidence.
        sanity_spearman: Spearman correlation, over valid observations, of the observation scores
            with those of the same architecture with random weights fed the same observations and
            actions (Adebayo et al. 2018); should be well below the stability values. NaN without
            an agent.
        deletion_topk, deletion_random: mean total-variation change of the actor's action
            distribution when an observation's posterior state is replaced by the prior's
            (mode of each categorical), over the top-k observations and over all valid ones (the
            expectation for k random ones). deletion_ratio = topk / random (> 1: the explanation
            points at states the policy depends on). NaN without an agent.
    """

    relative_error: float
    explained_variance: float
    iterations: int
    stability_mean_cosine: float = math.nan
    stability_min_cosine: float = math.nan
    stability_topk_jaccard: float = math.nan
    confidence_spearman: float = math.nan
    sanity_spearman: float = math.nan
    deletion_topk: float = math.nan
    deletion_random: float = math.nan
    deletion_ratio: float = math.nan

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {f.name: to_json_number(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrustMetrics:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown metrics {unknown}")
        iterations = data["iterations"]
        if type(iterations) is not int:
            raise TypeError(f"iterations must be an integer, got {iterations!r}")
        values: dict[str, Any] = {
            name: from_json_number(data.get(name)) for name in names - {"iterations"}
        }
        values["relative_error"] = from_json_number(data["relative_error"])
        values["explained_variance"] = from_json_number(data["explained_variance"])
        return cls(iterations=iterations, **values)


@dataclass(frozen=True)
class FactAssociation:
    """How one game fact relates to each factor.

    Attributes:
        name: the fact (``"collision"``), or one value of a categorical fact
            (``"executed_action=up"``).
        kind: ``"event"`` (a yes/no fact: ``per_factor`` is the precision of each factor's
            top-``k`` observations) or ``"graded"`` (``per_factor`` is each factor's Spearman).
        per_factor: ``[r]`` values, NaN where undefined.
        base_rate: events: the fraction of valid steps where the event holds (what a factor
            picking at random would reach); graded facts: NaN.
        k: the number of observations per factor behind an event's precision (0 for graded).
    """

    name: str
    kind: Literal["event", "graded"]
    per_factor: tuple[float, ...]
    base_rate: float
    k: int

    @property
    def best_factor(self) -> int:
        """The factor with the highest precision (events) or ``|rho|`` (graded); -1 if none."""
        ranked = [abs(v) if self.kind == "graded" else v for v in self.per_factor]
        defined = [j for j, v in enumerate(ranked) if not math.isnan(v)]
        return max(defined, key=lambda j: ranked[j], default=-1)

    @property
    def beats_chance(self) -> bool:
        """Whether the best factor is above the base rate (events) or defined (graded)."""
        best = self.best_factor
        if best < 0:
            return False
        chance = 0.0 if math.isnan(self.base_rate) else self.base_rate
        return self.kind == "graded" or self.per_factor[best] > chance

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {
            "name": self.name,
            "kind": self.kind,
            "per_factor": [to_json_number(float(v)) for v in self.per_factor],
            "base_rate": to_json_number(float(self.base_rate)),
            "k": self.k,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FactAssociation:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        kind = data["kind"]
        if kind not in ("event", "graded"):
            raise ValueError(f"kind must be 'event' or 'graded', got {kind!r}")
        return cls(
            name=str(data["name"]),
            kind=kind,
            per_factor=tuple(from_json_number(v) for v in data["per_factor"]),
            base_rate=from_json_number(data["base_rate"]),
            k=int(data["k"]),
        )
