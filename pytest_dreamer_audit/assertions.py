"""Saliency assertions: turn an explanation's numbers into pass/fail checks.

Every helper raises ``AssertionError`` with the measured number, the threshold and, when given,
the path of the rendered evidence, and returns the measured value when it passes. Torch-free:
they read the plain arrays of an :class:`~pytest_dreamer_audit.explanation.Explanation`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import ConfigError
from .explanation import Explanation

__all__ = [
    "assert_action_fractions",
    "assert_deletion_beats_random",
    "assert_differs_from_random_weights",
    "assert_factors_stable",
    "assert_mean_return",
    "assert_not_just_confidence",
    "assert_reconstruction",
    "assert_top_observations_coincide",
    "event_mask",
]

Evidence = str | os.PathLike[str] | None
Event = str | np.ndarray | Callable[[Explanation], np.ndarray]


def _fail(message: str, evidence: Evidence) -> None:
    __tracebackhide__ = True
    where = f"\nEvidence: {os.fspath(evidence)}" if evidence is not None else ""
    raise AssertionError(f"dreamer-audit: {message}{where}")


def _metric(explanation: Explanation, name: str, why_missing: str, evidence: Evidence) -> float:
    __tracebackhide__ = True
    value = float(getattr(explanation.metrics, name))
    if math.isnan(value):
        _fail(f"{name} was not computed ({why_missing})", evidence)
    return value


def event_mask(explanation: Explanation, event: Event) -> np.ndarray:
    """Resolve an event to a ``[L, B]`` bool mask.

    ``event`` is a fact name (true where the fact is non-zero, e.g. ``"collision"``), a
    ``[L, B]`` array, or a function of the explanation returning one.
    """
    if isinstance(event, str):
        mask = explanation.fact(event) != 0
    elif callable(event):
        mask = np.asarray(event(explanation))
    else:
        mask = np.asarray(event)
    if mask.shape != explanation.valid.shape:
        raise ConfigError(
            f"an event must be a [steps, episodes] = {explanation.valid.shape} mask, got "
            f"shape {mask.shape}"
        )
    return mask.astype(bool)


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
    base = float(mask[explanation.valid].mean()) if explanation.valid.any() else 0.0
    if precision < min_precision:
        _fail(
            f"top-{width} observations coincide with {_describe(event)} in {precision:.1%} of "
            f"{len(picks)} picks over {explanation.episodes} rollouts, below the required "
            f"{min_precision:.1%} (base rate over all valid steps: {base:.1%})",
            evidence,
        )
    return precision


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
        explanation, "sanity_spearman", "the explanation was made without the agent", evidence
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
