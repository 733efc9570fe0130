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

NUMPY_LARGEST = 256
"""The largest ``min(n, m)`` solved here: 0.11 s at 256 x 256 on the benchmark machine (15 ms
at 64), below the import it saves; past it the cost grows as n^2 NumPy calls, and SciPy's
compiled solver is used (ranks up to the settings' 4,096 stay practical)."""


def max_weight_assignment(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairing of rows with columns, each used at most once and ``min(n, m)`` pairs, whose
    total weight is largest (``scipy.optimize.linear_sum_assignment(weights, maximize=True)``).

    Shape:
        - weights: ``[n, m]`` finite numbers; output: ``rows`` and ``cols``, ``[min(n, m)]``
          int64 each, ``rows`` ascending.

    Raises:
        ValueError: ``weights`` is not a 2-D array of finite numbers.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"the weights must be a 2-D matrix, got shape {weights.shape}")
    if not np.isfinite(weights).all():
        raise ValueError("the weights must be finite numbers (NaN or infinity found)")
    if min(weights.shape) > NUMPY_LARGEST:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(weights, maximize=True)
        return rows.astype(np.int64), cols.astype(np.int64)
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
