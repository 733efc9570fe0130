"""How alike two explanations are: Hungarian-matched prototype cosines and top-k set overlap.

Torch-free (NumPy only; the matching is ``assignment.py``'s, not ``scipy.optimize``'s, whose
import would cost more than every matching of an audit): the stability metrics
(``analysis/trust.py``) and the baselines (``baseline.py``) compare factors and top
observations with the same two functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .assignment import max_weight_assignment

__all__ = ["jaccard", "matched_cosines", "top_pairs"]


def matched_cosines(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Cosine of each reference prototype with its Hungarian-matched partner in ``other``.

    Shape:
        - reference, other: ``[r, M]`` prototype rows (any scale); output: ``[r]`` float64
    """

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    cosine = unit(reference) @ unit(other).T
    rows, cols = max_weight_assignment(cosine)
    return np.asarray(cosine[rows, cols])


def top_pairs(table: np.ndarray) -> set[tuple[int, int]]:
    """A ``[B, k]`` table of top steps (``-1`` = no pick) as a set of ``(episode, step)``."""
    return {(b, int(t)) for b, row in enumerate(np.asarray(table).tolist()) for t in row if t >= 0}


def jaccard(
    first: Iterable[tuple[int, int]], second: Iterable[tuple[int, int]], *, empty: float = math.nan
) -> float:
    """``|A & B| / |A | B|``; ``empty`` when both sets are empty (nothing to compare)."""
    a, b = set(first), set(second)
    return len(a & b) / len(a | b) if a | b else empty
