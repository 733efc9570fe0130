"""Does the latent code carry a game fact, beyond what the screen or the clock already give?

A probe is a cross-validated linear model from one input to one fact: logistic regression scored
by AUC for yes/no facts, ridge regression scored by R^2 for graded ones, with folds grouped by
episode (an episode never lends steps to both sides of a split). The same probe is fitted on every
input of :func:`probe_table`: the trained posterior, deterministic state and both, and the
controls that say what the number means: the same network with its layers permuted
(``analysis/randomization.py``), the raw observation, and the time step (one-hot, so any
function of time counts). A fact the trained latent predicts no better than the raw observation
is on the screen; one it predicts better than every control is world-model knowledge (in the
POMDP: the cars' speed and direction, which one frame does not show).

NumPy and scikit-learn (imported when a probe runs); torch-free.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from .values import CONTROLS, LATENTS, ProbeRow

__all__ = [
    "CONTROLS",
    "FOLDS",
    "LATENTS",
    "ProbeRow",
    "probe",
    "probe_table",
]

FOLDS = 4
"""Cross-validation folds (grouped by episode)."""
LOGISTIC_C = 0.1
"""Inverse L2 strength of the event probes on standardised features: hundreds of features and
a few hundred steps per fold overfit at C = 1 (out-of-fold AUCs fell towards chance)."""
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
"""Ridge strengths the graded probes choose from (efficient leave-one-out inside each fold)."""
FOLDS = 4
"""Cross-validation folds (grouped by episode)."""
LOGISTIC_C = 0.1
"""Inverse L2 strength of the event probes on standardised features: hundreds of features and
a few hundred steps per fold overfit at C = 1 (out-of-fold AUCs fell towards chance)."""
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
"""Ridge strengths the graded probes choose from (efficient leave-one-out inside each fold)."""


def probe(features: np.ndarray, target: np.ndarray, groups: np.ndarray, event: bool) -> float:
    """Out-of-fold AUC (``event``) or R^2 of a linear probe, folds grouped by ``groups``.

    Features are standardised inside each fold (fitted on its training part). NaN when an event
    does not have both outcomes in some training fold, or when there are fewer groups than folds.

    Shape:
        - features: ``[n, d]``; target, groups: ``[n]``
    """
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(groups)) < FOLDS:
        return math.nan
    target = np.asarray(target, dtype=np.float64)
    predicted = np.empty(len(target))
    for train, test in GroupKFold(n_splits=FOLDS).split(features, target, groups):
        if event and len(np.unique(target[train])) < 2:
            return math.nan
        model = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=LOGISTIC_C, max_iter=500)
            if event
            else RidgeCV(alphas=RIDGE_ALPHAS),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes on separable folds
            model.fit(features[train], target[train])
        head = model.decision_function if event else model.predict
        predicted[test] = head(features[test])
    if event:
        if len(np.unique(target)) < 2:
            return math.nan
        return float(roc_auc_score(target, predicted))
    return float(r2_score(target, predicted))


def probe_table(
    inputs: Mapping[str, np.ndarray],
    facts: list[tuple[str, np.ndarray, bool]],
    groups: np.ndarray,
) -> list[ProbeRow]:
    """Every fact probed from every input.

    Args:
        inputs: input name -> ``[n, d]`` features of the n analysed steps (the names of
            :data:`LATENTS` and :data:`CONTROLS`, or any others).
        facts: ``(name, [n] values, is_event)`` per fact.
        groups: ``[n]`` the episode of each step (the folds' groups).
    """
    rows = []
    for name, values, event in facts:
        scores = tuple(
            (label, probe(features, values, groups, event)) for label, features in inputs.items()
        )
        rows.append(ProbeRow(name, "event" if event else "graded", scores))
    return rows
