"""What the NMF factors have to do with the game: each factor's association with game facts.

An explanation says which observations excite each factor; the game facts recorded with the
rollout (``envs.py``: Freeway's ``chicken_row``, ``car_adjacent``, ``collision``, ...) say what
happened there. Two measures connect them, one per kind of fact:

- **event precision** (a yes/no event such as a collision): for each factor, the fraction of its
  ``k`` most exciting valid observations at which the event holds. Compare it with the event's
  base rate over all valid steps, which is what chance gives.
- **fact Spearman** (a graded fact such as the chicken's row): for each factor, the Spearman
  rank correlation between its activation and the fact over all valid steps.

An observation's activation of factor ``j`` is ``factor_activations[t, b, j]`` (the maximum over
its NMF rows), the same number that picks the factor's dataset examples, so the top-``top_k``
observations here are the factor gallery's examples. :func:`fact_associations` applies the
measure that fits to every fact a game records (the table the reports show). Torch-free: NumPy
and SciPy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import ConfigError
from .explanation import Explanation
from .values import FactAssociation

__all__ = [
    "CATEGORICAL_FACTS",
    "Event",
    "FactAssociation",
    "FactValues",
    "event_mask",
    "fact_associations",
    "fact_values",
    "factor_highlights",
    "factor_event_precision",
    "factor_fact_spearman",
]

Event = str | np.ndarray | Callable[[Explanation], np.ndarray]
"""A yes/no event per step: a fact name (true where non-zero), a ``[L, B]`` array, or a function
of the explanation returning one."""

FactValues = Event
"""A number per step, given the same three ways: a fact name, a ``[L, B]`` array, or a function
of the explanation returning one."""

CATEGORICAL_FACTS = frozenset({"executed_action"})
"""Facts whose values name things (an action index) rather than measure them: no order, so
:func:`fact_associations` splits them into one event per value."""


def _per_step(explanation: Explanation, value: Event, what: str, noun: str) -> np.ndarray:
    if isinstance(value, str):
        array = explanation.fact(value)
    elif callable(value):
        array = np.asarray(value(explanation))
    else:
        array = np.asarray(value)
    if array.shape != explanation.valid.shape:
        raise ConfigError(
            f"{what} must be a [steps, episodes] = {explanation.valid.shape} {noun}, got "
            f"shape {array.shape}"
        )
    return array


def event_mask(explanation: Explanation, event: Event) -> np.ndarray:
    """Resolve an event to a ``[L, B]`` bool mask.

    ``event`` is a fact name (true where the fact is non-zero, e.g. ``"collision"``), a
    ``[L, B]`` array, or a function of the explanation returning one.
    """
    return _per_step(explanation, event, "an event", "mask").astype(bool)


def fact_values(explanation: Explanation, fact: FactValues) -> np.ndarray:
    """Resolve a graded fact to ``[L, B]`` float64 values (a name, an array or a function).

    Raises:
        ConfigError: wrong shape, not numbers, or a NaN or infinity at a valid step (padding
            rows may hold anything).
    """
    values = _per_step(explanation, fact, "a fact", "array")
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise ConfigError(f"a fact must hold numbers, got an array of dtype {values.dtype}")
    values = values.astype(np.float64)
    bad = int((~np.isfinite(values[explanation.valid])).sum())
    if bad:
        raise ConfigError(
            f"a fact must be finite at every valid step, but {bad} valid steps hold NaN or "
            "infinity; fill them, or mark those steps as events instead"
        )
    return values


def _valid_count(explanation: Explanation) -> int:
    return int(explanation.valid.sum())


def factor_event_precision(explanation: Explanation, event: Event, k: int) -> np.ndarray:
    """For each factor, the fraction of its ``k`` most exciting valid observations where
    ``event`` holds.

    Ties in activation are broken by step, then episode (NumPy's stable sort).

    Shape:
        - output: ``[r]`` float64 in [0, 1]

    Raises:
        ConfigError: ``k`` is not in ``1 .. number of valid observations``.
    """
    mask = event_mask(explanation, event)
    return mask[explanation.valid][_top_order(explanation, k)].mean(axis=0)


def _top_order(explanation: Explanation, k: int) -> np.ndarray:
    """Indices into the valid observations (time-major) of each factor's ``k`` most exciting
    ones, ``[k, r]``; ties broken by position (stable sort)."""
    count = _valid_count(explanation)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= count:
        raise ConfigError(
            f"k must be an integer from 1 to {count} (the explanation's valid observations), "
            f"got {k!r}"
        )
    activations = explanation.factor_activations[explanation.valid]  # [n, r]
    return np.argsort(-activations, axis=0, kind="stable")[: int(k)]


def factor_fact_spearman(explanation: Explanation, fact: FactValues) -> np.ndarray:
    """For each factor, the Spearman correlation of its activation with ``fact`` over the valid
    steps; NaN for a factor (or a fact) that is constant there.

    Shape:
        - output: ``[r]`` float64 in [-1, 1] or NaN
    """
    from scipy.stats import spearmanr

    values = fact_values(explanation, fact)[explanation.valid]
    activations = explanation.factor_activations[explanation.valid]
    result = np.full(activations.shape[1], math.nan)
    if len(values) < 2 or np.ptp(values) == 0:
        return result
    for j in range(activations.shape[1]):
        column = activations[:, j]
        if np.ptp(column) == 0:
            continue
        result[j] = float(spearmanr(column, values).statistic)
    return result


def fact_associations(explanation: Explanation, k: int | None = None) -> list[FactAssociation]:
    """Every recorded fact against every factor, with the measure that fits the fact.

    Yes/no facts (only 0 and 1 over the valid steps) get the event precision of each factor's
    top-``k`` observations (``k`` defaults to ``top_k``, the gallery's examples, and is capped at
    the number of valid observations); categorical facts (:data:`CATEGORICAL_FACTS`) one event
    per value, named after the game's actions where the fact is an action; all other facts the
    Spearman correlation. Facts in the order the game records them; none without valid steps.
    """
    count = _valid_count(explanation)
    if count == 0:
        return []
    width = min(explanation.factor_examples.shape[1] if k is None else k, count)
    valid = explanation.valid
    order = _top_order(explanation, width)  # sorted once for every event
    rows: list[FactAssociation] = []

    def event(name: str, mask: np.ndarray) -> FactAssociation:
        hits = mask[valid]
        precision = hits[order].mean(axis=0)
        return FactAssociation(
            name, "event", tuple(map(float, precision)), float(hits.mean()), width
        )

    for name in explanation.fact_names:
        values = explanation.fact(name)
        if name in CATEGORICAL_FACTS:
            labels = explanation.action_names if name == "executed_action" else ()
            for value in np.unique(values[valid]):
                label = labels[value] if 0 <= value < len(labels) else str(value)
                rows.append(event(f"{name}={label}", values == value))
        elif set(np.unique(values[valid]).tolist()) <= {0, 1}:
            rows.append(event(name, values != 0))
        else:
            rho = factor_fact_spearman(explanation, values)
            rows.append(FactAssociation(name, "graded", tuple(map(float, rho)), math.nan, 0))
    return rows


def factor_highlights(
    associations: list[FactAssociation], factor: int
) -> tuple[FactAssociation | None, FactAssociation | None]:
    """What to say about one factor: the event its top observations beat chance at by the
    widest margin (precision minus base rate, None if none beats it), and the graded fact it
    correlates with most strongly (largest ``|rho|``, None if none is defined)."""

    for row in associations:
        if not 0 <= factor < len(row.per_factor):
            raise ConfigError(
                f"factor {factor} is out of range: {row.name!r} has values for factors 0 to "
                f"{len(row.per_factor) - 1}"
            )

    def margin(row: FactAssociation) -> float:
        return row.per_factor[factor] - row.base_rate

    events = [
        row
        for row in associations
        if row.kind == "event" and not math.isnan(row.per_factor[factor]) and margin(row) > 0
    ]
    graded = [
        row
        for row in associations
        if row.kind == "graded" and not math.isnan(row.per_factor[factor])
    ]
    event = max(events, key=margin, default=None)
    fact = max(graded, key=lambda row: abs(row.per_factor[factor]), default=None)
    return event, fact
