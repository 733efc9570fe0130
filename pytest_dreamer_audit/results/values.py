"""The plain-value results that cross process and file boundaries: the trust metrics of an
explanation and what each factor has to do with each game fact.

Standard library only: the plugin's report hooks (imported on every pytest run) and the xdist
controller read them without NumPy or torch. Each has ``to_json`` / ``from_json`` for the edge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from ..errors import ConfigError
from ..jsonvalues import from_json_number, to_json_number

__all__ = [
    "CONTROLS",
    "LATENTS",
    "CurveSet",
    "FactAssociation",
    "ProbeRow",
    "FactorStatus",
    "RandomizationStage",
    "ScoreAssociation",
    "StageKind",
    "TrustMetrics",
]


@dataclass(frozen=True)
class TrustMetrics:
    """How far to trust an explanation; each is a number an assertion can test.

    Attributes:
        relative_error: ``||X - A D||_F / ||X||_F`` (0 is a perfect fit).
        explained_variance: ``1 - ||X - A D||_F^2 / ||X - column means||_F^2`` (1 is perfect).
        iterations: NMF iterations run.
        stability_mean_cosine, stability_min_cosine: prototypes of refits from random inits,
            matched to the main fit's by the Hungarian algorithm on cosine similarity: mean and
            minimum matched cosine (1 = the same factors). NaN when no refits were asked for.
        stability_topk_jaccard: mean Jaccard overlap of the top-k observation sets (all
            rollouts together) between the main fit and each refit; NaN for the surprise score,
            whose top observations do not depend on the NMF (the overlap would be 1 for any
            model).
        confidence_spearman: Spearman correlation of the row scores with the rows' L2 norm
            ``||p||_2`` (the categorical's confidence); near 1 means the score only restates
            confidence.
        sanity_spearman: Spearman correlation, over valid observations, of the observation scores
            with those of the same agent with every layer that makes the posteriors randomized
            (each tensor a permutation of its own entries, so the scale is kept:
            ``analysis/randomization.py``), fed the same observations and actions (Adebayo et
            al. 2018); should be well below the stability values. NaN without an agent.
        posterior_entropy, sanity_entropy: mean entropy (nats) of the trained and of the
            randomized posteriors' categoricals over valid steps: randomized posteriors that
            are uniform (entropy ln K) would make any sanity check pass.
        deletion_topk, deletion_random: mean total-variation change of the actor's action
            distribution when an observation's posterior state is replaced by the prior's
            (mode of each categorical), over the top-k observations and over all valid ones (the
            expectation for k random ones). deletion_ratio = topk / random (> 1: the explanation
            points at states the policy depends on). NaN without an agent. Nearly circular
            under the surprise score (deleting replaces the posterior by the prior, and
            surprise is their KL): a permuted actor reaches 2.9x too; the controlled deletion
            below is the check.
        sanity_posterior_max_abs, sanity_posterior_mean_abs, sanity_posterior_std: the
            sanity check on a quantity the prior cannot move: ``|Spearman|`` of the trained
            posterior's activation scores with those of the randomized network's posteriors,
            over ``analysis/sanity.SANITY_SEEDS`` permutation seeds: the largest (the checked
            value), the mean and the standard deviation over the seeds (``analysis/sanity.py``).
            NaN without an agent.
        memory_max_abs, memory_mean_abs: ``|Spearman|`` of the trained activation scores with
            those of the posteriors recomputed from each observation and another step's
            deterministic state (seeded shuffles): 1 when the posterior ignores its memory
            (reads only the screen); largest and mean over the seeds. NaN without an agent.
        deletion_entry_ratio: the trained actor's total-variation change when the top-ranked
            share (``analysis/trust.DELETION_FRACTION``) of the valid (step, episode,
            categorical) entries is deleted, over the change for random entries.
        deletion_control_median, deletion_control_max: the same ratio for permuted actors
            (each actor tensor a seeded permutation of its entries; no new rollouts): median
            and maximum over ``analysis/trust.DELETION_CONTROLS`` of them.
        deletion_p_value: ``(1 + #{permuted ratio >= trained ratio}) / (1 + n)``: small when
            the trained policy depends on the top-ranked entries beyond policies unrelated to
            this latent. NaN when deleting never changes the policy.
        deletion_bottom_ratio: the complement: the change for the bottom-ranked share over
            the change for random entries (< 1: the lowest-ranked entries matter less).
        reward_correlation: Pearson correlation of the reward head's prediction at each
            posterior state with the reward of the transition into it, over the rollouts: the
            world model's head means what it says. NaN without a reward head or without
            rewards in the rollouts.
    """

    relative_error: float
    explained_variance: float
    iterations: int
    stability_mean_cosine: float = math.nan
    stability_min_cosine: float = math.nan
    stability_topk_jaccard: float = math.nan
    confidence_spearman: float = math.nan
    sanity_spearman: float = math.nan
    posterior_entropy: float = math.nan
    sanity_entropy: float = math.nan
    deletion_topk: float = math.nan
    deletion_random: float = math.nan
    deletion_ratio: float = math.nan
    sanity_posterior_max_abs: float = math.nan
    sanity_posterior_mean_abs: float = math.nan
    sanity_posterior_std: float = math.nan
    memory_max_abs: float = math.nan
    memory_mean_abs: float = math.nan
    deletion_entry_ratio: float = math.nan
    deletion_control_median: float = math.nan
    deletion_control_max: float = math.nan
    deletion_p_value: float = math.nan
    deletion_bottom_ratio: float = math.nan
    reward_correlation: float = math.nan

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {f.name: to_json_number(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrustMetrics:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown metrics {unknown}")
        iterations = data["iterations"]
        if type(iterations) is not int:
            raise TypeError(f"iterations must be an integer, got {iterations!r}")
        values: dict[str, Any] = {
            name: from_json_number(data.get(name)) for name in names - {"iterations"}
        }
        values["relative_error"] = from_json_number(data["relative_error"])
        values["explained_variance"] = from_json_number(data["explained_variance"])
        return cls(iterations=iterations, **values)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(from_json_number(v) for v in values)


def _json_floats(values: tuple[float, ...]) -> list[float | None]:
    return [to_json_number(float(v)) for v in values]


_PER_FACTOR = (
    "p_values",
    "shift_p_values",
    "effects",
    "effect_low",
    "effect_high",
    "correlations",
    "uncontrolled_p_values",
)
"""The per-factor tuples of a :class:`FactAssociation` besides its values."""


@dataclass(frozen=True)
class FactAssociation:
    """How one game fact relates to each factor, and which of those relations beat chance.

    Attributes:
        name: the fact (``"collision_visible"``), or one value of a categorical fact
            (``"executed_action=up"``).
        kind: ``"event"`` (a yes/no fact: ``per_factor`` is the precision of each factor's
            top-``k`` observations) or ``"graded"`` (``per_factor`` is each factor's Spearman).
        per_factor: ``[r]`` values, NaN where undefined.
        base_rate: events: the fraction of valid steps where the event holds (the expected
            precision of picks unrelated to it); graded facts: NaN.
        k: the number of observations per factor behind an event's precision (0 for graded).
        null_q95: the 95% quantile of the best claimable factor's rank correlation with the
            fact (events: the rank-biserial correlation of its activation with the event,
            one-sided; graded: ``|rho|``) under circular time shifts of the fact
            (``results/nulls.py``); NaN when no factor may claim.
        p_values: ``[r]`` each factor's p-value: the larger of its circular-shift and its
            episode-swap p-value (``results/two_nulls.py``), each adjusted over the factors
            (maxT), then over the facts of its table (Holm); NaN for a factor that makes no
            claims.
        level: the significance level the table was made for.
        swap_q95: as ``null_q95``, under the episode swap (the fact of other episodes at the
            same steps, ``results/episode_swaps.py``).
        shift_p_values: ``[r]`` the circular-shift p-values alone, adjusted the same way: what
            a claim would be without the episode swap (see :attr:`time_only`).
        effects: ``[r]`` the rank correlation minus its mean under the episode swap;
            effect_low, effect_high: ``[r]`` the episode-bootstrap 95% interval.
        correlations: ``[r]`` the rank correlation each p-value tests (events: rank-biserial
            of the factor's whole activation with the event, which the saturating
            activations need, since a factor's picks come from a tie; graded: the Spearman,
            equal to ``per_factor``).
        controlled_for: the other recorded fact that best goes with this one, within whose
            values the third null shuffles this fact (``results/strata.py``; "" when none goes
            with it enough); ``p_values`` beat it too.
        uncontrolled_p_values: ``[r]`` the p-values under the shifts and the swap alone,
            adjusted the same way (see :attr:`explained_by_other`).
    """

    name: str
    kind: Literal["event", "graded"]
    per_factor: tuple[float, ...]
    base_rate: float
    k: int
    null_q95: float = math.nan
    p_values: tuple[float, ...] = ()
    level: float = 0.05
    swap_q95: float = math.nan
    shift_p_values: tuple[float, ...] = ()
    effects: tuple[float, ...] = ()
    effect_low: tuple[float, ...] = ()
    effect_high: tuple[float, ...] = ()
    correlations: tuple[float, ...] = ()
    controlled_for: str = ""
    uncontrolled_p_values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in _PER_FACTOR:
            if not getattr(self, name):  # not tested: no factor claims
                object.__setattr__(self, name, (math.nan,) * len(self.per_factor))
            if len(getattr(self, name)) != len(self.per_factor):
                raise ValueError(
                    f"{len(getattr(self, name))} {name} for {len(self.per_factor)} factors"
                )

    @property
    def explained_by_other(self) -> tuple[bool, ...]:
        """Per factor: beyond the shifts and the swap, not beyond shuffles within the values
        of :attr:`controlled_for`: reported as that fact, not as this one."""
        return tuple(
            bool(self.controlled_for) and not yes and not math.isnan(p) and p <= self.level
            for yes, p in zip(self.significant, self.uncontrolled_p_values, strict=True)
        )

    @property
    def time_only(self) -> tuple[bool, ...]:
        """Per factor: beyond circular shifts but not beyond the episode swap. The same steps of
        other episodes show the association as well, so it is the step's (what every episode
        does at that time), not this episode's fact: reported as "time", never as the fact."""
        level = self.level
        return tuple(
            not math.isnan(shift) and shift <= level and not (both <= level)
            for shift, both in zip(self.shift_p_values, self._beyond_both(), strict=True)
        )

    def _beyond_both(self) -> tuple[float, ...]:
        """The p-values under the shifts and the swap (the final ones where no third null ran)."""
        return tuple(
            p if math.isnan(u) else u
            for p, u in zip(self.p_values, self.uncontrolled_p_values, strict=True)
        )

    @property
    def best_factor(self) -> int:
        """The factor with the highest precision (events) or ``|rho|`` (graded); -1 if none."""
        ranked = [abs(v) if self.kind == "graded" else v for v in self.per_factor]
        defined = [j for j, v in enumerate(ranked) if not math.isnan(v)]
        return max(defined, key=lambda j: ranked[j], default=-1)

    @property
    def significant(self) -> tuple[bool, ...]:
        """Per factor: whether its association beats its null at ``level`` (after correction)."""
        return tuple(not math.isnan(p) and p <= self.level for p in self.p_values)

    @property
    def claim(self) -> int:
        """The factor the table may name for this fact: the strongest significant one, or -1.

        An event claim also needs a precision above the base rate (a factor that avoids an event
        beats no null of "marks it")."""
        ranked = [abs(v) if self.kind == "graded" else v for v in self.per_factor]
        candidates = [
            j
            for j, yes in enumerate(self.significant)
            if yes and (self.kind == "graded" or self.per_factor[j] > self.base_rate)
        ]
        return max(candidates, key=lambda j: ranked[j], default=-1)

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {
            "name": self.name,
            "kind": self.kind,
            "per_factor": _json_floats(self.per_factor),
            "base_rate": to_json_number(float(self.base_rate)),
            "k": self.k,
            "null_q95": to_json_number(float(self.null_q95)),
            "p_values": _json_floats(self.p_values),
            "level": self.level,
            "swap_q95": to_json_number(float(self.swap_q95)),
            **{name: _json_floats(getattr(self, name)) for name in _PER_FACTOR[1:]},
            "controlled_for": self.controlled_for,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FactAssociation:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        kind = data["kind"]
        if kind not in ("event", "graded"):
            raise ValueError(f"kind must be 'event' or 'graded', got {kind!r}")
        return cls(
            name=str(data["name"]),
            kind=kind,
            per_factor=_floats(data["per_factor"]),
            base_rate=from_json_number(data["base_rate"]),
            k=int(data["k"]),
            null_q95=from_json_number(data["null_q95"]),
            p_values=_floats(data["p_values"]),
            level=float(data["level"]),
            swap_q95=from_json_number(data["swap_q95"]),
            shift_p_values=_floats(data["shift_p_values"]),
            effects=_floats(data["effects"]),
            effect_low=_floats(data["effect_low"]),
            effect_high=_floats(data["effect_high"]),
            correlations=_floats(data["correlations"]),
            controlled_for=str(data["controlled_for"]),
            uncontrolled_p_values=_floats(data["uncontrolled_p_values"]),
        )


@dataclass(frozen=True)
class FactorStatus:
    """Whether one factor may make claims, and why not.

    Attributes:
        factor: its index.
        stability: the smallest matched cosine of its prototype over the refits (NaN: no
            refits were run, so stability is unknown).
        time_spearman: Spearman of its activation with the step index over the analysed steps.
        start_fraction: the share of its claim picks in the first ``start_steps`` analysed
            steps of their episodes.
        tie_fraction: the share of its claim picks taken from a tie (``results/picks.py``).
        unstable: stability below the claim config's ``min_stability``.
        marks_start: start_fraction above the claim config's ``max_start_fraction`` (and twice
            the share of start steps).
    """

    factor: int
    stability: float
    time_spearman: float
    start_fraction: float
    tie_fraction: float
    unstable: bool
    marks_start: bool

    @property
    def claimable(self) -> bool:
        """Whether the factor may be named for a game event or fact."""
        return not (self.unstable or self.marks_start)

    @property
    def label(self) -> str:
        """A short reason it makes no claims ("" when it does)."""
        reasons = []
        if self.unstable:
            reasons.append(f"unstable (cosine {self.stability:.2f})")
        if self.marks_start:
            reasons.append(f"episode start ({self.start_fraction:.0%} of picks)")
        return ", ".join(reasons)

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {
            f.name: to_json_number(getattr(self, f.name))
            if isinstance(getattr(self, f.name), float)
            else getattr(self, f.name)
            for f in fields(self)
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FactorStatus:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        flags = {name: data[name] for name in ("unstable", "marks_start")}
        if not all(isinstance(v, bool) for v in flags.values()) or type(data["factor"]) is not int:
            raise TypeError("factor must be an integer and the flags booleans")
        return cls(
            factor=data["factor"],
            stability=from_json_number(data["stability"]),
            time_spearman=from_json_number(data["time_spearman"]),
            start_fraction=from_json_number(data["start_fraction"]),
            tie_fraction=from_json_number(data["tie_fraction"]),
            **flags,
        )


@dataclass(frozen=True)
class ScoreAssociation:
    """How the score's top observations of each rollout relate to one event.

    Attributes:
        name: the event. precision: the fraction of all rollouts' top-``k`` picks at which it
            holds. base_rate: its rate over the analysed steps. null_q05, null_q95: the 5% and
            95% quantiles of that precision under circular shifts of the event. p_above,
            p_below: one-sided p-values that the picks hit it more (less) often than chance:
            each the larger of the circular-shift and the episode-swap p-value, Holm-adjusted
            over the ``family`` of tests it was made in (a table: every event in both
            directions; one event: its two directions).
        k: picks per rollout. picks: picks in all (fewer than ``k`` per rollout where a rollout
            has fewer analysed steps).
        level: the significance level the verdict uses (``ClaimConfig.level``, the
            ``--dreamer-significance`` setting).
        swap_q05, swap_q95: the precision's 5% and 95% quantiles under the episode swap (the
            event of other episodes at the same steps).
        shift_p_above, shift_p_below: the circular-shift p-values alone, Holm-adjusted over the
            same family (see :attr:`time_only`).
        effect: precision minus its mean under the episode swap; effect_low, effect_high: the
            episode-bootstrap 95% interval. family: the tests the p-values are adjusted over.
        controlled_for: the other recorded fact that best goes with the score, within whose
            values the third null shuffles the event (``results/strata.py``; "" where it did
            not run: no claim was possible under the first two nulls, or no fact goes with the
            score enough); ``p_above`` and ``p_below`` beat it too.
        uncontrolled_p_above, uncontrolled_p_below: the p-values under the shifts and the swap
            alone, adjusted the same way (see :attr:`explained_by_other`).
    """

    name: str
    precision: float
    base_rate: float
    null_q05: float
    null_q95: float
    p_above: float
    p_below: float
    k: int
    picks: int
    level: float = 0.05
    swap_q05: float = math.nan
    swap_q95: float = math.nan
    shift_p_above: float = math.nan
    shift_p_below: float = math.nan
    effect: float = math.nan
    effect_low: float = math.nan
    effect_high: float = math.nan
    family: int = 2
    controlled_for: str = ""
    uncontrolled_p_above: float = math.nan
    uncontrolled_p_below: float = math.nan

    @property
    def time_only(self) -> bool:
        """No verdict, though circular shifts alone would give one: the same steps of other
        episodes hit the event as often, so the picks' timing explains it ("time")."""
        tested = [p for p in (self.shift_p_above, self.shift_p_below) if not math.isnan(p)]
        return (
            self.verdict() == "chance"
            and not self.explained_by_other
            and min(tested, default=math.inf) <= self.level
        )

    @property
    def explained_by_other(self) -> bool:
        """No verdict, though the shifts and the swap alone would give one: shuffles of the
        event within the values of :attr:`controlled_for` hit it as often at the picks, so that
        fact explains it: reported as that fact, not as this event."""
        both = [p for p in (self.uncontrolled_p_above, self.uncontrolled_p_below)
                if not math.isnan(p)]  # fmt: skip
        return (
            bool(self.controlled_for)
            and self.verdict() == "chance"
            and min(both, default=math.inf) <= self.level
        )

    def verdict(self, level: float | None = None) -> Literal["above", "below", "chance"]:
        """Whether the picks hit the event more (``"above"``) or less (``"below"``) often than
        chance at ``level`` (one-sided; default: the row's own :attr:`level`), or neither."""
        level = self.level if level is None else level
        if self.p_above <= level:
            return "above"
        if self.p_below <= level:
            return "below"
        return "chance"

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {f.name: to_json_number(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreAssociation:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        names = [f.name for f in fields(cls)]
        if set(data) != set(names):
            raise ValueError(f"fields {sorted(set(data) ^ set(names))} missing or unexpected")
        k, picks, family = data["k"], data["picks"], data["family"]
        if type(k) is not int or type(picks) is not int or type(family) is not int:
            raise TypeError(
                f"k, picks and family must be integers, got {k!r}, {picks!r} and {family!r}"
            )

        def number(name: str) -> float:
            return from_json_number(data[name])

        return cls(
            name=str(data["name"]),
            precision=number("precision"),
            base_rate=number("base_rate"),
            null_q05=number("null_q05"),
            null_q95=number("null_q95"),
            p_above=number("p_above"),
            p_below=number("p_below"),
            k=k,
            picks=picks,
            level=number("level"),
            swap_q05=number("swap_q05"),
            swap_q95=number("swap_q95"),
            shift_p_above=number("shift_p_above"),
            shift_p_below=number("shift_p_below"),
            effect=number("effect"),
            effect_low=number("effect_low"),
            effect_high=number("effect_high"),
            family=family,
            controlled_for=str(data["controlled_for"]),
            uncontrolled_p_above=number("uncontrolled_p_above"),
            uncontrolled_p_below=number("uncontrolled_p_below"),
        )


StageKind = Literal["full", "cascade", "independent"]


@dataclass(frozen=True)
class RandomizationStage:
    """One stage of the model parameter randomization test (``analysis/randomization.py``).

    Attributes:
        kind: ``"full"`` (every layer), ``"cascade"`` (the top layers down to one) or
            ``"independent"`` (one layer alone). layers: the stage's name in the report.
        entropy: mean entropy (nats) of the randomized posteriors' categoricals.
        observation_spearman: Spearman of the trained and the randomized observation scores
            over valid steps (1: the explanation did not change).
        prototype_cosine: mean Hungarian-matched cosine of the trained and randomized
            prototypes.
    """

    kind: StageKind
    layers: str
    entropy: float
    observation_spearman: float
    prototype_cosine: float

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {f.name: to_json_number(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RandomizationStage:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise ValueError(f"fields {sorted(set(data) ^ names)} missing or unexpected")
        kind = data["kind"]
        if kind not in ("full", "cascade", "independent"):
            raise ValueError(f"kind must be full, cascade or independent, got {kind!r}")
        return cls(
            kind=kind,
            layers=str(data["layers"]),
            entropy=from_json_number(data["entropy"]),
            observation_spearman=from_json_number(data["observation_spearman"]),
            prototype_cosine=from_json_number(data["prototype_cosine"]),
        )


LATENTS = ("posterior", "deter", "posterior+deter")
"""The trained inputs, in the table's order."""
CONTROLS = ("random posterior+deter", "observation", "time step")
"""The controls every trained input is compared with."""


@dataclass(frozen=True)
class ProbeRow:
    """One fact probed from every input.

    Attributes:
        fact: the fact's name. kind: ``"event"`` (AUC; 0.5 is chance) or ``"graded"`` (R^2 out
            of fold; 0 is the mean's prediction). scores: input name -> score (NaN where the
            probe is undefined: an event without both outcomes in every fold).
    """

    fact: str
    kind: str
    scores: tuple[tuple[str, float], ...]

    def score(self, name: str) -> float:
        """The score of one input; ConfigError naming the inputs there are."""
        values = dict(self.scores)
        if name not in values:
            raise ConfigError(f"no probe input {name!r}; the inputs are {', '.join(values)}")
        return values[name]

    @property
    def best_latent(self) -> tuple[str, float]:
        """The trained input with the highest score, and that score (NaN if none is defined)."""
        defined = [(name, self.score(name)) for name in LATENTS if name in dict(self.scores)]
        defined = [(name, value) for name, value in defined if not math.isnan(value)]
        return max(defined, key=lambda item: item[1], default=("", math.nan))

    @property
    def best_control(self) -> tuple[str, float]:
        """The control with the highest score, and that score (NaN if none is defined)."""
        defined = [(name, self.score(name)) for name in CONTROLS if name in dict(self.scores)]
        defined = [(name, value) for name, value in defined if not math.isnan(value)]
        return max(defined, key=lambda item: item[1], default=("", math.nan))

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {
            "fact": self.fact,
            "kind": self.kind,
            "scores": {name: to_json_number(value) for name, value in self.scores},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProbeRow:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        if data["kind"] not in ("event", "graded"):
            raise ValueError(f"kind must be 'event' or 'graded', got {data['kind']!r}")
        scores = data["scores"]
        if not isinstance(scores, Mapping):
            raise TypeError("scores must be an object")
        return cls(
            fact=str(data["fact"]),
            kind=str(data["kind"]),
            scores=tuple((str(name), from_json_number(value)) for name, value in scores.items()),
        )


@dataclass(frozen=True)
class CurveSet:
    """A deletion or insertion curve of one head (``analysis/curves.py``).

    Attributes:
        head: ``"actor"``, ``"value"``, ``"reward"``, ``"discount"`` or ``"decoder"``.
        kind: ``"deletion"`` or ``"insertion"``. fractions: the fractions of ranked entries.
        score_curve, random_curve: the head's mean output change at each fraction, in the
            score's order and averaged over random orders.
        area: mean over the fractions of score - random (deletion) or random - score
            (insertion); > 0 means the score's order beats chance for this head.
    """

    head: str
    kind: Literal["deletion", "insertion"]
    fractions: tuple[float, ...]
    score_curve: tuple[float, ...]
    random_curve: tuple[float, ...]
    area: float

    def __post_init__(self) -> None:
        lengths = (len(self.fractions), len(self.score_curve), len(self.random_curve))
        if len(set(lengths)) != 1:
            raise ConfigError(  # a ValueError, as from_json promises
                f"the {self.head} {self.kind} curve has {lengths[0]} fractions, {lengths[1]} "
                f"score values and {lengths[2]} random values: fractions and curves differ in "
                "length; give one value of each curve per fraction"
            )

    def to_json(self) -> dict[str, Any]:
        """Plain values, NaN written as None."""
        return {
            "head": self.head,
            "kind": self.kind,
            "fractions": list(self.fractions),
            "score_curve": _json_floats(self.score_curve),
            "random_curve": _json_floats(self.random_curve),
            "area": to_json_number(self.area),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CurveSet:
        """The inverse of :meth:`to_json`; KeyError, TypeError or ValueError if malformed."""
        kind = data["kind"]
        if kind not in ("deletion", "insertion"):
            raise ValueError(f"kind must be deletion or insertion, got {kind!r}")
        curves = [_floats(data[name]) for name in ("fractions", "score_curve", "random_curve")]
        return cls(  # refuses fractions and curves of different lengths
            head=str(data["head"]),
            kind=kind,
            fractions=curves[0],
            score_curve=curves[1],
            random_curve=curves[2],
            area=from_json_number(data["area"]),
        )
