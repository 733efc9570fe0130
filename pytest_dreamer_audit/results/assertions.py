"""Saliency assertions: turn an explanation's numbers into pass/fail checks.

Every helper raises ``AssertionError`` with the measured number, the threshold and, when given,
the path of the rendered evidence, and returns the measured value when it passes. Torch-free:
they read the plain arrays of an :class:`~pytest_dreamer_audit.results.explanation.Explanation`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple, NoReturn

import numpy as np

from ..errors import ConfigError
from .claims import score_event_test
from .config import ClaimConfig
from .episode_swaps import too_few_episodes
from .explanation import Explanation
from .imagination import HeadPrediction, ImaginationTable, PredictionError
from .semantics import (
    Event,
    EventTest,
    FactValues,
    event_mask,
    factor_event_test,
    factor_fact_test,
)
from .trustworthy import TrustThresholds, TrustVerdict, trust_verdicts

__all__ = [
    "Event",
    "FactorMatch",
    "Reconstruction",
    "Stability",
    "assert_action_fractions",
    "assert_deletion_beats_random",
    "assert_deletion_curve_beats_random",
    "assert_differs_from_random_weights",
    "assert_factors_stable",
    "assert_imagination_beats_persistence",
    "assert_latent_knows",
    "assert_mean_return",
    "assert_not_just_confidence",
    "assert_reconstruction",
    "assert_reward_prediction",
    "assert_some_factor_coincides",
    "assert_some_factor_tracks",
    "assert_top_observations_coincide",
    "assert_trustworthy",
    "event_mask",
]

Evidence = str | os.PathLike[str] | None


def _fail(message: str, evidence: Evidence) -> NoReturn:
    __tracebackhide__ = True
    where = f"\nEvidence: {os.fspath(evidence)}" if evidence is not None else ""
    raise AssertionError(f"dreamer-audit: {message}{where}")


def _metric(explanation: Explanation, name: str, why_missing: str, evidence: Evidence) -> float:
    __tracebackhide__ = True
    value = float(getattr(explanation.metrics, name))
    if math.isnan(value):
        _fail(f"{name} was not computed ({why_missing})", evidence)
    return value


class FactorMatch(NamedTuple):
    """The factor that best meets a semantic assertion, and its measured value."""

    factor: int
    value: float


class Reconstruction(NamedTuple):
    """What :func:`assert_reconstruction` measured."""

    relative_error: float
    explained_variance: float


class Stability(NamedTuple):
    """What :func:`assert_factors_stable` measured (NaN: not computed)."""

    min_cosine: float
    mean_cosine: float
    topk_jaccard: float


def _describe(event: Event) -> str:
    if isinstance(event, str):
        return repr(event)
    return getattr(event, "__name__", "the event")


def _claims(level: float, k: int | None = None) -> ClaimConfig:
    return ClaimConfig(level=level) if k is None else ClaimConfig(level=level, k=k)


def _enough_episodes(explanation: Explanation, level: float, evidence: Evidence) -> None:
    """Refuse a claim that the episode-swap null cannot make with this few episodes."""
    __tracebackhide__ = True
    why = too_few_episodes(explanation.episodes, level)
    if why is not None:
        _fail(f"cannot claim anything at level {level}: {why}", evidence)


def _why_not(p: float, shift_p: float, level: float, by: str = "", both_p: float = math.nan) -> str:
    """Why a value is not beyond chance: the third null alone (the recorded fact ``by`` may
    explain it; ``both_p``: the p-value under the first two), only the episode swap ("time"),
    or every null."""
    if by and both_p <= level < p:
        return (
            f"explained by {by}: it beats circular shifts and the facts of other episodes "
            f"(p = {both_p:.3g}) but not shuffles within the values of {by} (p = {p:.3g}), so "
            f"{by} may explain it and it is not claimed as this fact"
        )
    if not math.isnan(shift_p) and shift_p <= level:
        return (
            f"not beyond chance at level {level}: it beats circular shifts (p = {shift_p:.3g}) "
            "but not the facts of other episodes at the same steps, so the step explains it "
            "(time), not this episode's fact"
        )
    return f"not beyond chance at level {level}"


def assert_top_observations_coincide(
    explanation: Explanation,
    event: Event,
    *,
    min_precision: float,
    k: int | None = None,
    level: float = 0.05,
    evidence: Evidence = None,
) -> float:
    """The top-k observations of the rollouts coincide with ``event`` often enough, and more
    often than chance.

    Precision is the fraction of all rollouts' top-k picks at which the event holds; it must
    reach ``min_precision`` and beat both nulls (circular time shifts of the event within each
    episode, and the event of other episodes at the same steps: ``results/two_nulls.py``) with
    a p-value at most ``level`` (the larger of the two; one-sided, the direction being stated),
    and where those leave it possible, shuffles of the event within the other recorded fact
    that best goes with the score (``results/strata.py``): one that beats only the first two
    fails as "explained by" that fact. The message gives the base rate, both nulls' 95%
    quantiles and the effect (precision minus the swap null's mean) with its episode-bootstrap
    95% interval.
    """
    __tracebackhide__ = True
    _enough_episodes(explanation, level, evidence)
    test = score_event_test(explanation, event, _claims(level), k, one_sided=True)
    if math.isnan(test.precision):
        _fail(f"the rollouts have no top-{test.k} observations to test", evidence)
    context = (
        f"base rate {test.base_rate:.1%}, null 95% quantiles {test.null_q95:.1%} (circular "
        f"shifts) and {test.swap_q95:.1%} (other episodes), p = {test.p_above:.3g}; effect "
        f"{test.effect:+.1%} [{test.effect_low:+.1%}, {test.effect_high:+.1%}]"
    )
    if test.precision < min_precision or test.p_above > level:
        why = (
            f"below the required {min_precision:.1%}"
            if test.precision < min_precision
            else _why_not(
                test.p_above,
                test.shift_p_above,
                level,
                test.controlled_for,
                test.uncontrolled_p_above,
            )
        )
        _fail(
            f"top-{test.k} observations coincide with {_describe(event)} in "
            f"{test.precision:.1%} of {test.picks} picks over {explanation.episodes} rollouts, "
            f"{why} ({context})",
            evidence,
        )
    return test.precision


def _per_factor(values: np.ndarray, percent: bool) -> str:
    def one(value: float) -> str:
        if math.isnan(value):
            return "n/a"
        return f"{value:.1%}" if percent else f"{value:+.3f}"

    return ", ".join(f"{j}: {one(float(v))}" for j, v in enumerate(values))


def _effect(test: EventTest, factor: int) -> str:
    """The factor's rank-correlation effect over the episode swap's mean, with its bootstrap
    interval."""
    values = [float(v[factor]) for v in (test.test.effects, test.test.effect_low,
                                         test.test.effect_high)]  # fmt: skip
    shown = [f"{v:+.3f}" for v in values]
    return f"effect {shown[0]} [{shown[1]}, {shown[2]}] over other episodes"


def _quantiles(test: EventTest, spec: str) -> str:
    """Each null's 95% quantile of the best claimable factor's value, the third where it ran
    (``results/strata.py``)."""
    shown = [f"{format(test.null_q95, spec)} (circular shifts)",
             f"{format(test.swap_q95, spec)} (other episodes)"]  # fmt: skip
    if test.control is not None:
        shown.append(f"{format(test.control.q95, spec)} (shuffles within {test.control.by})")
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _excluded(test: EventTest) -> str:
    skipped = [f"{s.factor} {s.label}" for s in test.statuses if not s.claimable]
    return f"; making no claims: {'; '.join(skipped)}" if skipped else ""


def _best_claim(test: EventTest, strength: np.ndarray, what: str, evidence: Evidence) -> int:
    __tracebackhide__ = True
    claimable = np.array([s.claimable for s in test.statuses])
    if not claimable.any():
        _fail(f"no factor may claim {what}{_excluded(test)}", evidence)
    return int(np.nanargmax(np.where(claimable, strength, np.nan)))


def assert_some_factor_coincides(
    explanation: Explanation,
    event: Event,
    *,
    min_precision: float,
    k: int | None = None,
    level: float = 0.05,
    evidence: Evidence = None,
) -> FactorMatch:
    """Some factor's ``k`` most exciting observations coincide with ``event`` often enough and
    beyond chance.

    ``k`` defaults to :meth:`ClaimConfig.picks` (20, or each factor's top 5% when that is
    more). Only factors that may claim (stable, not an episode-start marker:
    ``semantics.factor_status``) count; the best must reach ``min_precision`` and beat the
    null of the best of them (maxT) under both nulls, circular time shifts of the event and
    the event of other episodes at the same steps (``results/two_nulls.py``), at ``level``,
    on the rank-biserial correlation of the factor's whole activation with the event (its
    picks come from a tie where the activation saturates, so a test on them alone has little
    power), and where those leave a claim possible, shuffles of the event within the other
    recorded fact that best goes with the strongest factor (``results/strata.py``). One that
    beats only the shifts fails as "time", one that beats all but the last as "explained by"
    that fact. The message lists every factor's precision, the base rate and each null's 95%
    quantile.

    Returns:
        The best factor and its precision.
    """
    __tracebackhide__ = True
    _enough_episodes(explanation, level, evidence)
    test = factor_event_test(explanation, event, _claims(level, k), k)
    what = f"{_describe(event)}"
    best = _best_claim(test, test.values, what, evidence)
    precision, p = float(test.values[best]), float(test.controlled_p_values[best])
    context = (
        f"base rate {test.base_rate:.1%}; tested on the rank correlation of its activation "
        f"with the event, {float(test.test.values[best]):+.3f} against best-of-factors null "
        f"95% quantiles {_quantiles(test, '+.3f')}, p = {p:.3g}; {_effect(test, best)}; "
        f"per factor: {_per_factor(test.values, percent=True)}{_excluded(test)}"
    )
    if precision < min_precision or p > level:
        why = (
            f"below the required {min_precision:.1%}"
            if precision < min_precision
            else _why_not(
                p,
                float(test.test.shift_p[best]),
                level,
                test.controlled_for,
                float(test.p_values[best]),
            )
        )
        _fail(
            f"no factor's top-{test.k} observations coincide with {what} enough: the best, "
            f"factor {best}, in {precision:.1%}, {why} ({context})",
            evidence,
        )
    return FactorMatch(best, precision)


def assert_some_factor_tracks(
    explanation: Explanation,
    fact: FactValues,
    *,
    min_abs_spearman: float,
    level: float = 0.05,
    evidence: Evidence = None,
) -> FactorMatch:
    """Some factor's activation rises or falls with ``fact`` (e.g. Freeway's ``chicken_row``)
    beyond chance.

    The measure is the Spearman correlation over the analysed steps; among the factors that may
    claim, the one with the largest ``|rho|`` must reach ``min_abs_spearman`` and beat the null
    of the best of them (maxT) under both nulls (circular time shifts of the fact, and the fact
    of other episodes at the same steps) at ``level`` and, where those leave a claim possible,
    shuffles of the fact within the other recorded fact that best goes with the strongest
    factor (``results/strata.py``); one that beats only the shifts fails as "time", one that
    beats all but the last as "explained by" that fact.

    Returns:
        The best factor and its (signed) correlation.
    """
    __tracebackhide__ = True
    _enough_episodes(explanation, level, evidence)
    test = factor_fact_test(explanation, fact, _claims(level))
    claimable = np.array([s.claimable for s in test.statuses])
    if np.isnan(test.values[claimable]).all() and claimable.any():
        _fail(
            f"{_describe(fact)} or the activation of every factor that may claim is constant "
            f"over the valid steps, so no factor can track it{_excluded(test)}",
            evidence,
        )
    best = _best_claim(test, np.abs(test.values), _describe(fact), evidence)
    rho, p = float(test.values[best]), float(test.controlled_p_values[best])
    if abs(rho) < min_abs_spearman or p > level:
        why = (
            f"below the required |rho| >= {min_abs_spearman:.3f}"
            if abs(rho) < min_abs_spearman
            else _why_not(
                p,
                float(test.test.shift_p[best]),
                level,
                test.controlled_for,
                float(test.p_values[best]),
            )
        )
        _fail(
            f"no factor tracks {_describe(fact)}: the best, factor {best}, has Spearman "
            f"{rho:+.3f}, {why} (best-of-factors null 95% quantiles of |rho| "
            f"{_quantiles(test, '.3f')}, p = {p:.3g}; {_effect(test, best)}; per factor: "
            f"{_per_factor(test.values, percent=False)}{_excluded(test)})",
            evidence,
        )
    return FactorMatch(best, rho)


def assert_factors_stable(
    explanation: Explanation,
    *,
    min_cosine: float | None = None,
    min_mean_cosine: float | None = None,
    min_topk_jaccard: float | None = None,
    evidence: Evidence = None,
) -> Stability:
    """Factors and top-k sets survive refitting the NMF from other random inits. Returns the
    three stability metrics (NaN where not computed and not asked for)."""
    __tracebackhide__ = True
    why = (
        "stability_refits is 0 (set --dreamer-stability-refits >= 1), or, for the top-k "
        "Jaccard, the score is surprise, whose top observations do not depend on the NMF"
    )
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
    m = explanation.metrics
    return Stability(m.stability_min_cosine, m.stability_mean_cosine, m.stability_topk_jaccard)


def assert_differs_from_random_weights(
    explanation: Explanation, *, max_spearman: float, evidence: Evidence = None
) -> float:
    """Sanity check: scores of the trained agent are not those of random weights."""
    __tracebackhide__ = True
    value = _metric(
        explanation,
        "sanity_spearman",
        "the explanation was made without the agent, or the scores of the trained or the "
        "randomized agent are constant (a Spearman correlation is undefined then)",
        evidence,
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
) -> Reconstruction:
    """The NMF reproduces the posteriors well enough for its factors to mean something.
    Returns the relative error and the explained variance."""
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
    return Reconstruction(m.relative_error, m.explained_variance)


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
    explanation: Explanation, *, min_return: float, evidence: Evidence = None
) -> float:
    """The mean return over the audited rollouts (which may be truncated at ``steps``)."""
    __tracebackhide__ = True
    returns = explanation.returns
    mean = float(returns.mean())
    if mean < min_return:
        _fail(
            f"mean return is {mean:.3f} (std {float(returns.std()):.3f} over "
            f"{explanation.episodes} episodes of up to {explanation.steps} steps), below the "
            f"required {min_return:.3f}",
            evidence,
        )
    return mean


def assert_action_fractions(
    explanation: Explanation,
    *,
    min_fractions: Mapping[str, float] | None = None,
    max_fractions: Mapping[str, float] | None = None,
    evidence: Evidence = None,
) -> dict[str, float]:
    """Constrain how often each action (by name, e.g. ``"up"``) is chosen on valid steps."""
    __tracebackhide__ = True
    names = explanation.action_names
    chosen = explanation.actions[explanation.valid]
    fractions = {name: float((chosen == i).mean()) for i, name in enumerate(names)}
    bounds: dict[str, Any] = {**(min_fractions or {}), **(max_fractions or {})}
    unknown = sorted(set(bounds) - set(names))
    if unknown:
        raise ConfigError(f"unknown actions {unknown}; {explanation.game} has {list(names)}")
    for name, low in (min_fractions or {}).items():
        if fractions[name] < low:
            _fail(
                f"action {name!r} is chosen {fractions[name]:.1%} of steps, below {low:.1%}; "
                f"all fractions: {_percentages(fractions)}",
                evidence,
            )
    for name, high in (max_fractions or {}).items():
        if fractions[name] > high:
            _fail(
                f"action {name!r} is chosen {fractions[name]:.1%} of steps, above {high:.1%}; "
                f"all fractions: {_percentages(fractions)}",
                evidence,
            )
    return fractions


def _percentages(fractions: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.1%}" for name, value in fractions.items())


def assert_latent_knows(
    explanation: Explanation, fact: str, *, margin: float, evidence: Evidence = None
) -> float:
    """The trained latent predicts ``fact`` better than every control by at least ``margin``.

    The probes (``results/probes.py``, computed with ``--dreamer-probes true``) give an
    out-of-fold AUC (events) or R^2 (graded facts) per input; the best trained input (posterior,
    deterministic state, both) must beat the best control (the randomized network, the raw
    observation, the time step) by ``margin``. Returns the difference.
    """
    __tracebackhide__ = True
    rows = {row.fact: row for row in explanation.probes}
    if not rows:
        _fail("the probes were not computed; run with --dreamer-probes true", evidence)
    if fact not in rows:
        raise ConfigError(f"no probe of {fact!r}; the probed facts are {', '.join(rows)}")
    row = rows[fact]
    (latent, best), (control, rival) = row.best_latent, row.best_control
    measure = "AUC" if row.kind == "event" else "R^2"
    table = ", ".join(f"{name} {value:.3f}" for name, value in row.scores)
    if math.isnan(best) or math.isnan(rival):
        _fail(f"the probes of {fact!r} are undefined (too few events per fold): {table}", evidence)
    if best - rival < margin:
        _fail(
            f"the latent does not know {fact!r} beyond its controls: the best trained input, "
            f"{latent}, reaches {measure} {best:.3f}, the best control, {control}, {rival:.3f}; "
            f"a margin of {margin:.3f} is required (all inputs: {table})",
            evidence,
        )
    return best - rival


def assert_deletion_curve_beats_random(
    explanation: Explanation, head: str, *, min_area: float, evidence: Evidence = None
) -> float:
    """Deleting the score's top-ranked (step, episode, categorical) entries moves ``head``
    (``actor``, ``value``, ``reward``, ``discount`` or ``decoder``) more than deleting random
    ones: the deletion curve's area over the random curve (``analysis/curves.py``, computed with
    ``--dreamer-curves true``) must reach ``min_area``. Returns the area."""
    __tracebackhide__ = True
    curves = {(c.head, c.kind): c for c in explanation.curves}
    if not curves:
        _fail("the deletion curves were not computed; run with --dreamer-curves true", evidence)
    key = (head, "deletion")
    if key not in curves:
        heads = sorted({name for name, _ in curves})
        raise ConfigError(f"no deletion curve of {head!r}; the heads are {', '.join(heads)}")
    curve = curves[key]
    if curve.area < min_area:
        points = ", ".join(
            f"{f:.0%}: {s:.4g} vs {r:.4g}"
            for f, s, r in zip(curve.fractions, curve.score_curve, curve.random_curve, strict=True)
        )
        _fail(
            f"deleting the top-ranked entries moves the {head} head by {curve.area:+.4g} more than "
            f"random orders on average over the fractions, below the required {min_area:+.4g} "
            f"(score vs random: {points})",
            evidence,
        )
    return curve.area


def assert_trustworthy(
    explanation: Explanation,
    *,
    thresholds: TrustThresholds | None = None,
    evidence: Evidence = None,
) -> tuple[TrustVerdict, ...]:
    """Run every default trust check (``results/trustworthy.TRUST_CHECKS``) and fail naming
    every check that failed, with its number, value and threshold.

    The checks and their thresholds (``TrustThresholds``; pass your own to override some,
    e.g. ``TrustThresholds(max_deletion_p_value=0.1)``): 1 reconstruction, 2 stability, 3 the
    sanity check on the posterior's activation scores over several permutation seeds
    (``|rho|``), 4 the posterior reads the deterministic state, 5 the score is not just
    confidence, 6 deleting the top-ranked entries moves the trained actor beyond permuted
    actors (a p-value), 7 deleting the
    bottom-ranked entries moves it less than random ones, 8 the reward head predicts the
    rollouts' rewards. A check whose metric could not be computed (no agent, a constant score,
    no reward in the rollouts) fails. ``pytest_dreamer_audit.planted`` lists the planted
    models each check fails.

    Example:
        >>> assert_trustworthy(  # doctest: +SKIP
        ...     explanation, thresholds=TrustThresholds(max_memory_spearman=0.95)
        ... )

    Returns:
        Every check's verdict, in order (all passed).
    """
    __tracebackhide__ = True
    verdicts = trust_verdicts(explanation.metrics, thresholds or TrustThresholds())
    failed = [v for v in verdicts if not v.passed]
    if failed:
        numbers = ", ".join(str(v.check.number) for v in failed)
        lines = "\n".join(f"  {v.describe()}" for v in failed)
        passed = ", ".join(str(v.check.number) for v in verdicts if v.passed) or "none"
        _fail(
            f"{len(failed)} of {len(verdicts)} trust checks failed ({numbers}; passed: "
            f"{passed}):\n{lines}",
            evidence,
        )
    return verdicts


def _imagination(explanation: Explanation, evidence: Evidence) -> ImaginationTable:
    __tracebackhide__ = True
    if explanation.imagination is None:
        _fail(
            "the imagination audit was not computed; run with --dreamer-imagination 1,3,5,10 "
            "(or ExplainConfig(imagination=(1, 3, 5, 10)))",
            evidence,
        )
    return explanation.imagination


def assert_imagination_beats_persistence(
    explanation: Explanation,
    *,
    horizon: int,
    channel: int | None = None,
    level: float = 0.05,
    evidence: Evidence = None,
) -> PredictionError:
    """The world model's open-loop prediction of ``o_{t+h}`` beats persistence and the
    randomized dynamics (``analysis/imagination.py``, computed with ``--dreamer-imagination``).

    From the posterior at every analysed step, the prior rolled ``horizon`` steps under the
    actions taken and decoded must have a lower per-cell Bernoulli negative log-likelihood of
    the real ``o_{t+h}`` than ``o_t`` (calibrated persistence) and than the same rollout with
    the dynamics permuted, each with a one-sided episode-level sign-flip p-value at or below
    ``level``. ``channel`` picks one observation channel (None: all of them).

    Example:
        >>> assert_imagination_beats_persistence(explanation, horizon=5)  # doctest: +SKIP

    Returns:
        The measured :class:`~pytest_dreamer_audit.results.imagination.PredictionError` row.
    """
    __tracebackhide__ = True
    row = _imagination(explanation, evidence).error(horizon, channel)
    numbers = (
        f"model {row.model_nll:.4f} nats per cell, persistence {row.persistence_nll:.4f} (p = "
        f"{row.p_persistence:.3g}), randomized dynamics {row.randomized_nll:.4f} (p = "
        f"{row.p_randomized:.3g}), ceiling {row.ceiling_nll:.4f}; accuracy on the "
        f"{row.changed_fraction:.1%} of cells that change {row.model_changed_accuracy:.1%} "
        f"(randomized {row.randomized_changed_accuracy:.1%}); {row.starts} starts"
    )
    beaten = [
        name
        for name, null, p in (
            ("persistence", row.persistence_nll, row.p_persistence),
            ("the randomized dynamics", row.randomized_nll, row.p_randomized),
        )
        if not (row.model_nll < null and p <= level)  # NaN fails
    ]
    if beaten:
        smallest = 0.5**explanation.episodes
        hint = (
            f"; with {explanation.episodes} episodes no p-value can go below {smallest:.3g}, "
            "record more episodes"
            if smallest > level
            else ""
        )
        _fail(
            f"the world model's {horizon}-step imagination ({row.channel_name}) does not beat "
            f"{' or '.join(beaten)} at level {level}: {numbers}{hint}",
            evidence,
        )
    return row


def assert_reward_prediction(
    explanation: Explanation, *, horizon: int, min_auc: float, evidence: Evidence = None
) -> HeadPrediction:
    """The reward head, read on the state imagined ``horizon`` steps ahead, tells the
    transitions that paid from those that did not: ROC AUC at least ``min_auc`` and above
    both nulls (the last real reward as the prediction, and the randomized dynamics'
    imagined state). Computed with ``--dreamer-imagination``.

    Returns:
        The measured :class:`~pytest_dreamer_audit.results.imagination.HeadPrediction` row.
    """
    __tracebackhide__ = True
    row = _imagination(explanation, evidence).head(horizon)
    if math.isnan(row.reward_auc):
        _fail(
            f"the reward prediction at horizon {horizon} is undefined: {row.reward_events} of "
            f"{row.starts} imagined transitions were rewarded (an AUC needs both); record more "
            "or longer episodes",
            evidence,
        )
    nulls = {
        "persistence": row.reward_persistence_auc,
        "randomized dynamics": row.reward_randomized_auc,
    }
    numbers = (
        f"AUC {row.reward_auc:.3f} (persistence {row.reward_persistence_auc:.3f}, randomized "
        f"dynamics {row.reward_randomized_auc:.3f}, ceiling {row.reward_ceiling_auc:.3f}) over "
        f"{row.starts} starts, {row.reward_events} rewarded"
    )
    if row.reward_auc < min_auc:
        _fail(
            f"the reward head {horizon} steps into imagination reaches {numbers}, below the "
            f"required {min_auc:.3f}",
            evidence,
        )
    beaten = [name for name, value in nulls.items() if not row.reward_auc > value]
    if beaten:
        _fail(
            f"the reward head {horizon} steps into imagination does not beat "
            f"{' or '.join(beaten)}: {numbers}",
            evidence,
        )
    return row
