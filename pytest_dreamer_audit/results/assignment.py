"""The linear assignment problem for small matrices, without ``scipy.optimize``.

Matching prototypes (``similarity.py``) needs one function of ``scipy.optimize``, and importing
that package costs 0.4-0.9 s in every cold process on the 2-core benchmark machine (it imports
its whole optimizer and ``scipy.linalg``; issue 33): more than every matching of a 64 x 50
audit together. The matrices here are ``r x r'`` with r the NMF rank (10 by default), so up to
:data:`NUMPY_LARGEST` the classic shortest-augmenting-path Hungarian algorithm with row and
column potentials (Kuhn-Munkres as refined by Jonker and Volgenant; O(n^2 m)) is exact and fast
enough in NumPy; larger matrices go to SciPy.
``tests/test_assignment.py`` checks it against ``scipy.optimize.linear_sum_assignment`` on
random matrices of every shape (the same pairs where the optimum is unique, the same optimal
total where it is not) and against trying every permutation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NUMPY_LARGEST", "max_weight_assignment"]

HUGE_EXPONENT = 512
"""Weights of magnitude 2**512 (about 1e154) and above are scaled down first: the reduced costs
subtract weights, which overflows near the float64 limit (1.8e308) and then picks a worse pair."""

NUMPY_LARGEST = 64
"""The largest ``min(n, m)`` solved here (the default rank is 10): 11 ms for random weights at
64 x 64 on the benchmark machine and up to 58 ms for structured ones (i + j, small integers,
constants), below the 0.4-0.9 s import it saves (at 256 x 256 structured weights took 0.6-1.3
s, more than the import); past it the cost grows as n^2 NumPy calls, and SciPy's compiled
solver is used (ranks up to the settings' 4,096 stay practical)."""


def max_weight_assignment(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairing of rows with columns, each used at most once and ``min(n, m)`` pairs, whose
    total weight is largest (``scipy.optimize.linear_sum_assignment(weights, maximize=True)``).

    Shape:
        - weights: ``[n, m]`` finite numbers; output: ``rows`` and ``cols``, ``[min(n, m)]``
          int64 each, ``rows`` ascending.

    Ties (several pairings of the same best total) are broken as SciPy breaks them wherever the
    tests compared them (duplicated rows pair in order); where they are not, the pairs may
    differ from SciPy's, with the same total.

    Raises:
        ValueError: ``weights`` is not a 2-D array of finite real numbers.
    """
    if np.iscomplexobj(weights):
        raise ValueError("the weights must be real numbers (complex found)")
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"the weights must be a 2-D matrix, got shape {weights.shape}")
    if not np.isfinite(weights).all():
        raise ValueError("the weights must be finite numbers (NaN or infinity found)")
    if min(weights.shape) > NUMPY_LARGEST:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(weights, maximize=True)
        return rows.astype(np.int64), cols.astype(np.int64)
    if weights.size and (exponent := int(np.frexp(np.abs(weights).max())[1])) > HUGE_EXPONENT:
        # differences of weights near the float64 limit overflow: scale by a power of two,
        # which is exact and keeps every comparison
        weights = np.ldexp(weights, -exponent)
    if weights.shape[0] > weights.shape[1]:
        cols, rows = max_weight_assignment(weights.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    row_of = _shortest_augmenting_paths(-weights)  # minimise the cost
    cols = np.flatnonzero(row_of >= 0)
    rows = row_of[cols]
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def _shortest_augmenting_paths(cost: np.ndarray) -> np.ndarray:
    """For each column of ``cost`` (``[n, m]``, n <= m), the row assigned to it (-1: none), of
    a minimum-cost assignment of every row: each row is added along the shortest augmenting path
    of the reduced costs (Dijkstra over the columns), and the row and column potentials move so
    that every reduced cost stays non-negative.
    """
    n, m = cost.shape
    # Column 0 is the virtual start of every path; the real columns are 1..m.
    row_potential = np.zeros(n)
    col_potential = np.zeros(m + 1)
    row_of = np.full(m + 1, -1, dtype=np.int64)
    for row in range(n):
        row_of[0] = row
        column = 0
        slack = np.full(m + 1, np.inf)
        way = np.zeros(m + 1, dtype=np.int64)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[column] = True
            source = row_of[column]
            free = ~used[1:]
            reduced = cost[source] - row_potential[source] - col_potential[1:]
            closer = free & (reduced < slack[1:])
            slack[1:][closer] = reduced[closer]
            way[1:][closer] = column
            candidates = np.where(free, slack[1:], np.inf)
            nearest = int(np.argmin(candidates)) + 1
            delta = candidates[nearest - 1]
            row_potential[row_of[used]] += delta
            col_potential[used] -= delta
            slack[~used] -= delta
            column = nearest
            if row_of[column] == -1:
                break
        while column != 0:  # flip the pairs along the path back to the start
            before = way[column]
            row_of[column] = row_of[before]
            column = before
    return row_of[1:]
