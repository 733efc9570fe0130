"""Saliency assertions: turn an explanation's numbers into pass/fail checks.

Every helper raises ``AssertionError`` with the measured number, the threshold and, when given,
the path of the rendered evidence, and returns the measured value when it passes. Torch-free:
they read the plain arrays of an :class:`~pytest_dreamer_audit.results.explanation.Explanation`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple, NoReturn

import numpy as np

from ..errors import ConfigError
from .explanation import Explanation
from .semantics import (
    Event,
    FactValues,
    event_mask,
    factor_event_precision,
    factor_fact_spearman,
)

__all__ = [
    "Event",
    "FactorMatch",
    "assert_action_fractions",
    "assert_deletion_beats_random",
    "assert_differs_from_random_weights",
    "assert_factors_stable",
    "assert_mean_return",
    "assert_not_just_confidence",
    "assert_reconstruction",
    "assert_some_factor_coincides",
    "assert_some_factor_tracks",
    "assert_top_observations_coincide",
    "event_mask",
]

Evidence = str | os.PathLike[str] | None


def _fail(message: str, evidence: Evidence) -> NoReturn:
    __tracebackhide__ = True
    where = f"\nEvidence: {os.fspath(evidence)}" if evidence is not None else ""
    raise AssertionError(f"dreamer-audit: {message}{where}")


def _metric(explanation: Explanation, name: str, why_missing: str, evidence: Evidence) -> float:
    __tracebackhide__ = True
    value = float(getattr(explanation.metrics, name))
    if math.isnan(value):
        _fail(f"{name} was not computed ({why_missing})", evidence)
    return value


class FactorMatch(NamedTuple):
    """The factor that best meets a semantic assertion, and its measured value."""

    factor: int
    value: float


def _base_rate(explanation: Explanation, mask: np.ndarray) -> float:
    """The fraction of valid steps where ``mask`` holds: what picking at random would reach."""
    return float(mask[explanation.valid].mean()) if explanation.valid.any() else 0.0


def _describe(event: Event) -> str:
    if isinstance(event, str):
        return repr(event)
    return getattr(event, "__name__", "the event")


def assert_top_observations_coincide(
    explanation: Explanation,
    event: Event,
    *,
    min_precision: float,
    k: int | None = None,
    evidence: Evidence = None,
) -> float:
    """The top-k observations of the rollouts coincide with ``event`` often enough.

    Precision is the fraction of all rollouts' top-k picks at which the event holds. The
    message also gives the event's base rate over all valid steps, i.e. what chance would give.
    """
    __tracebackhide__ = True
    mask = event_mask(explanation, event)
    top = explanation.top_observations
    width = top.shape[1] if k is None else k
    if not 1 <= width <= top.shape[1]:
        raise ConfigError(f"k must be in 1..{top.shape[1]} (the explanation's top_k), got {k}")
    picks = [(int(t), b) for b, row in enumerate(top[:, :width]) for t in row if t >= 0]
    hits = sum(bool(mask[t, b]) for t, b in picks)
    precision = hits / len(picks) if picks else 0.0
    base = _base_rate(explanation, mask)
    if precision < min_precision:
        _fail(
            f"top-{width} observations coincide with {_describe(event)} in {precision:.1%} of "
            f"{len(picks)} picks over {explanation.episodes} rollouts, below the required "
            f"{min_precision:.1%} (base rate over all valid steps: {base:.1%})",
            evidence,
        )
    return precision


def _per_factor(values: np.ndarray, percent: bool) -> str:
    def one(value: float) -> str:
        if math.isnan(value):
            return "n/a"
        return f"{value:.1%}" if percent else f"{value:+.3f}"

    return ", ".join(f"{j}: {one(float(v))}" for j, v in enumerate(values))


def assert_some_factor_coincides(
    explanation: Explanation,
    event: Event,
    *,
    min_precision: float,
    k: int | None = None,
    evidence: Evidence = None,
) -> FactorMatch:
    """Some factor's ``k`` most exciting observations coincide with ``event`` often enough.

    ``k`` defaults to the explanation's ``top_k``: the observations of the factor gallery.
    Precision per factor is defined in ``semantics.py``; the message lists it for every factor
    next to the event's base rate over all valid steps (what chance would give).

    Returns:
        The best factor and its precision.
    """
    __tracebackhide__ = True
    width = explanation.factor_examples.shape[1] if k is None else k
    mask = event_mask(explanation, event)
    precision = factor_event_precision(explanation, mask, width)
    best = int(np.argmax(precision))
    base = _base_rate(explanation, mask)
    if precision[best] < min_precision:
        _fail(
            f"no factor's top-{width} observations coincide with {_describe(event)} often "
            f"enough: the best, factor {best}, in {precision[best]:.1%}, below the required "
            f"{min_precision:.1%} (base rate over all valid steps: {base:.1%}; per factor: "
            f"{_per_factor(precision, percent=True)})",
            evidence,
        )
    return FactorMatch(best, float(precision[best]))


def assert_some_factor_tracks(
    explanation: Explanation,
    fact: FactValues,
    *,
    min_abs_spearman: float,
    evidence: Evidence = None,
) -> FactorMatch:
    """Some factor's activation rises or falls with ``fact`` (e.g. Freeway's ``chicken_row``).

    The measure is the Spearman correlation over valid steps (``semantics.py``); the factor with
    the largest ``|rho|`` must reach ``min_abs_spearman``.

    Returns:
        The best factor and its (signed) correlation.
    """
    __tracebackhide__ = True
    rho = factor_fact_spearman(explanation, fact)
    if np.isnan(rho).all():
        _fail(
            f"{_describe(fact)} or every factor's activation is constant over the valid steps, "
            "so no factor can track it",
            evidence,
        )
    best = int(np.nanargmax(np.abs(rho)))
    if abs(rho[best]) < min_abs_spearman:
        _fail(
            f"no factor tracks {_describe(fact)}: the best, factor {best}, has Spearman "
            f"{rho[best]:+.3f}, below the required |rho| >= {min_abs_spearman:.3f} (per factor: "
            f"{_per_factor(rho, percent=False)})",
            evidence,
        )
    return FactorMatch(best, float(rho[best]))


def assert_factors_stable(
    explanation: Explanation,
    *,
    min_cosine: float | None = None,
    min_mean_cosine: float | None = None,
    min_topk_jaccard: float | None = None,
    evidence: Evidence = None,
) -> None:
    """Factors and top-k sets survive refitting the NMF from other random inits."""
    __tracebackhide__ = True
    why = "stability_refits is 0; set --dreamer-stability-refits >= 1"
    checks = (
        ("stability_min_cosine", min_cosine, "minimum matched prototype cosine"),
        ("stability_mean_cosine", min_mean_cosine, "mean matched prototype cosine"),
        ("stability_topk_jaccard", min_topk_jaccard, "top-k Jaccard overlap across NMF seeds"),
    )
    for name, threshold, label in checks:
        if threshold is None:
            continue
        value = _metric(explanation, name, why, evidence)
        if value < threshold:
            _fail(f"{label} is {value:.3f}, below the required {threshold:.3f}", evidence)


def assert_differs_from_random_weights(
    explanation: Explanation, *, max_spearman: float, evidence: Evidence = None
) -> float:
    """Sanity check: scores of the trained agent are not those of random weights."""
    __tracebackhide__ = True
    value = _metric(
        explanation,
        "sanity_spearman",
        "the explanation was made without the agent, or the scores of the trained or the "
        "randomized agent are constant (a Spearman correlation is undefined then)",
        evidence,
    )
    if value > max_spearman:
        _fail(
            f"observation scores correlate with those of randomized weights at Spearman "
            f"{value:.3f}, above the allowed {max_spearman:.3f}: the explanation may reflect the "
            "inputs rather than what the agent learned",
            evidence,
        )
    return value


def assert_not_just_confidence(
    explanation: Explanation, *, max_spearman: float, evidence: Evidence = None
) -> float:
    """The score says more than the categoricals' confidence ``||p||_2``."""
    __tracebackhide__ = True
    value = _metric(explanation, "confidence_spearman", "too few rows", evidence)
    if value > max_spearman:
        _fail(
            f"row scores correlate with plain confidence ||p||_2 at Spearman {value:.3f}, above "
            f"the allowed {max_spearman:.3f}",
            evidence,
        )
    return value


def assert_reconstruction(
    explanation: Explanation,
    *,
    max_relative_error: float | None = None,
    min_explained_variance: float | None = None,
    evidence: Evidence = None,
) -> None:
    """The NMF reproduces the posteriors well enough for its factors to mean something."""
    __tracebackhide__ = True
    m = explanation.metrics
    if max_relative_error is not None and m.relative_error > max_relative_error:
        _fail(
            f"NMF relative reconstruction error is {m.relative_error:.4f}, above the allowed "
            f"{max_relative_error:.4f} (rank {explanation.rank})",
            evidence,
        )
    if min_explained_variance is not None and m.explained_variance < min_explained_variance:
        _fail(
            f"NMF explained variance is {m.explained_variance:.4f}, below the required "
            f"{min_explained_variance:.4f} (rank {explanation.rank})",
            evidence,
        )


def assert_deletion_beats_random(
    explanation: Explanation, *, min_ratio: float = 1.0, evidence: Evidence = None
) -> float:
    """Deleting the top-k posteriors moves the policy more than deleting random ones."""
    __tracebackhide__ = True
    why = "the explanation was made without the agent, or deleting never changes the policy"
    ratio = _metric(explanation, "deletion_ratio", why, evidence)
    if ratio < min_ratio:
        m = explanation.metrics
        _fail(
            f"deleting the top-k posteriors changes the action distribution by "
            f"{m.deletion_topk:.4f} (total variation), {ratio:.2f}x the {m.deletion_random:.4f} "
            f"of random steps; at least {min_ratio:.2f}x is required",
            evidence,
        )
    return ratio


def assert_mean_return(
    explanation: Explanation, *, at_least: float, evidence: Evidence = None
) -> float:
    """The mean return over the audited rollouts (which may be truncated at ``steps``)."""
    __tracebackhide__ = True
    returns = explanation.returns
    mean = float(returns.mean())
    if mean < at_least:
        _fail(
            f"mean return is {mean:.3f} (std {float(returns.std()):.3f} over "
            f"{explanation.episodes} episodes of up to {explanation.steps} steps), below the "
            f"required {at_least:.3f}",
            evidence,
        )
    return mean


def assert_action_fractions(
    explanation: Explanation,
    *,
    at_least: Mapping[str, float] | None = None,
    at_most: Mapping[str, float] | None = None,
    evidence: Evidence = None,
) -> dict[str, float]:
    """Constrain how often each action (by name, e.g. ``"up"``) is chosen on valid steps."""
    __tracebackhide__ = True
    names = explanation.action_names
    chosen = explanation.actions[explanation.valid]
    fractions = {name: float((chosen == i).mean()) for i, name in enumerate(names)}
    bounds: dict[str, Any] = {**(at_least or {}), **(at_most or {})}
    unknown = sorted(set(bounds) - set(names))
    if unknown:
        raise ConfigError(f"unknown actions {unknown}; {explanation.game} has {list(names)}")
    for name, low in (at_least or {}).items():
        if fractions[name] < low:
            _fail(
                f"action {name!r} is chosen {fractions[name]:.1%} of steps, below {low:.1%}; "
                f"all fractions: {_percentages(fractions)}",
                evidence,
            )
    for name, high in (at_most or {}).items():
        if fractions[name] > high:
            _fail(
                f"action {name!r} is chosen {fractions[name]:.1%} of steps, above {high:.1%}; "
                f"all fractions: {_percentages(fractions)}",
                evidence,
            )
    return fractions


def _percentages(fractions: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.1%}" for name, value in fractions.items())
