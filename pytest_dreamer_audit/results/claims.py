"""What an explanation claims about the score's top observations, and the whole claims table.

The score's top-``k`` observations of every rollout are tested against every yes/no event of
the table (:func:`~pytest_dreamer_audit.results.semantics.table_facts`), in both directions
(the picks hit the event more, or less, often than chance). Each test is one-sided and beats
both nulls (``results/two_nulls.py``: the larger of the circular-shift and the episode-swap
p-value); the table is one family, so Holm's correction runs over every event and direction at
the claim level. Effects are the precision minus its mean under the episode swap, with an
episode-bootstrap 95% interval. NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import bootstrap
from .config import ClaimConfig
from .explanation import Explanation
from .nulls import holm, p_value, recentred_means
from .semantics import (
    Event,
    claim_context,
    event_mask,
    fact_rows,
    other_facts,
    table_facts,
    valid_count,
)
from .strata import SEED_OFFSET, Blocks, PicksTest, confounder, picks_test
from .two_nulls import Nulls
from .values import FactAssociation, FactorStatus, ScoreAssociation

__all__ = ["ClaimsTable", "claims_table", "score_associations", "score_event_test"]


def _valid_index(explanation: Explanation) -> np.ndarray:
    """``[L, B]`` the index of each analysed observation in valid order (-1 elsewhere)."""
    index = np.full(explanation.valid.shape, -1, dtype=np.int64)
    index[explanation.valid] = np.arange(valid_count(explanation))
    return index


def _score_picks(explanation: Explanation, k: int) -> np.ndarray:
    """``[picks]`` the valid indices of the score's top-``k`` observations of every rollout."""
    top = explanation.top_observations[:, :k]  # [B, k] steps
    episodes = np.broadcast_to(np.arange(top.shape[0])[:, None], top.shape)
    picked = top >= 0
    at = _valid_index(explanation)[top[picked], episodes[picked]]
    return at[at >= 0]


@dataclass(frozen=True)
class _Picks:
    """The score's picks and what each null moves there, shared by every event."""

    at: np.ndarray  # [P] valid indices
    shifted: np.ndarray  # [D, P]
    swapped: np.ndarray  # [D', P] (-1: no partner)
    nulls: Nulls

    @classmethod
    def of(cls, explanation: Explanation, k: int, nulls: Nulls) -> _Picks:
        at = _score_picks(explanation, k)
        return cls(at, nulls.shifts.source(at), nulls.swaps.source(at), nulls)


@dataclass(frozen=True)
class _Raw:
    """One event's unadjusted test: p-values are (shift above, shift below, swap above, swap
    below)."""

    name: str
    precision: float
    base: float
    quantiles: tuple[float, float, float, float]  # shift q05, q95, swap q05, q95
    p: tuple[float, float, float, float]
    effect: tuple[float, float, float]


def _raw(picks: _Picks, name: str, hits: np.ndarray) -> _Raw:
    nan = math.nan
    base = float(hits.mean())
    if not len(picks.at):
        return _Raw(name, nan, base, (nan,) * 4, (nan,) * 4, (nan,) * 3)
    precision = float(hits[picks.at].mean())
    shifted = hits.astype(np.float64)[picks.shifted].mean(axis=1)  # [D]
    swapped = recentred_means(hits, picks.at, picks.swapped)  # [D']
    defined = swapped[~np.isnan(swapped)]
    exact = picks.nulls.swaps.exact
    p = (
        float(p_value(precision, shifted)),
        float(p_value(-precision, -shifted)),
        float(p_value(precision, swapped, exact)),
        float(p_value(-precision, -swapped, exact)),
    )
    swap_q = (
        (float(np.quantile(defined, 0.05)), float(np.quantile(defined, 0.95)))
        if len(defined)
        else (nan, nan)
    )
    quantiles = (float(np.quantile(shifted, 0.05)), float(np.quantile(shifted, 0.95)), *swap_q)
    centre = float(defined.mean()) if len(defined) else nan
    episode = picks.nulls.episode[picks.at][:, None]
    resampled = bootstrap.weighted_means(hits[picks.at][:, None], episode, picks.nulls.weights)
    low, high = bootstrap.interval(resampled, np.array([centre]))
    return _Raw(name, precision, base, quantiles, p, (precision - centre, low[0], high[0]))


def _both(raw: _Raw, one_sided: bool) -> tuple[float, float]:
    """The p-values (above, below) under the shifts and the swap: the larger of the two (only
    "above" when ``one_sided``: the other direction is then not tested, NaN)."""
    return max(raw.p[0], raw.p[2]), math.nan if one_sided else max(raw.p[1], raw.p[3])


def _control(
    picks: _Picks,
    name: str,
    raw: _Raw,
    hits: np.ndarray,
    score: np.ndarray,
    others: list[tuple[str, np.ndarray]],
    claims: ClaimConfig,
    *,
    one_sided: bool,
    memo: dict[str, Blocks],
) -> PicksTest | None:
    """The third null of one event (``results/strata.py``): the event shuffled within the
    values of the other recorded fact that best goes with the score (``score`` ``[n]``), where
    a claim is still possible under the first two (corrections only raise a p-value). ``name``:
    the event's fact name ("" for an array or a function), which is no control for itself."""
    tested = [p for p in _both(raw, one_sided) if not math.isnan(p)]
    if not tested or min(tested) > claims.level:
        return None
    by = confounder(name, score, others, hits.astype(np.float64))
    if by is None:
        return None
    return picks_test(
        picks.at, hits, by, draws=claims.draws, seed=claims.seed + SEED_OFFSET, memo=memo
    )


def _own_holm(family: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``[m]`` each test's Holm-adjusted p-value when its own raw p-value in ``family`` is
    replaced by ``own`` (NaN where ``own`` is NaN), the other tests unchanged."""
    adjusted = np.full(len(family), math.nan)
    for i in np.flatnonzero(~np.isnan(own)):
        trial = family.copy()
        trial[i] = own[i]
        adjusted[i] = holm(trial)[i]
    return adjusted


def _by(control: PicksTest | None) -> str:
    return "" if control is None else control.by


def _adjusted(
    raws: list[_Raw],
    controls: list[PicksTest | None],
    k: int,
    picks: int,
    level: float,
    one_sided: bool = False,
) -> list[ScoreAssociation]:
    """Holm over every event and direction (only "above" when ``one_sided``): the claims under
    every null that ran. For the labels, each test's p-value in the same family with only its
    own nulls changed (every other test as it is): without its third null ("explained by"),
    and under the circular shifts alone ("time"), so a label names what held this test back,
    never another test's correction."""
    nan = math.nan
    raw_both = np.array([p for r in raws for p in _both(r, one_sided)])
    raw_all = np.array([
        max(p, q) if control is not None else p
        for r, control in zip(raws, controls, strict=True)
        for p, q in zip(
            _both(r, one_sided),
            (nan, nan) if control is None else (control.p_above, control.p_below),
            strict=True,
        )
    ])  # fmt: skip
    raw_shift = np.array([p for r in raws for p in (r.p[0], nan if one_sided else r.p[1])])
    final = holm(raw_all).reshape(-1, 2)
    both = _own_holm(raw_all, raw_both).reshape(-1, 2)
    shift = _own_holm(raw_all, raw_shift).reshape(-1, 2)
    family = int((~np.isnan(final)).sum())
    return [
        ScoreAssociation(
            name=r.name,
            precision=r.precision,
            base_rate=r.base,
            null_q05=r.quantiles[0],
            null_q95=r.quantiles[1],
            p_above=float(final[i, 0]),
            p_below=float(final[i, 1]),
            k=k,
            picks=picks,
            level=level,
            swap_q05=r.quantiles[2],
            swap_q95=r.quantiles[3],
            shift_p_above=float(shift[i, 0]),
            shift_p_below=float(shift[i, 1]),
            effect=r.effect[0],
            effect_low=r.effect[1],
            effect_high=r.effect[2],
            family=family,
            controlled_for=_by(controls[i]),
            uncontrolled_p_above=float(both[i, 0]),
            uncontrolled_p_below=float(both[i, 1]),
        )
        for i, r in enumerate(raws)
    ]


def score_event_test(
    explanation: Explanation,
    event: Event,
    claims: ClaimConfig | None = None,
    k: int | None = None,
    *,
    one_sided: bool = False,
) -> ScoreAssociation:
    """The precision of the score's top-``k`` observations per rollout at ``event``, with both
    nulls (``k`` defaults to the explanation's ``top_k``). Its two directions are Holm-adjusted
    as a family of two; ``one_sided`` tests only "above" (a hypothesis stated in advance, as an
    assertion states it), leaving ``p_below`` NaN."""
    claims = claims or ClaimConfig()
    width = explanation.top_observations.shape[1] if k is None else k
    if not 1 <= width <= explanation.top_observations.shape[1]:
        raise ConfigError(
            f"k must be in 1..{explanation.top_observations.shape[1]} (the explanation's "
            f"top_k), got {k}"
        )
    if valid_count(explanation) == 0:
        raise ConfigError("the explanation has no analysed steps, so it can make no claims")
    picks = _Picks.of(explanation, width, Nulls.draw(explanation.valid, claims))
    valid = explanation.valid
    hits = event_mask(explanation, event)[valid]
    name = event if isinstance(event, str) else getattr(event, "__name__", "the event")
    raw = _raw(picks, name, hits)
    control = _control(picks, event if isinstance(event, str) else "", raw, hits,
                       explanation.observation_scores[valid], other_facts(explanation), claims,
                       one_sided=one_sided, memo={})  # fmt: skip
    return _adjusted([raw], [control], width, len(picks.at), claims.level, one_sided)[0]


def score_associations(
    explanation: Explanation, claims: ClaimConfig | None = None
) -> list[ScoreAssociation]:
    """Every event of :func:`table_facts` at the score's picks: one Holm family."""
    claims = claims or ClaimConfig()
    if valid_count(explanation) == 0:
        return []
    return _score_rows(explanation, Nulls.draw(explanation.valid, claims), claims, {})


def _score_rows(
    explanation: Explanation, nulls: Nulls, claims: ClaimConfig, memo: dict[str, Blocks]
) -> list[ScoreAssociation]:
    width = explanation.top_observations.shape[1]
    valid = explanation.valid
    picks = _Picks.of(explanation, width, nulls)  # once: the events share picks and draws
    facts = table_facts(explanation)
    others = other_facts(explanation, facts)
    score = explanation.observation_scores[valid]
    events = [(name, values[valid].astype(bool)) for name, values, event in facts if event]
    raws = [_raw(picks, name, hits) for name, hits in events]
    controls = [
        _control(picks, raw.name, raw, hits, score, others, claims, one_sided=False, memo=memo)
        for raw, (_, hits) in zip(raws, events, strict=True)
    ]
    return _adjusted(raws, controls, width, len(picks.at), claims.level) if raws else []


@dataclass(frozen=True)
class ClaimsTable:
    """Everything an explanation claims about the game, computed once for a report: the fact
    table (:func:`~pytest_dreamer_audit.results.semantics.fact_associations`), each factor's
    status and the score's table (:func:`score_associations`).

    Attributes:
        resolution: the smallest p-value the episode swap can give with these episodes (above
            the level no claim is possible: every p-value is at least this; the assertions
            refuse such claims with the reason, ``episode_swaps.too_few_episodes``).
    """

    facts: tuple[FactAssociation, ...]
    factors: tuple[FactorStatus, ...]
    scores: tuple[ScoreAssociation, ...]
    resolution: float = math.nan


def claims_table(explanation: Explanation, claims: ClaimConfig | None = None) -> ClaimsTable:
    """The three tables of an explanation's claims, sharing one set of null draws (empty
    without analysed steps)."""
    claims = claims or ClaimConfig()
    if valid_count(explanation) == 0:
        return ClaimsTable((), (), ())
    context = claim_context(explanation, claims)
    memo: dict[str, Blocks] = {}  # the tables controlled for the same fact share its shuffles
    return ClaimsTable(
        tuple(fact_rows(explanation, claims, context, memo)),
        context.statuses,
        tuple(_score_rows(explanation, context.nulls, claims, memo)),
        context.nulls.swaps.resolution,
    )
