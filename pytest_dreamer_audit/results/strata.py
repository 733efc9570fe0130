"""The control for another recorded fact: is a factor's association with fact F more than what
the fact G that best goes with F explains? NumPy only.

Freeway's cars never drive in the bottom row, where every crossing starts; so a factor that
follows the chicken's row also "avoids cars", and a car finding may be a row finding. For each
fact F of a claims table, G is the other recorded fact with the largest ``|Spearman|`` with F
over the analysed steps (rows of the same categorical fact are not candidates: they exclude
each other by construction). The null shuffles F's values among the analysed observations that
share G's value (G binned into at most :data:`MAX_STRATA` quantile bins): it keeps everything G
tells about F and nothing else. A claim must beat it as well as the circular shift and the
episode swap (``results/two_nulls.py``); one that beats those two but not this is reported as
explained by G.

The shuffles ignore the order in time, so on their own they would be too eager with facts that
come in runs; taken with the other two nulls (the larger p-value wins) they can only make a
claim harder, never easier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .event_names import fact_of
from .nulls import max_adjusted, p_value, rank_scores, spearman_columns

__all__ = [
    "MAX_STRATA",
    "MIN_CONFOUNDING",
    "SEED_OFFSET",
    "Blocks",
    "PicksTest",
    "StrataTest",
    "confounder",
    "determines",
    "picks_test",
    "shuffle_blocks",
    "shuffles",
    "strata_of",
    "strata_test",
]

MAX_STRATA = 10
"""At most this many strata of the other fact (quantile bins of a graded fact)."""
SEED_OFFSET = 3
"""The shuffles' seed is ``ClaimConfig.seed`` plus this (the other nulls and the bootstrap use
smaller offsets); every caller uses it, so tables controlled for the same fact share draws."""
MIN_CONFOUNDING = 0.1
"""An other fact whose ``|Spearman|`` with the factor is below this explains too little of it."""


@dataclass(frozen=True)
class StrataTest:
    """Each factor's rank correlation with F under shuffles of F within strata of G.

    Attributes:
        by: the other fact G (its row name). p_values: ``[r]`` maxT-adjusted over the
            claimable factors (NaN: no claim). q95: the 95% quantile of the best claimable
            factor's value under the shuffles.
    """

    by: str
    p_values: np.ndarray
    q95: float


def _constant_within(labels: np.ndarray, fact: np.ndarray) -> bool:
    order = np.argsort(labels, kind="stable")
    grouped, values = labels[order], fact[order]
    same = grouped[1:] == grouped[:-1]
    return bool(np.all(values[1:][same] == values[:-1][same]))


def determines(by: np.ndarray, fact: np.ndarray) -> bool:
    """Whether ``fact`` ``[n]`` is a function of ``by`` ``[n]``, so that ``by`` is no control
    for it (it is the fact, or a recoding of it such as ``bricks_left<=10`` of ``bricks_left``):
    constant within every stratum of ``by`` (shuffles within them would move nothing), or
    within every value of ``by`` where its values repeat (at most ``n / 2`` distinct values;
    every fact is a function of a fact whose values are all distinct)."""
    if _constant_within(strata_of(by), fact):
        return True
    values, labels = np.unique(by, return_inverse=True)
    return len(values) <= len(by) // 2 and _constant_within(labels.reshape(-1), fact)


def confounder(
    name: str,
    values: np.ndarray,
    others: list[tuple[str, np.ndarray]],
    fact: np.ndarray | None = None,
) -> tuple[str, np.ndarray] | None:
    """The other fact that best goes with ``values`` ``[n]`` (the activation of the factor
    that best goes with fact ``name``, or the score's picks), or None when none reaches
    :data:`MIN_CONFOUNDING`; ``name`` itself, the fact it reads (``bricks_left`` for
    ``bricks_left<=10``), the other rows of the same categorical fact and, given
    the fact's own values ``fact`` ``[n]``, every fact that determines them
    (:func:`determines`) are skipped."""
    stem = fact_of(name)
    candidates = [
        (other, v)
        for other, v in others
        if other != name and fact_of(other) != stem and (fact is None or not determines(v, fact))
    ]
    if not candidates:
        return None
    columns = np.stack([v for _, v in candidates], axis=1)
    rho = np.abs(spearman_columns(columns, values))
    if np.isnan(rho).all() or np.nanmax(rho) < MIN_CONFOUNDING:
        return None
    return candidates[int(np.nanargmax(rho))]


def strata_of(values: np.ndarray) -> np.ndarray:
    """``[n]`` stratum labels: the values themselves when there are few, else quantile bins."""
    unique = np.unique(values)
    if len(unique) <= MAX_STRATA:
        return np.searchsorted(unique, values)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, MAX_STRATA + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")


Blocks = list[tuple[np.ndarray, np.ndarray]]
"""Per stratum: its members ``[m]`` and each draw's order of them ``[D, m]`` (indices into the
members): the value of ``members[order[d, k]]`` moves to ``members[k]`` in draw ``d``."""


def shuffle_blocks(strata: np.ndarray, draws: int, seed: int) -> Blocks:
    """Uniform permutations within each stratum (seeded), kept per stratum: a draw's sum over
    the observations is a sum over the strata of small gathers, with no ``[D, n]`` scatter."""
    rng = np.random.default_rng(seed)
    blocks = []
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        positions = np.broadcast_to(np.arange(len(members), dtype=np.int32), (draws, len(members)))
        order = rng.permuted(positions, axis=1)  # Fisher-Yates per draw: no sort
        blocks.append((members, order))
    return blocks


def shuffles(strata: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``[D, n]`` for each draw the index whose value moves to each observation: a uniform
    permutation within each stratum (seeded; the same draws as :func:`shuffle_blocks`).

    Shape:
        - strata: ``[n]`` ints; output: ``[D, n]``
    """
    source = np.empty((draws, len(strata)), dtype=np.int64)
    for members, order in shuffle_blocks(strata, draws, seed):
        source[:, members] = members[order]
    return source


def _blocks(
    by: tuple[str, np.ndarray], draws: int, seed: int, memo: dict[str, Blocks] | None
) -> Blocks:
    """The shuffles within the strata of ``by``, drawn once per control name in ``memo``."""
    if memo is not None and by[0] in memo:  # facts controlled for the same fact share draws
        return memo[by[0]]
    blocks = shuffle_blocks(strata_of(by[1]), draws, seed)
    if memo is not None:
        memo[by[0]] = blocks
    return blocks


@dataclass(frozen=True)
class PicksTest:
    """How often fixed picks hit an event under shuffles of the event within strata of G.

    Attributes:
        by: the other fact G (its row name). p_above, p_below: one-sided p-values that the
            picks hit the event more (less) often than the shuffles do.
    """

    by: str
    p_above: float
    p_below: float


def picks_test(
    at: np.ndarray,
    hits: np.ndarray,
    by: tuple[str, np.ndarray],
    *,
    draws: int,
    seed: int,
    memo: dict[str, Blocks] | None = None,
) -> PicksTest:
    """The picks' hits against shuffles of ``hits`` within the strata of ``by``: each draw's
    hits are gathered at the picks only (the picks stay where they are; the event moves).

    Shape:
        - at: ``[P]`` distinct indices of the picks; hits: ``[n]`` 0/1; by: (name, ``[n]``)
    """
    values = hits.astype(np.float64)
    observed = float(values[at].sum())
    picked = np.zeros(len(values), dtype=bool)
    picked[at] = True
    null = np.zeros(draws)
    for members, order in _blocks(by, draws, seed, memo):
        chosen = np.flatnonzero(picked[members])  # positions of the picks in this stratum
        if len(chosen):
            null += values[members][order[:, chosen]].sum(axis=1)  # [D, p] -> [D]
    return PicksTest(by[0], float(p_value(observed, null)), float(p_value(-observed, -null)))


def strata_test(
    activations: np.ndarray,
    values: np.ndarray,
    by: tuple[str, np.ndarray],
    claimable: np.ndarray,
    *,
    one_sided: bool,
    draws: int,
    seed: int,
    memo: dict[str, Blocks] | None = None,
) -> StrataTest:
    """Each factor's Spearman with F against shuffles of F within the strata of ``by``
    (``memo``: the shuffles already drawn per fact name, reused).

    Shape:
        - activations: ``[n, r]``; values: ``[n]``; by: (name, ``[n]``); claimable: ``[r]``
    """
    a = rank_scores(activations)
    v = rank_scores(values[:, None])[:, 0]
    observed = v @ a
    null = np.zeros((draws, activations.shape[1]))
    for members, order in _blocks(by, draws, seed, memo):
        null += v[members][order] @ a[members]  # [D, m] @ [m, r]
    side = (lambda x: x) if one_sided else np.abs
    p, q95 = max_adjusted(side(observed), side(null), claimable)
    return StrataTest(by[0], p, q95)
