"""What decides an explanation: the layout, score, solver and init choices, and the configs.

Torch-free plain values: the settings (``settings.py``) convert into :class:`ExplainConfig` once,
and :meth:`ExplainConfig.nmf` gives the :class:`NMFConfig` the factorization runs with. Each
choice is declared once, as a ``Literal``; the tuples of its values are derived from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

from ..errors import ConfigError

__all__ = [
    "DEFAULT_HORIZONS",
    "INITS",
    "MAX_HORIZON",
    "LAYOUTS",
    "RANDOMIZATIONS",
    "ClaimConfig",
    "SCORES",
    "SOLVERS",
    "ExplainConfig",
    "Init",
    "Layout",
    "NMFConfig",
    "Score",
    "Solver",
    "check_horizons",
    "check_rank",
    "layout_width",
    "read_horizons",
]

Layout = Literal["pooled", "per_step"]
Score = Literal["activation", "reconstruction", "surprise"]
Solver = Literal["hals", "mu", "torchnmf"]
Init = Literal["nndsvda", "random"]
Randomization = Literal["full", "cascade"]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
SCORES: tuple[Score, ...] = get_args(Score)
SOLVERS: tuple[Solver, ...] = get_args(Solver)
INITS: tuple[Init, ...] = get_args(Init)
RANDOMIZATIONS: tuple[Randomization, ...] = get_args(Randomization)


def _check_choice(what: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")


def _check_int(what: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")


MAX_HORIZON = 50
"""The longest open-loop imagination asked for (steps of the prior without an observation)."""
DEFAULT_HORIZONS: tuple[int, ...] = (1, 3, 5, 10)
"""The horizons of ``--dreamer-imagination`` when it is turned on without a list."""
_OFF = ("", "off", "none", "false", "()")


def check_horizons(value: object) -> tuple[int, ...]:
    """The imagination horizons as a sorted tuple of distinct integers in ``[1, MAX_HORIZON]``
    (``()``: imagination off); ConfigError naming the valid range otherwise."""
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        raise ConfigError(
            f"imagination horizons must be a list of integers in [1, {MAX_HORIZON}] (or empty: "
            f"off), got {value!r}"
        )
    for horizon in value:
        if isinstance(horizon, bool) or not isinstance(horizon, int):
            raise ConfigError(f"imagination horizon {horizon!r} is not an integer")
        if not 1 <= horizon <= MAX_HORIZON:
            raise ConfigError(
                f"imagination horizon {horizon} is outside the valid range 1 to {MAX_HORIZON} "
                "(steps imagined ahead of each analysed step)"
            )
    if len(set(value)) != len(value):
        raise ConfigError(f"imagination horizons {list(value)} repeat a horizon")
    return tuple(sorted(value))


def read_horizons(text: str) -> tuple[int, ...]:
    """``"1,3,5,10"`` -> ``(1, 3, 5, 10)``; ``"off"`` (or ``"none"``, ``"false"``, empty) ->
    ``()``; ``"on"`` or ``"true"`` -> :data:`DEFAULT_HORIZONS`. ConfigError otherwise."""
    words = text.strip().lower()
    if words in _OFF:
        return ()
    if words in ("on", "true"):
        return DEFAULT_HORIZONS
    parts = [part.strip() for part in words.strip("()[]").split(",") if part.strip()]
    if not parts or not all(part.isascii() and part.isdigit() for part in parts):
        raise ConfigError(
            f"imagination horizons {text!r}: expected comma-separated integers in [1, "
            f"{MAX_HORIZON}] (e.g. 1,3,5,10), on (= {','.join(map(str, DEFAULT_HORIZONS))}) or off"
        )
    return check_horizons([int(part) for part in parts])


def layout_width(layout: Layout, categoricals: int, classes: int) -> int:
    """Columns of the NMF matrix: ``K`` pooled (one row per categorical), ``C * K`` per step."""
    _check_choice("layout", layout, LAYOUTS)
    return classes if layout == "pooled" else categoricals * classes


def check_rank(rank: int, width: int, *, rank_name: str = "rank", where: str = "") -> None:
    """Refuse a rank above the row width: NMF cannot find more distinct prototypes than columns."""
    if rank > width:
        place = f" of {where}" if where else ""
        raise ConfigError(
            f"{rank_name} {rank} is larger than the {width} columns of the NMF matrix{place}; an "
            f"NMF of rank above the row width cannot find more distinct prototypes. Use a rank "
            f"<= {width} (or the per_step layout, whose rows are C*K wide)"
        )


@dataclass(frozen=True)
class NMFConfig:
    """How to factorize.

    Attributes:
        rank: number of factors r (at most the row width: K pooled, C*K per step).
        layout: ``"pooled"`` or ``"per_step"`` (``analysis/factorize.py``).
        solver: ``"hals"`` (default: accelerated HALS, rank-one coordinate descent on the
            Frobenius loss in plain torch), ``"mu"`` (Lee & Seung multiplicative updates in plain
            torch) or ``"torchnmf"`` (torchnmf's ``NMF.fit`` with ``beta=2``: the same updates
            as ``"mu"`` through autograd, the same iterates up to float rounding, tested to
            1e-5). ``"hals"`` is the default because it reached the same or a lower error than
            every solver measured, scikit-learn's included, soonest on nearly uniform posteriors
            at every size (16k to 6.4M rows) and on nearly one-hot ones at 16k and from 1.28M
            rows; at 64k nearly one-hot rows scikit-learn's ``cd`` was 1.3x faster
            (``benchmarks/nmf_curves.md``).
        init: ``"nndsvda"`` (deterministic, data-scaled: the default) or ``"random"`` (seeded).
        max_iter: iteration cap. tol: ``"mu"`` and ``"torchnmf"`` stop when the loss improved
            by less than ``tol`` times the initial loss over 10 iterations (torchnmf's
            criterion); ``"hals"``, whose iterations each do the work of many of theirs, when
            one iteration improved it by less than ``tol`` times its previous value.
        seed: seed of the ``"random"`` init.
    """

    rank: int = 10
    layout: Layout = "pooled"
    solver: Solver = "hals"
    init: Init = "nndsvda"
    max_iter: int = 200
    tol: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("NMF rank", self.rank, 1)
        _check_choice("NMF layout", self.layout, LAYOUTS)
        _check_choice("NMF solver", self.solver, SOLVERS)
        _check_choice("NMF init", self.init, INITS)
        _check_int("max_iter", self.max_iter, 1)
        if not (isinstance(self.tol, int | float) and self.tol >= 0 and math.isfinite(self.tol)):
            raise ConfigError(f"tol must be a finite number >= 0, got {self.tol!r}")


def trust_sample_size(episodes: int, trust_episodes: int) -> int:
    """How many of ``episodes`` the replaying trust checks run on when ``trust_episodes`` are
    asked for (0: every episode): see :attr:`ExplainConfig.trust_episodes`."""
    return episodes if trust_episodes == 0 else min(trust_episodes, episodes)


@dataclass(frozen=True)
class ExplainConfig:
    """Everything that decides an explanation (flat, plain values; part of cache keys).

    Attributes:
        rank: NMF rank r. layout: ``"pooled"`` or ``"per_step"`` (``analysis/factorize.py``).
        score: ``"surprise"`` (default: KL(posterior || prior), what the observation told
            the world model that it could not predict), ``"activation"`` (L2 norm of a row's
            NMF activations, prototypes normalised) or ``"reconstruction"`` (L2 norm of the
            reconstructed row, the notebook's score, close to plain confidence). The default is
            the one whose top observations localise Freeway's events beyond their nulls on the
            bundled agent and not on random weights (``research/claims_table.md``).
        top_k: observations highlighted per rollout, and dataset examples per factor.
        solver, init, max_iter, tol, seed: the NMF fit (see :class:`NMFConfig`; ``"hals"`` by
            default, as there).
        stability_refits: extra fits from seeded random inits for the stability metrics
            (0 skips them).
        sanity_seed: seed of the parameter permutations of the sanity check.
        trust_episodes: the trust checks that replay the rollouts or permute the actor (the
            posterior sanity and memory checks, the randomization stages, the deletion control
            against permuted actors: ``results/trustworthy.py``'s checks 3, 4, 6 and 7) run on
            the first ``trust_episodes`` episodes that have a step to explain, with a fit of
            their own rows, exactly as an audit of those episodes would; 0 runs them on every
            episode. 16 by default: the size their thresholds were calibrated at
            (``research/planted_matrix.py``); beyond it their cost would grow with the
            rollouts, while a larger audit is for a larger explanation (issue 33). The
            explanation, its stability and every claim cover every episode.
        randomization: ``"full"`` (default: one randomization of every layer that makes the
            posteriors, the sanity check) or ``"cascade"`` (also the cascading and independent
            stages of the model parameter randomization test, 16 replays and fits:
            ``analysis/randomization.py``).
        probes: also fit the linear probes of every game fact from the trained latents and
            their controls (``results/probes.py``; needs the agent and scikit-learn).
        curves: also draw the deletion and insertion curves of every head for the score's
            ranking (``analysis/curves.py``; needs the agent).
        decoded: also decode what the world model believes it sees at every step and what each
            factor's prototype looks like (``analysis/decoding.py``; needs the ObsDecoder).
        skip_steps: leave the first ``skip_steps`` steps of every episode out of the
            explanation (a burn-in: the episode start looks alike in every episode and can
            take factors of its own); they are still rolled out and count for the return.
        imagination: the horizons h of the world model's open-loop imagination from every
            analysed posterior state, compared with the real ``o_{t+h}`` and its nulls
            (``analysis/imagination.py``; needs the agent's ObsDecoder and RewardDecoder).
            Empty (the default): off, at no cost. Each in ``[1, MAX_HORIZON]`` and shorter
            than the rollouts; a list is stored as a sorted tuple.
    """

    rank: int = NMFConfig.rank  # the fit's defaults are the NMFConfig's: one place
    layout: Layout = NMFConfig.layout
    score: Score = "surprise"
    top_k: int = 5
    solver: Solver = NMFConfig.solver
    init: Init = NMFConfig.init
    max_iter: int = NMFConfig.max_iter
    tol: float = NMFConfig.tol
    seed: int = NMFConfig.seed
    stability_refits: int = 2
    sanity_seed: int = 12345
    trust_episodes: int = 16
    skip_steps: int = 0
    randomization: Randomization = "full"
    probes: bool = False
    curves: bool = False
    decoded: bool = False
    imagination: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # a list (read back from summary.json) becomes the tuple that cache keys and eq need
        object.__setattr__(self, "imagination", check_horizons(self.imagination))
        _check_choice("score", self.score, SCORES)
        _check_choice("randomization", self.randomization, RANDOMIZATIONS)
        for name in ("probes", "curves", "decoded"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_int("skip_steps", self.skip_steps, 0)
        _check_int("top_k", self.top_k, 1)
        _check_int("stability_refits", self.stability_refits, 0)
        _check_int("trust_episodes", self.trust_episodes, 0)
        self.nmf()  # the NMF fields are validated where they are declared

    def trust_sample(self, episodes: int) -> int:
        """How many of ``episodes`` the replaying trust checks run on (the first ones with a
        step to explain)."""
        return trust_sample_size(episodes, self.trust_episodes)

    def nmf(self, *, init: Init | None = None, seed: int | None = None) -> NMFConfig:
        """The NMF fit of this explanation; a refit passes its own init and seed."""
        base = NMFConfig(
            rank=self.rank,
            layout=self.layout,
            solver=self.solver,
            init=self.init,
            max_iter=self.max_iter,
            tol=self.tol,
            seed=self.seed,
        )
        if init is None and seed is None:
            return base
        return replace(
            base, init=base.init if init is None else init, seed=base.seed if seed is None else seed
        )


@dataclass(frozen=True)
class ClaimConfig:
    """When an association between a factor (or a score) and a game fact counts as a finding.

    Attributes:
        level: the family-wise significance level (``results/nulls.py``: maxT over factors,
            Holm over facts). A claim needs an adjusted p-value at or below it under both
            nulls: circular shifts within each episode and the episode swap (facts of other
            episodes, step for step, ``results/episode_swaps.py``).
        k: the fewest observations per factor behind an event's precision. The gallery shows
            ``top_k`` (default 5) of them; claims use more, because at k = 5 the best of 10
            factors reaches 40% precision on a 16% event by chance alone.
        top_fraction: claims use each factor's top ``top_fraction`` of the analysed
            observations when that is more than ``k`` (:meth:`picks`): a fixed 20 picks are a
            smaller slice of more episodes, and an effect carried by a factor's top 5% was
            found in 45% of planted masks at 16 episodes but 10% at 32 with a fixed 20.
        draws: draws per null (p-values down to ``1 / (draws + 1)``); the episode swap
            enumerates every permutation instead when there are at most this many.
        min_stability: a factor whose prototype's matched cosine falls below this in some
            refit is unstable and makes no claims.
        start_steps, max_start_fraction: a factor with more than ``max_start_fraction`` of its
            ``k`` picks in the first ``start_steps`` analysed steps of their episodes (and more
            than twice the share of such steps among all analysed steps) marks the episode
            start; it is labelled so and makes no claims about game events.
        seed: seed of the null draws and of the bootstrap (reproducible p-values).
        bootstrap: episode resamples behind each effect size's 95% interval
            (``results/bootstrap.py``).
    """

    level: float = 0.05
    k: int = 20
    draws: int = 999
    min_stability: float = 0.8
    start_steps: int = 3
    max_start_fraction: float = 0.5
    seed: int = 0
    bootstrap: int = 1000
    top_fraction: float = 0.05

    def picks(self, observations: int) -> int:
        """Picks per factor for ``observations`` analysed observations: the larger of ``k``
        and ``ceil(top_fraction * observations)``, at most ``observations``."""
        share = math.ceil(self.top_fraction * observations - 1e-9)
        return max(0, min(observations, max(self.k, share)))

    def __post_init__(self) -> None:
        for name in ("level", "min_stability", "max_start_fraction", "top_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
        _check_int("claim k", self.k, 1)
        _check_int("null draws", self.draws, 1)
        _check_int("start_steps", self.start_steps, 0)
        _check_int("null seed", self.seed, 0)
        _check_int("bootstrap resamples", self.bootstrap, 1)
