"""What the NMF factors have to do with the game, and which of it beats chance.

An explanation says which observations excite each factor; the game facts recorded with the
rollout (``rollout/envs.py``, aligned by ``results/facts.py``) say what happened there. Two
measures connect them, one per kind of fact:

- **event precision** (a yes/no event such as a visible collision): for each factor, the
  fraction of its ``k`` most exciting analysed observations at which the event holds (picks:
  ``results/picks.py``). Picks unrelated to the event reach the event's base rate on average.
- **fact Spearman** (a graded fact such as the chicken's row): for each factor, the Spearman
  rank correlation between its activation and the fact over the analysed steps.

Every value comes with its null (``results/nulls.py``: circular time shifts of the fact within
each episode, maxT over the factors, Holm over the facts of a table) and only what beats it at
the :class:`~pytest_dreamer_audit.results.config.ClaimConfig` level is a claim. Factors that are
unstable across refits or mostly mark the episode start make no claims (:func:`factor_status`).
Torch-free: NumPy and SciPy only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .config import ClaimConfig
from .explanation import Explanation
from .facts import VISIBLE_FACTS
from .nulls import holm, spearman_columns
from .picks import top_picks
from .strata import SEED_OFFSET, Blocks, StrataTest, confounder, strata_test
from .two_nulls import Nulls, NullTest, graded_test, graded_tests
from .values import FactAssociation, FactorStatus

__all__ = [
    "CATEGORICAL_FACTS",
    "Event",
    "EventTest",
    "FactAssociation",
    "FactValues",
    "FactorStatus",
    "event_mask",
    "fact_associations",
    "fact_control",
    "fact_values",
    "factor_event_precision",
    "factor_event_test",
    "factor_fact_spearman",
    "factor_fact_test",
    "factor_highlights",
    "factor_status",
    "other_facts",
    "table_facts",
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

    ``event`` is a fact name (true where the fact is non-zero, e.g. ``"collision_visible"``), a
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


def valid_count(explanation: Explanation) -> int:
    return int(explanation.valid.sum())


@dataclass(frozen=True)
class _Context:
    """What every claim about one explanation shares: its picks, nulls and factor statuses."""

    order: np.ndarray  # [k, r] each factor's picks, indices into the valid observations
    nulls: Nulls
    statuses: tuple[FactorStatus, ...]
    k: int

    @property
    def claimable(self) -> np.ndarray:
        return np.array([status.claimable for status in self.statuses])


def claim_context(explanation: Explanation, claims: ClaimConfig, k: int | None = None) -> _Context:
    count = valid_count(explanation)
    if count == 0:
        raise ConfigError("the explanation has no analysed steps, so it can make no claims")
    width = claims.picks(count) if k is None else min(k, count)
    activations = explanation.factor_activations[explanation.valid]  # [n, r]
    nulls = Nulls.draw(explanation.valid, claims)
    shifts = nulls.shifts
    order, ties = top_picks(activations, shifts.episode, width)
    steps = np.nonzero(explanation.valid)[0]
    early = shifts.position < claims.start_steps  # [n] the first steps of each episode
    start = early[order].mean(axis=0)  # [r]
    start_limit = max(claims.max_start_fraction, 2 * float(early.mean()))
    time = spearman_columns(activations, steps.astype(np.float64))
    statuses = tuple(
        FactorStatus(
            factor=j,
            stability=float(explanation.factor_stability[j]),
            time_spearman=float(time[j]),
            start_fraction=float(start[j]),
            tie_fraction=float(ties[j]),
            unstable=bool(explanation.factor_stability[j] < claims.min_stability),
            marks_start=bool(start[j] > start_limit),
        )
        for j in range(explanation.rank)
    )
    return _Context(order, nulls, statuses, width)


def factor_status(
    explanation: Explanation, claims: ClaimConfig | None = None
) -> list[FactorStatus]:
    """Each factor's stability, time correlation, start and tie fractions, and whether it may
    claim anything (``FactorStatus``), measured on its top picks (``claims.picks``)."""
    return list(claim_context(explanation, claims or ClaimConfig()).statuses)


def factor_event_precision(explanation: Explanation, event: Event, k: int) -> np.ndarray:
    """For each factor, the fraction of its ``k`` picks (``results/picks.py``) where ``event``
    holds.

    Shape:
        - output: ``[r]`` float64 in [0, 1]

    Raises:
        ConfigError: ``k`` is not in ``1 .. number of valid observations``.
    """
    mask = event_mask(explanation, event)
    activations = explanation.factor_activations[explanation.valid]
    episodes = np.nonzero(explanation.valid)[1]
    order, _ = top_picks(activations, episodes, k)
    return mask[explanation.valid][order].mean(axis=0)


def factor_fact_spearman(explanation: Explanation, fact: FactValues) -> np.ndarray:
    """For each factor, the Spearman correlation of its activation with ``fact`` over the valid
    steps; NaN for a factor (or a fact) that is constant there.

    Shape:
        - output: ``[r]`` float64 in [-1, 1] or NaN
    """
    values = fact_values(explanation, fact)[explanation.valid]
    return spearman_columns(explanation.factor_activations[explanation.valid], values)


@dataclass(frozen=True)
class EventTest:
    """One fact against every factor, with its null.

    Attributes:
        values: ``[r]`` precision of each factor's picks (events) or Spearman (graded).
        p_values: ``[r]`` the larger of the two nulls' maxT-adjusted p-values over the
            claimable factors (NaN: no claim; ``results/two_nulls.py``), of the rank-biserial
            correlation of each factor's activation with the event (one-sided) or of
            ``|rho|`` (graded).
        null_q95, swap_q95: 95% quantile of the best claimable factor's rank correlation
            (events) or ``|rho|`` (graded) under circular shifts and under the episode swap.
        base_rate: the event's base rate over the analysed steps (NaN for graded facts).
        k: picks per factor (0 for graded facts). statuses: every factor's status.
        test: both nulls' p-values, quantiles and the effect sizes with their intervals.
        control: the third null, shuffles of the fact within the values of the other recorded
            fact that best goes with the strongest factor (``results/strata.py``); None where
            no claim was possible under the first two or no other fact goes with it enough.
    """

    values: np.ndarray
    p_values: np.ndarray
    null_q95: float
    base_rate: float
    k: int
    statuses: tuple[FactorStatus, ...]
    test: NullTest
    control: StrataTest | None = None

    @property
    def swap_q95(self) -> float:
        return self.test.swap_q95

    @property
    def controlled_for(self) -> str:
        """The fact the third null shuffled within ("" where it did not run)."""
        return "" if self.control is None else self.control.by

    @property
    def controlled_p_values(self) -> np.ndarray:
        """``[r]`` the larger of :attr:`p_values` and the third null's (NaN: no claim)."""
        if self.control is None:
            return self.p_values
        return np.maximum(self.p_values, self.control.p_values)


def _event_test(context: _Context, activations: np.ndarray, hits: np.ndarray) -> EventTest:
    """Precision of each factor's picks (what the gallery shows), tested by the rank-biserial
    correlation of its whole activation with the event (one-sided, both nulls): a factor's
    activation saturates (in the bundled agent's audits every factor's top picks come from a
    tie, one of them 45% of the observations), so its picks are a sample of the tie and a test
    on them alone finds a planted event in few masks (``research/measure_power.py``)."""
    test = graded_test(context.nulls, activations, hits.astype(np.float64), context.claimable,
                       one_sided=True)  # fmt: skip
    return _wrap(context, _precision(context, hits), test, float(hits.mean()), context.k)


def _precision(context: _Context, hits: np.ndarray) -> np.ndarray:
    """``[r]`` the share of each factor's picks where the event (``[n]``, 0/1) holds."""
    return np.asarray(hits, dtype=np.float64)[context.order].mean(axis=0)


def _graded_test(context: _Context, activations: np.ndarray, values: np.ndarray) -> EventTest:
    test = graded_test(context.nulls, activations, values, context.claimable)
    return _wrap(context, test.values, test, math.nan, 0)


def _wrap(context: _Context, values: np.ndarray, test: NullTest, base: float, k: int) -> EventTest:
    return EventTest(values, test.p_values, test.shift_q95, base, k, context.statuses, test)


def factor_event_test(
    explanation: Explanation, event: Event, claims: ClaimConfig | None = None, k: int | None = None
) -> EventTest:
    """Each factor's precision at ``event`` with its nulls (the claim "some factor marks it"),
    the third null included where a claim is still possible (:attr:`EventTest.control`)."""
    claims = claims or ClaimConfig()
    context = claim_context(explanation, claims, k)
    valid = explanation.valid
    activations = explanation.factor_activations[valid]
    hits = event_mask(explanation, event)[valid]
    test = _event_test(context, activations, hits)
    others = other_facts(explanation)
    control = fact_control(_name(event), hits.astype(np.float64), activations, test.test,
                           context.claimable, others, claims, one_sided=True)  # fmt: skip
    return dataclasses.replace(test, control=control)


def factor_fact_test(
    explanation: Explanation, fact: FactValues, claims: ClaimConfig | None = None
) -> EventTest:
    """Each factor's Spearman with ``fact`` with its nulls (the claim "some factor tracks
    it"), the third null included where a claim is still possible."""
    claims = claims or ClaimConfig()
    context = claim_context(explanation, claims)
    values = fact_values(explanation, fact)[explanation.valid]
    activations = explanation.factor_activations[explanation.valid]
    test = _graded_test(context, activations, values)
    control = fact_control(_name(fact), values, activations, test.test, context.claimable,
                           other_facts(explanation), claims, one_sided=False)  # fmt: skip
    return dataclasses.replace(test, control=control)


def _name(event: Event) -> str:
    """A fact's name (its own name is no control for it); "" for an array or a function."""
    return event if isinstance(event, str) else ""


def other_facts(
    explanation: Explanation, facts: list[tuple[str, np.ndarray, bool]] | None = None
) -> list[tuple[str, np.ndarray]]:
    """Every fact of :func:`table_facts` (``facts``, when the caller has made it) as
    ``(name, [n] float64 values)`` over the analysed steps: the candidates for the third null's
    control."""
    valid = explanation.valid
    table = table_facts(explanation) if facts is None else facts
    return [(name, values[valid].astype(np.float64)) for name, values, _ in table]


def fact_control(
    name: str,
    fact: np.ndarray,
    activations: np.ndarray,
    test: NullTest,
    claimable: np.ndarray,
    others: list[tuple[str, np.ndarray]],
    claims: ClaimConfig,
    *,
    one_sided: bool,
    memo: dict[str, Blocks] | None = None,
) -> StrataTest | None:
    """The third null for one fact (``results/strata.py``): shuffles of ``fact`` within the
    values of the other fact that best goes with the strongest claimable factor. None where
    the first two nulls leave no claim possible (corrections only raise a p-value, so the third
    could not change a verdict; it is not drawn, as each draw costs a gather) or no other fact
    goes with the factor enough (``memo``: the shuffles already drawn per control, reused).

    Shape:
        - fact: ``[n]``; activations: ``[n, r]``; claimable: ``[r]``; others: (name, ``[n]``)
    """
    strength = np.where(claimable, np.abs(test.values), np.nan)
    defined = test.p_values[~np.isnan(test.p_values)]
    if np.isnan(strength).all() or not defined.size or float(defined.min()) > claims.level:
        return None
    by = confounder(name, activations[:, int(np.nanargmax(strength))], others, fact)
    if by is None:
        return None
    return strata_test(activations, fact, by, claimable, one_sided=one_sided,
                       draws=claims.draws, seed=claims.seed + SEED_OFFSET, memo=memo)  # fmt: skip


def table_facts(explanation: Explanation) -> list[tuple[str, np.ndarray, bool]]:
    """The facts a table reports, as ``(name, [L, B] values, is_event)``: recorded facts, with
    each transition fact an observation can show replaced by its visible form, and categorical
    facts split into one event per value (named after the game's actions)."""
    valid = explanation.valid
    shown = set(VISIBLE_FACTS.values())
    rows: list[tuple[str, np.ndarray, bool]] = []
    for name in explanation.all_fact_names:
        if name in shown:
            continue
        values = explanation.fact(name)
        if name in CATEGORICAL_FACTS:
            labels = explanation.action_names if name == "executed_action" else ()
            for value in np.unique(values[valid]):
                label = labels[value] if 0 <= value < len(labels) else str(value)
                rows.append((f"{name}={label}", values == value, True))
        elif set(np.unique(values[valid]).tolist()) <= {0, 1}:
            rows.append((name, values != 0, True))
        else:
            rows.append((name, values, False))
    return rows


def fact_associations(
    explanation: Explanation, claims: ClaimConfig | None = None, *, k: int | None = None
) -> list[FactAssociation]:
    """Every fact of :func:`table_facts` against every factor, with nulls and corrected p-values.

    Yes/no facts get each factor's precision over its top-``k`` picks (``k`` defaults to
    ``claims.picks``: the larger of ``claims.k`` and the top ``claims.top_fraction``, capped at
    the analysed observations); graded facts each factor's Spearman.
    Within a fact the p-values are maxT-adjusted over the claimable factors; across the facts
    of the table, Holm-adjusted (``results/nulls.py``). Empty without analysed steps.
    """
    claims = claims or ClaimConfig()
    if valid_count(explanation) == 0:
        return []
    return fact_rows(explanation, claims, claim_context(explanation, claims, k))


def fact_rows(
    explanation: Explanation,
    claims: ClaimConfig,
    context: _Context,
    memo: dict[str, Blocks] | None = None,
) -> list[FactAssociation]:
    valid = explanation.valid
    activations = explanation.factor_activations[valid]
    facts = table_facts(explanation)
    if not facts:
        return []
    matrix = np.stack([values[valid].astype(np.float64) for _, values, _ in facts], axis=1)
    batch = graded_tests(context.nulls, activations, matrix, context.claimable,
                         [event for _, _, event in facts])  # fmt: skip
    tests = [
        (name, _wrap(context, _precision(context, matrix[:, f]), test, float(matrix[:, f].mean()),
                     context.k) if event else _wrap(context, test.values, test, math.nan, 0))
        for f, ((name, _, event), test) in enumerate(zip(facts, batch, strict=True))
    ]  # fmt: skip
    others = [(name, matrix[:, f]) for f, (name, _, _) in enumerate(facts)]
    memo = {} if memo is None else memo
    controls = [
        fact_control(name, matrix[:, f], activations, tested_f, context.claimable, others,
                     claims, one_sided=event, memo=memo)
        for f, ((name, _, event), tested_f) in enumerate(zip(facts, batch, strict=True))
    ]  # fmt: skip
    combined = [
        test.p_values if control is None else np.maximum(test.p_values, control.p_values)
        for (_, test), control in zip(tests, controls, strict=True)
    ]
    best = np.array([np.nanmin(p) if not np.isnan(p).all() else np.nan for p in combined])
    fact_level = holm(best)
    tested = np.flatnonzero(~np.isnan(best))
    # An untested fact (every p NaN) gets multiplier 0: its values stay NaN (np.empty here read
    # uninitialised memory, and INT64_MIN overflowed the subtraction: a warning, an error under -W
    # error).
    ranks = np.full(len(tests), len(tested), dtype=np.int64)
    ranks[tested[np.argsort(best[tested], kind="stable")]] = np.arange(len(tested))
    rows = []
    for index, (name, test) in enumerate(tests):
        multiplier = len(tested) - ranks[index]
        control = controls[index]
        with np.errstate(invalid="ignore"):
            adjusted = np.minimum(1.0, np.maximum(combined[index] * multiplier, fact_level[index]))
            shift_only = np.minimum(1.0, test.test.shift_p * multiplier)
            both = np.minimum(1.0, test.p_values * multiplier)
        rows.append(
            FactAssociation(
                correlations=tuple(map(float, test.test.values)),
                name=name,
                kind="event" if test.k else "graded",
                per_factor=tuple(map(float, test.values)),
                base_rate=test.base_rate,
                k=test.k,
                null_q95=test.null_q95,
                p_values=tuple(map(float, adjusted)),
                level=claims.level,
                swap_q95=test.swap_q95,
                shift_p_values=tuple(map(float, shift_only)),
                effects=tuple(map(float, test.test.effects)),
                effect_low=tuple(map(float, test.test.effect_low)),
                effect_high=tuple(map(float, test.test.effect_high)),
                controlled_for="" if control is None else control.by,
                uncontrolled_p_values=tuple(map(float, both)),
            )
        )
    return rows


def factor_highlights(
    associations: list[FactAssociation], factor: int
) -> tuple[FactAssociation | None, FactAssociation | None]:
    """What the gallery may say about one factor: the event and the graded fact it is the
    claim of (:attr:`FactAssociation.claim`: significant after correction, and for an event
    above the base rate), the strongest of each; None where it claims none."""

    for row in associations:
        if not 0 <= factor < len(row.per_factor):
            raise ConfigError(
                f"factor {factor} is out of range: {row.name!r} has values for factors 0 to "
                f"{len(row.per_factor) - 1}"
            )

    def significant(row: FactAssociation) -> bool:
        return bool(row.significant and row.significant[factor]) and (
            row.kind == "graded" or row.per_factor[factor] > row.base_rate
        )

    events = [row for row in associations if row.kind == "event" and significant(row)]
    graded = [row for row in associations if row.kind == "graded" and significant(row)]
    event = max(events, key=lambda row: row.per_factor[factor] - row.base_rate, default=None)
    fact = max(graded, key=lambda row: abs(row.per_factor[factor]), default=None)
    return event, fact
