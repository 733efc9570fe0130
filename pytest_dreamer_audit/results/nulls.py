"""What chance gives: null distributions, p-values and multiple-comparison corrections for every
association an explanation claims. NumPy only.

**The null.** A claim says that a factor's (or a score's) observations and a game fact go
together. Its null keeps everything about both except their alignment in time: each draw shifts
the fact circularly along the valid steps of each episode, by an independent uniform offset per
episode. The shift keeps each episode's event count, its run lengths and its autocorrelation, and
the picks stay where they are, so the null answers "how often would picks this clumped in time hit
an event this clumped in time, if the two were unrelated?". Random k-subsets would ignore the
clumping and make chance look rarer than it is.

**p-values** count the draws at least as extreme as the observation, plus one:
``p = (1 + #{null >= observed}) / (1 + draws)``, so ``p`` is in ``(0, 1]`` and its smallest
value is ``1 / (1 + draws)`` (0.001 at the default 999 draws).

**Several factors, several facts.** "Some factor marks the event" is a claim about the best of r
factors, so its null is the best of r too: the single-step maxT adjustment (Westfall & Young
1993) compares each factor's value with the draws' maximum over the claimable factors, which
controls the family-wise error over the factors of one fact. Across the facts of a table, Holm's
step-down correction (Holm 1979) controls it over the facts: fact ``f``, ``i``-th smallest of
``F`` best p-values, is multiplied by ``F - i + 1`` (kept monotone), and a factor of fact ``f``
keeps the larger of its own maxT p-value times that multiplier and the fact's Holm p-value. An
explanation of pure noise then makes any claim at all with probability at most the level
(measured in ``tests/test_nulls.py`` on a null world).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .episode_swaps import EpisodeSwaps

__all__ = [
    "NULL_DRAWS",
    "CircularShifts",
    "average_ranks",
    "holm",
    "Null",
    "max_adjusted",
    "p_value",
    "paired_means",
    "rank_scores",
    "recentred_means",
    "spearman_columns",
    "spearman_null",
]

NULL_DRAWS = 999
"""Draws per null: p-values down to 0.001, enough for Holm over a dozen facts at level 0.05."""
_CHUNK = 1 << 22
"""Largest ``draws x steps`` block built at once (32 MiB of int64)."""


@dataclass(frozen=True)
class CircularShifts:
    """``draws`` circular time shifts of a ``[L, B]`` quantity along each episode's valid steps.

    Valid observations are indexed time-major (``values[valid]`` order), as everywhere else. For
    draw ``d`` the value shown at valid observation ``j`` (episode ``b``, ``i``-th valid step of
    ``b``) is the one at the ``(i - shift[d, b]) mod n_b``-th valid step of ``b``.

    Attributes:
        shifts: ``[D, B]`` the offset of each episode in each draw, in ``0 .. n_b - 1``.
        episode, position: ``[n]`` episode and rank within its episode of each valid observation.
        lengths: ``[B]`` valid steps per episode. order: ``[n]`` valid indices sorted episode by
            episode (the episode-major position ``start[b] + i`` holds valid index ``order[...]``).
        start: ``[B]`` where each episode begins in ``order``.
    """

    shifts: np.ndarray
    episode: np.ndarray
    position: np.ndarray
    lengths: np.ndarray
    order: np.ndarray
    start: np.ndarray

    @classmethod
    def draw(cls, valid: np.ndarray, draws: int = NULL_DRAWS, seed: int = 0) -> CircularShifts:
        """Draw the shifts for a ``[L, B]`` bool mask of valid steps (seeded: reproducible)."""
        if draws < 1:
            raise ConfigError(f"a null needs at least 1 draw, got {draws}")
        valid = np.asarray(valid, dtype=bool)
        if valid.ndim != 2:
            raise ConfigError(f"valid must be a [steps, episodes] mask, got shape {valid.shape}")
        if valid.shape[1] == 0:
            raise ConfigError("valid has no episodes: a null shifts each episode's own steps")
        steps, episodes = np.nonzero(valid)  # time-major order
        lengths = valid.sum(axis=0).astype(np.int64)
        order = np.lexsort((steps, episodes))  # episode-major, time within
        start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        position = np.empty(len(steps), dtype=np.int64)
        position[order] = np.arange(len(steps)) - np.repeat(start, lengths)
        rng = np.random.default_rng(seed)
        shape = (draws, valid.shape[1])
        shifts = np.floor(rng.random(shape) * np.maximum(lengths, 1)).astype(np.int64)
        return cls(shifts, episodes.astype(np.int64), position, lengths, order, start)

    @property
    def draws(self) -> int:
        return int(self.shifts.shape[0])

    @property
    def exact(self) -> bool:
        """Drawn shifts, never an enumeration: p-values count the observation as a draw."""
        return False

    def source(self, at: np.ndarray, draws: slice = slice(None)) -> np.ndarray:
        """For valid indices ``at`` (any shape), the valid index whose value each draw moves there.

        Shape:
            - at: ``[...]`` ints; output: ``[D, ...]`` (``D`` the draws selected by ``draws``)
        """
        at = np.asarray(at, dtype=np.int64)
        b = self.episode[at]
        moved = (self.position[at] - self.shifts[draws][:, b]) % self.lengths[b]
        return np.asarray(self.order[self.start[b] + moved])


Null = CircularShifts | EpisodeSwaps
"""Either null: both give ``draws``, ``exact`` and ``source(at, draws)`` (-1: no partner)."""


def p_value(observed: np.ndarray | float, null: np.ndarray, exact: bool = False) -> np.ndarray:
    """``(1 + #{null >= observed}) / (1 + draws)`` along the first axis of ``null`` (drawn
    nulls), or ``#{null >= observed} / draws`` when ``exact`` (an enumeration that holds the
    observed pairing itself, :class:`EpisodeSwaps`); NaN where ``observed`` is NaN. NaN draws
    (no pair in that draw) count as at least as extreme: a draw that cannot be scored must not
    make the observation look rarer.

    Shape:
        - observed: ``[...]``; null: ``[D, ...]``; output: ``[...]`` in ``(0, 1]``
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    slack = 1e-12 * np.maximum(1.0, np.abs(observed))  # float noise never makes a value "beat"
    count = ((null >= observed - slack) | np.isnan(null)).sum(axis=0)
    if exact:
        result = np.maximum(count, 1) / null.shape[0]
    else:
        result = (1.0 + count) / (1.0 + null.shape[0])
    return np.where(np.isnan(observed), np.nan, result)


def max_adjusted(
    observed: np.ndarray,
    null: np.ndarray,
    claimable: np.ndarray | None = None,
    exact: bool = False,
) -> tuple[np.ndarray, float]:
    """maxT-adjusted p-values of ``r`` factors and the 95% quantile of the best-of-r null.

    Only ``claimable`` factors (default: all with a defined value) enter the maximum; the others
    get NaN. NaN draws (a factor constant under a shift) count as absent; a draw with no
    defined value at all counts as beating every factor. ``exact``: see :func:`p_value`.

    Shape:
        - observed: ``[r]``; null: ``[D, r]``; claimable: ``[r]`` bool; output: ``([r], q95)``
    """
    observed = np.asarray(observed, dtype=np.float64)
    mask = ~np.isnan(observed) if claimable is None else claimable & ~np.isnan(observed)
    if not mask.any():
        return np.full(observed.shape, np.nan), float("nan")
    masked = np.where(mask, null, np.nan)
    defined = ~np.isnan(masked).all(axis=1)
    best = np.full(masked.shape[0], np.inf)
    best[defined] = np.nanmax(masked[defined], axis=1)  # [D]
    adjusted = p_value(observed, best[:, None], exact)
    q95 = float(np.quantile(best[defined], 0.95)) if defined.any() else float("nan")
    return np.where(mask, adjusted, np.nan), q95


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are not tested and stay NaN).

    Shape:
        - pvalues: ``[m]``; output: ``[m]`` in ``(0, 1]``
    """
    p = np.asarray(pvalues, dtype=np.float64)
    result = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    if not len(tested):
        return result
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    result[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return result


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the first axis, from 1 (ties share their mean rank, as in Spearman);
    a column holding a NaN is all NaN. ``scipy.stats.rankdata(values, axis=0)`` to the last bit
    (``tests/test_nulls.py`` checks it), in NumPy because importing ``scipy.stats`` costs 1.4 s,
    which was most of a warm pytest-xdist worker's time (``benchmarks/warm_xdist.md``).

    Shape:
        - values: ``[n, ...]``; output: the same, float64
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        return values.copy()
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    index = np.arange(n, dtype=np.float64).reshape((n,) + (1,) * (values.ndim - 1))
    index = np.broadcast_to(index, values.shape)
    starts = np.ones(values.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    ends = np.ones(values.shape, dtype=bool)
    ends[:-1] = starts[1:]
    first = np.maximum.accumulate(np.where(starts, index, 0.0), axis=0)
    last = np.flip(
        np.minimum.accumulate(np.flip(np.where(ends, index, float(n - 1)), axis=0), axis=0),
        axis=0,
    )
    ranks = np.empty_like(values)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=0)
    return np.where(np.isnan(values).any(axis=0, keepdims=True), np.nan, ranks)


def _standardized(ranks: np.ndarray) -> np.ndarray:
    """Centre and scale columns to unit norm (NaN for a constant column)."""
    centred = ranks - ranks.mean(axis=0)
    norm = np.linalg.norm(centred, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, centred / np.where(norm > 0, norm, 1.0), np.nan)


def rank_scores(values: np.ndarray) -> np.ndarray:
    """Each column's average ranks, centred and scaled to unit norm (NaN for a constant
    column): the dot product of two such columns is their Spearman correlation.

    Shape:
        - values: ``[n, k]``; output: ``[n, k]``
    """
    return _standardized(average_ranks(values))


def spearman_columns(activations: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Spearman of each column of ``activations`` ``[n, r]`` with ``values`` ``[n]``: ``[r]``,
    NaN for a constant column or constant values (or fewer than two rows)."""
    if len(values) < 2:
        return np.full(activations.shape[1], np.nan)
    a = _standardized(average_ranks(activations))
    v = _standardized(average_ranks(np.asarray(values, dtype=np.float64)[:, None]))[:, 0]
    return np.asarray(v @ a)


def spearman_null(
    activations: np.ndarray, values: np.ndarray, null: Null
) -> tuple[np.ndarray, np.ndarray]:
    """Spearman of each factor's activation with one fact (``values`` ``[n]``) or several
    (``[n, F]``), and the same in every draw of ``null`` (circular shifts or episode swaps).

    The ranks are taken once over all analysed steps. Where a draw pairs every observation (a
    shift always does; a swap does when the episodes are analysed at the same steps) it only
    moves the facts' ranks, so each draw is one matrix product. Where some observations have no
    partner (episodes of different lengths under a swap), the draw's value is the Pearson
    correlation of the same ranks over the pairs that exist, recentred by what the real pairing
    gives over those same observations (``null - real over the pairs + real over all``): a draw
    must not differ from the observation only because it leaves some observations out, which
    made the swap claim in 13-25% of null worlds with episodes of 15-50 steps.

    Shape:
        - activations: ``[n, r]``; values: ``[n]`` or ``[n, F]`` (valid order); output:
          ``([r], [D, r])`` for one fact, ``([F, r], [F, D, r])`` for several; NaN for a
          constant factor or fact (or a draw without two pairs)
    """
    single = np.ndim(values) == 1
    columns = np.asarray(values, dtype=np.float64).reshape(len(values), -1)  # [n, F]
    n, rank = activations.shape
    facts = columns.shape[1]
    ranks_a = average_ranks(activations)  # [n, r]
    ranks_v = average_ranks(columns)  # [n, F]
    a = _standardized(ranks_a)
    v = _standardized(ranks_v)
    observed = v.T @ a  # [F, r]
    fast = (
        _shifted_products(a, v, null)
        if isinstance(null, CircularShifts)
        else _swapped_products(a, v, null)
    )
    if fast is not None:
        return (observed[0], fast[0]) if single else (observed, fast)
    result = np.empty((facts, null.draws, rank))
    every = np.arange(n)
    step = max(1, _CHUNK // max(n * facts, 1))
    for first in range(0, null.draws, step):
        block = slice(first, min(first + step, null.draws))
        source = null.source(every, block)  # [d, n]
        if (source >= 0).all():
            result[:, block] = v.T[:, source] @ a  # [F, d, n] @ [n, r]
        else:  # the same ranks over the pairs this draw has, the real pairing's too
            own = np.where(source >= 0, every, -1)
            for f in range(facts):
                result[f, block] = (
                    _paired_pearson(ranks_a, ranks_v[:, f], source)
                    - _paired_pearson(ranks_a, ranks_v[:, f], own)
                    + observed[f]
                )
    if single:
        return observed[0], result[0]
    return observed, result


def _gathered_sums(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``sum_b table[rows[d, b], b]`` for every draw ``d``, in blocks: ``table`` ``[M, B, F, r]``,
    ``rows`` ``[D, B]``; output ``[F, D, r]``."""
    draws, episodes = rows.shape
    result = np.empty((table.shape[2], draws, table.shape[3]))
    step = max(1, _CHUNK // max(episodes * table.shape[2] * table.shape[3], 1))
    columns = np.arange(episodes)
    for first in range(0, draws, step):
        block = slice(first, min(first + step, draws))
        result[:, block] = table[rows[block], columns].sum(axis=1).transpose(1, 0, 2)
    return result


def _shifted_products(a: np.ndarray, v: np.ndarray, shifts: CircularShifts) -> np.ndarray:
    """Every circular-shift draw's ``sum_i v[source_d(i)] a[i]``, from each episode's circular
    cross-correlation of ``v`` and ``a`` at every lag (one FFT per episode length) instead of one
    lookup per observation and draw: ``[F, D, r]``.

    Shape:
        - a: ``[n, r]``; v: ``[n, F]`` (valid order)
    """
    episodes = len(shifts.lengths)
    longest = max(int(shifts.lengths.max(initial=0)), 1)
    lags = np.zeros((longest, episodes, v.shape[1], a.shape[1]))  # [lag, B, F, r]
    for length in np.unique(shifts.lengths[shifts.lengths > 0]):
        members = np.flatnonzero(shifts.lengths == length)
        at = shifts.order[shifts.start[members][:, None] + np.arange(length)]  # [Bm, m]
        fa = np.fft.rfft(a[at], axis=1)  # [Bm, m', r]
        fv = np.fft.rfft(v[at], axis=1)  # [Bm, m', F]
        cross = fa[:, :, None, :] * np.conj(fv)[:, :, :, None]  # [Bm, m', F, r]
        lags[:length, members] = np.fft.irfft(cross, n=int(length), axis=1).transpose(1, 0, 2, 3)
    return _gathered_sums(lags, shifts.shifts)


def _swapped_products(a: np.ndarray, v: np.ndarray, swaps: EpisodeSwaps) -> np.ndarray | None:
    """Every episode-swap draw's ``sum_i v[source_d(i)] a[i]`` when every episode is analysed
    at the same steps (so every draw pairs every observation), from the ``[B, B]`` table of
    each pair of episodes' summed products; None otherwise: ``[F, D, r]``.

    Shape:
        - a: ``[n, r]``; v: ``[n, F]`` (valid order)
    """
    valid = swaps.index >= 0
    if not (valid == valid[:, :1]).all():
        return None
    steps = np.flatnonzero(valid[:, 0])
    at = swaps.index[steps]  # [L', B]
    cross = np.einsum("tbf,tcj->bcfj", v[at], a[at])  # [B (facts of), B (latents of), F, r]
    return _gathered_sums(cross, swaps.perms)


def _paired_pearson(ranks_a: np.ndarray, ranks_v: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Pearson of ``ranks_a`` ``[n, r]`` with ``ranks_v[source]`` over the pairs that exist
    (``source >= 0``), per draw: ``[d, r]`` (NaN for a draw with a constant side)."""
    centre_a = ranks_a - ranks_a.mean(axis=0)
    centre_v = ranks_v - ranks_v.mean()
    paired = (source >= 0).astype(np.float64)  # [d, n]
    v = np.where(source >= 0, centre_v[np.maximum(source, 0)], 0.0)  # [d, n]
    count = paired.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_a, sum_v = paired @ centre_a, v.sum(axis=1, keepdims=True)
        cov = v @ centre_a - sum_a * sum_v / count
        var_a = paired @ centre_a**2 - sum_a**2 / count
        var_v = (v**2).sum(axis=1, keepdims=True) - sum_v**2 / count
        rho = cov / np.sqrt(var_a * var_v)
    tiny = 1e-9 * max(1.0, float(len(ranks_v)) ** 3)
    return np.where((var_a > tiny) & (var_v > tiny) & (count >= 2), rho, np.nan)


def recentred_means(hits: np.ndarray, at: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each draw's mean of ``hits`` at the partners of the picks ``at`` (``[P]``; ``source``
    ``[D, P]``, -1: no partner), recentred as in :func:`spearman_null`: minus the picks' own
    mean over the picks that have a partner in that draw, plus their mean over all picks. NaN
    for a draw where no pick has a partner.

    Shape:
        - hits: ``[n]``; output: ``[D]``
    """
    own = np.where(source >= 0, np.asarray(at)[None, :], -1)
    observed = float(np.asarray(hits, dtype=np.float64)[at].mean()) if len(at) else np.nan
    return paired_means(hits, source, axis=1) - paired_means(hits, own, axis=1) + observed


def paired_means(hits: np.ndarray, source: np.ndarray, axis: int) -> np.ndarray:
    """The mean of ``hits`` at ``source`` along ``axis``, over the picks that have a partner
    (``source >= 0``); NaN where none has.

    Shape:
        - hits: ``[n]`` (valid order); source: ``[D, ...]``; output: ``source`` without ``axis``
    """
    paired = source >= 0
    values = np.where(paired, np.asarray(hits, dtype=np.float64)[np.maximum(source, 0)], 0.0)
    count = paired.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, values.sum(axis=axis) / np.maximum(count, 1), np.nan)
