"""Explain a batch of rollouts: factorize the posteriors, score, pick examples, measure trust.

``explain(trajectory, config, agent=agent)`` is the one entry point; it returns an
:class:`~pytest_dreamer_audit.results.explanation.Explanation` of plain arrays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..games import game_spec
from ..model.agent import DreamerAgent
from ..results.explanation import ExplainConfig, Explanation, TrustMetrics
from ..results.picks import top_picks
from ..results.probes import ProbeRow
from ..results.values import CurveSet, RandomizationStage
from ..rollout.rollouts import ReplayedLatents, Trajectory, replay_posteriors
from .curves import head_curves
from .decoding import decoded_beliefs, decoded_factors
from .factorize import Factorization, FlatRows, NMFConfig, fit_nmf, flatten_posteriors
from .imagination import check_imagination, imagination_table
from .probing import probe_facts
from .randomization import match_scale, mean_entropy, permute_parameters, softmax_, stages
from .replays import RandomizedReplay, streamed_replays
from .sanity import (
    MEMORY_SEEDS,
    SANITY_SEEDS,
    PosteriorSanity,
    activation_observation_scores,
    measure_posterior_sanity,
    sanity_budget,
)
from .scores import (
    categorical_scores,
    factor_activations,
    normalize_valid,
    observation_scores,
    surprise,
    top_observations,
)
from .trust import (
    ControlledDeletion,
    controlled_deletion,
    deletion_effects,
    matched_cosines,
    reward_correlation,
    spearman,
    topk_jaccard,
)

__all__ = ["explain"]

Progress = Callable[[str], None]


_NO_ROWS = torch.empty(0, 0)


@dataclass(frozen=True)
class _Scored:
    rows: FlatRows
    fit: Factorization
    per_categorical: Tensor  # [L, B, C], un-normalised
    per_observation: Tensor  # [L, B], un-normalised
    top: Tensor  # [B, k]


def _score(
    rows: FlatRows, valid: Tensor, kl: Tensor, config: ExplainConfig, nmf: NMFConfig
) -> _Scored:
    """Factorize the flattened posteriors and score them (the stability refits pass the main
    fit's rows again: one flattening for all the fits of one matrix)."""
    fit = fit_nmf(rows.matrix, nmf)
    per_categorical = categorical_scores(config.score, rows, fit, kl)
    per_observation = observation_scores(config.score, per_categorical)
    top = top_observations(per_observation, valid, config.top_k)
    return _Scored(rows, fit, per_categorical, per_observation, top)


def explain(
    trajectory: Trajectory,
    config: ExplainConfig | None = None,
    *,
    agent: DreamerAgent | None = None,
    progress: Progress | None = None,
) -> Explanation:
    """Explain ``trajectory`` (the posteriors of ``agent``'s rollouts).

    Args:
        trajectory: from :func:`~pytest_dreamer_audit.rollout.rollouts.run_rollouts`.
        config: the explanation settings (defaults: rank 10, pooled, surprise score).
        agent: the agent that produced the trajectory; needed for the sanity check (its
            architecture with random weights) and deletion faithfulness (its actor). Without it
            those metrics are NaN.
        progress: called with a short label before each expensive stage (for progress bars).

    Returns:
        An :class:`Explanation` with numpy arrays on the CPU.
    """
    config = config or ExplainConfig()
    note = progress or (lambda _label: None)
    valid = trajectory.valid.bool().clone()
    valid[: config.skip_steps] = False  # the burn-in is rolled out but not explained
    if not bool(valid.any()):
        raise ConfigError(
            f"skip_steps {config.skip_steps} leaves no step of the {trajectory.valid.shape[0]}-"
            "step rollouts to explain; skip fewer steps or roll out longer episodes"
        )
    if config.imagination and agent is None:
        raise ConfigError(
            "the imagination audit rolls the agent's world model forward, so it needs the "
            "agent: pass agent= (or leave imagination off)"
        )
    if config.imagination and agent is not None:  # before the costly stages
        check_imagination(agent, trajectory.steps, config.imagination)
    kl = surprise(trajectory.posterior_logits, trajectory.prior_logits)

    note("factorize")
    rows = flatten_posteriors(trajectory.posterior_probs, valid, config.layout)
    main = _score(rows, valid, kl, config, config.nmf())
    del rows
    stability = _stability(valid, kl, config, main, note)
    confidence = spearman(_row_scores(main), main.rows.matrix.norm(dim=1))
    # Every later stage reads where the rows came from, none the rows: free them (issue 33).
    main = dataclasses.replace(main, rows=dataclasses.replace(main.rows, matrix=_NO_ROWS))
    deletion = (math.nan, math.nan)
    posterior_sanity = PosteriorSanity()
    reward = math.nan
    controlled: ControlledDeletion | None = None
    randomized: tuple[RandomizationStage, ...] = ()
    latents: tuple[Tensor, Tensor] | None = None
    if config.probes and agent is None:
        raise ConfigError(
            "the fact probes compare the trained latents with the randomized network's, so "
            "they need the agent: pass agent= (or leave probes off)"
        )
    if config.decoded and (agent is None or agent.obs_decoder is None):
        raise ConfigError(
            "the decoded views need the agent's ObsDecoder: pass agent= with a checkpoint that "
            "has one (or leave decoded off)"
        )
    if config.curves and agent is None:
        raise ConfigError(
            "the deletion and insertion curves read the agent's heads, so they need the agent: "
            "pass agent= (or leave curves off)"
        )
    if agent is not None:
        note("sanity check")
        sample = _trust_sample(trajectory, valid, kl, main, config)
        seeds = [config.sanity_seed + i for i in range(SANITY_SEEDS)]
        # One chunk of replays held at a time, each recording what is read: the first is the
        # full randomization stage's (its prior, and its states for the probes when it replays
        # every episode), the rest only their posterior logits.
        whole_sample = sample.trajectory is trajectory
        replays = streamed_replays(
            agent, sample.trajectory, seeds, whole=1, deter=config.probes and whole_sample
        )
        randomized, latents, first = _randomization(
            agent, sample, config, replays, keep_latents=config.probes and whole_sample
        )
        if config.probes and not whole_sample:
            latents = _probe_control(agent, trajectory, valid, config.sanity_seed)
        posterior_sanity = measure_posterior_sanity(
            agent,
            sample.trajectory,
            sample.valid,
            config.layout,
            sanity_budget(config.nmf(), sample.fit.iterations),
            sample.activation,
            replays,
            first=first,
            memory_seeds=[config.sanity_seed + i for i in range(MEMORY_SEEDS)],
        )
        note("deletion")
        deletion = _deletion(agent, trajectory, valid, main)
        reward = reward_correlation(agent, trajectory)
        controlled = controlled_deletion(
            agent.action_model,
            _valid_rows(sample.trajectory.deter, sample.valid).to(agent.device),
            _valid_rows(sample.trajectory.posterior_logits, sample.valid).to(agent.device),
            _valid_rows(sample.trajectory.prior_logits, sample.valid).to(agent.device),
            sample.per_categorical[sample.valid],
            seed=config.sanity_seed,
        )
    metrics = TrustMetrics(
        relative_error=main.fit.relative_error,
        explained_variance=main.fit.explained_variance,
        iterations=main.fit.iterations,
        stability_mean_cosine=float(np.mean(stability.cosines)),
        stability_min_cosine=float(np.min(stability.cosines)),
        stability_topk_jaccard=stability.jaccard,
        confidence_spearman=confidence,
        sanity_spearman=randomized[0].observation_spearman if randomized else math.nan,
        posterior_entropy=mean_entropy(trajectory.posterior_logits, valid),
        sanity_entropy=randomized[0].entropy if randomized else math.nan,
        deletion_topk=deletion[0],
        deletion_random=deletion[1],
        deletion_ratio=deletion[0] / deletion[1] if deletion[1] > 0 else math.nan,
        **posterior_sanity.metrics(),
        **(controlled.metrics() if controlled is not None else {}),
        reward_correlation=reward,
    )
    explanation = _assemble(trajectory, config, metrics, main, valid, stability.per_factor)
    probes: tuple[ProbeRow, ...] = ()
    if config.probes and latents is not None:
        note("probes")
        probes = probe_facts(explanation, trajectory, valid, *latents)
    curves: tuple[CurveSet, ...] = ()
    if config.curves and agent is not None:
        note("curves")
        curves = head_curves(
            agent,
            trajectory.deter,
            trajectory.posterior_logits,
            trajectory.prior_logits,
            main.per_categorical,
            valid,
            seed=config.seed,
        )
    beliefs, factor_decoded = explanation.beliefs, explanation.factor_decoded
    if config.decoded and agent is not None:
        note("decoded views")
        beliefs, factor_decoded = _decoded(agent, trajectory, valid, explanation)
    imagination = None
    if config.imagination and agent is not None:
        note("imagination")
        imagination = imagination_table(
            agent, trajectory, valid, config.imagination, seed=config.sanity_seed
        )
    return dataclasses.replace(
        explanation,
        randomization=randomized,
        probes=probes,
        curves=curves,
        beliefs=beliefs,
        factor_decoded=factor_decoded,
        imagination=imagination,
    )


def _row_scores(scored: _Scored) -> Tensor:
    """Un-normalised score of each NMF row (pooled: a categorical; per step: an observation)."""
    rows = scored.rows
    if rows.categorical is not None:
        return scored.per_categorical[rows.step, rows.episode, rows.categorical]
    return scored.per_observation[rows.step, rows.episode]


@dataclass(frozen=True)
class _Stability:
    cosines: np.ndarray  # [refits, r] matched cosine of each main prototype in each refit
    jaccard: float  # mean top-k Jaccard over the refits

    @property
    def per_factor(self) -> np.ndarray:
        """``[r]`` each prototype's worst matched cosine over the refits."""
        return self.cosines.min(axis=0)


def _stability(
    valid: Tensor, kl: Tensor, config: ExplainConfig, main: _Scored, note: Progress
) -> _Stability:
    if config.stability_refits == 0:
        return _Stability(np.full((1, config.rank), math.nan), math.nan)
    cosines, overlaps = [], []
    for refit in range(1, config.stability_refits + 1):
        note(f"stability refit {refit}/{config.stability_refits}")
        other = _score(
            main.rows, valid, kl, config, config.nmf(init="random", seed=config.seed + refit)
        )
        cosines.append(matched_cosines(main.fit.prototypes, other.fit.prototypes).numpy())
        overlaps.append(topk_jaccard(main.top, other.top))
    # The surprise score's top observations do not depend on the NMF: their overlap across refits
    # would be 1 for any model, a check that cannot fail, so it is not reported.
    jaccard = math.nan if config.score == "surprise" else float(np.mean(overlaps))
    return _Stability(np.stack(cosines), jaccard)


@dataclass(frozen=True)
class _TrustSample:
    """The episodes the replaying trust checks run on (``ExplainConfig.trust_episodes``: the
    first N with a step to explain) and the explanation of those episodes alone: the main one
    when the sample is every episode, else a fit of the sample's own rows, so that the checks
    are exactly those of an audit of those N episodes (the size their thresholds were
    calibrated at). Each check compares a refit with the fit it was made like, on the same
    rows: the main fit restricted to the sample would compare two different fits, and a
    posterior that ignores every weight passed checks 3 and 4 that way (rho 0.18 at 64 x 50,
    seed 7200).

    Shape:
        - valid, activation, per_observation: ``[L, N]``; per_categorical: ``[L, N, C]``
    """

    trajectory: Trajectory
    valid: Tensor
    fit: Factorization
    activation: Tensor  # the trained posteriors' activation scores (no prior enters them)
    per_observation: Tensor
    per_categorical: Tensor


def _trust_sample(
    trajectory: Trajectory, valid: Tensor, kl: Tensor, main: _Scored, config: ExplainConfig
) -> _TrustSample:
    """The sample: every episode when ``trust_episodes`` asks for as many, else the first
    ``trust_episodes`` episodes that have a step to explain (an episode that ended within the
    skipped steps adds no row to any check).

    Shape: valid ``[L, B]``; kl ``[L, B, C]``."""
    count = config.trust_sample(trajectory.episodes)
    sample, scored = trajectory, main
    if count < trajectory.episodes:
        chosen = torch.nonzero(valid.any(dim=0)).flatten()[:count]
        sample = trajectory.select_episodes(chosen.tolist())
        valid = valid.index_select(1, chosen)
        rows = flatten_posteriors(sample.posterior_probs, valid, config.layout)
        scored = _score(rows, valid, kl.index_select(1, chosen), config, config.nmf())
        del rows
    activation = activation_observation_scores(scored.rows, scored.fit)
    return _TrustSample(
        sample, valid, scored.fit, activation, scored.per_observation, scored.per_categorical
    )


def _probe_control(
    agent: DreamerAgent, trajectory: Trajectory, valid: Tensor, seed: int
) -> tuple[Tensor, Tensor]:
    """The probes' random control over every episode when the trust sample has fewer: the
    full randomization's posterior probabilities (scaled as the trained logits) and
    deterministic states, the same replay as the full stage's
    (:func:`_randomization`'s ``latents``).

    Shape:
        - output: ``[L, B, C, K]`` and ``[L, B, deter]``
    """
    replayed = next(streamed_replays(agent, trajectory, [seed], whole=1, deter=True))
    if replayed.deter is None:
        raise ValueError("the probes' control replays the deterministic states too")
    with torch.inference_mode():
        posterior = match_scale(
            replayed.posterior_logits, trajectory.posterior_logits, valid, in_place=True
        )
        return softmax_(posterior), replayed.deter


def _randomization(
    agent: DreamerAgent,
    sample: _TrustSample,
    config: ExplainConfig,
    replays: Iterator[RandomizedReplay],
    *,
    keep_latents: bool,
) -> tuple[tuple[RandomizationStage, ...], tuple[Tensor, Tensor] | None, float]:
    """The model parameter randomization stages (``analysis/randomization.py``) on the trust
    sample, compared with the sample's fit and scores; the first the full randomization behind
    ``sanity_spearman`` (its replay: the next of ``replays``, made with
    the posterior sanity check's, dropped once scored); with ``keep_latents``, that stage's
    posterior probabilities and deterministic states (the probes' random control; None
    otherwise), and the Spearman of its activation scores with the trained ones (the
    posterior sanity check's first seed)."""
    trajectory, valid, fit = sample.trajectory, sample.valid, sample.fit
    # Only the scores are compared: give the randomized posteriors the iteration budget the main
    # fit needed, not the full cap.
    budget = dataclasses.replace(config.nmf(), max_iter=max(fit.iterations, 10))
    kinds = stages("full") + (stages("cascade") if config.randomization == "cascade" else [])
    results: list[RandomizationStage] = []
    latents: tuple[Tensor, Tensor] | None = None  # the full stage's only: the probes' control
    first = math.nan
    for kind, name, layers in kinds:
        if kind == "full":
            replayed: RandomizedReplay | ReplayedLatents = next(replays)
        else:
            randomized = permute_parameters(agent, layers, config.sanity_seed)
            replayed = replay_posteriors(randomized, trajectory)
        logits, prior_logits, deter = (
            replayed.posterior_logits,
            replayed.prior_logits,
            replayed.deter,
        )
        del replayed  # the replay's other latents, before the fit
        if prior_logits is None:
            raise ValueError("the randomization stages score surprise: replay the prior too")
        with torch.inference_mode():  # the replay's own tensors, scaled in place (issue 33)
            posterior = match_scale(logits, trajectory.posterior_logits, valid, in_place=True)
            prior = match_scale(prior_logits, trajectory.prior_logits, valid, in_place=True)
        del logits, prior_logits
        kl = surprise(posterior, prior)
        del prior
        entropy = mean_entropy(posterior, valid)
        with torch.inference_mode():
            probs = softmax_(posterior)  # in place: the scaled logits are read no more
        del posterior
        if keep_latents and kind == "full" and deter is not None:
            latents = (probs, deter)
        rows = flatten_posteriors(probs, valid, config.layout)
        del probs, deter
        other = _score(rows, valid, kl, config, budget)
        if kind == "full":
            activation = activation_observation_scores(rows, other.fit)
            first = spearman(sample.activation[valid], activation[valid])
        cosines = matched_cosines(fit.prototypes, other.fit.prototypes)
        results.append(
            RandomizationStage(
                kind=kind,
                layers=name,
                entropy=entropy,
                observation_spearman=spearman(
                    sample.per_observation[valid], other.per_observation[valid]
                ),
                prototype_cosine=float(cosines.mean()),
            )
        )
    return tuple(results), latents, first


def _valid_rows(values: Tensor, valid: Tensor) -> Tensor:
    """``values[valid]``, the valid steps' rows in time-major order, without a copy when every
    step is valid (a view: at 1024 x 50 the two logit tensors are 82 MB each, issue 33).

    Shape:
        - values: ``[L, B, ...]``; valid: ``[L, B]`` bool; output: ``[N, ...]``
    """
    return values.flatten(0, 1) if bool(valid.all()) else values[valid]


def _deletion(
    agent: DreamerAgent, trajectory: Trajectory, valid: Tensor, main: _Scored
) -> tuple[float, float]:
    effects = deletion_effects(
        agent, trajectory.deter, trajectory.posterior_logits, trajectory.prior_logits
    ).to(valid.device)
    top = main.top
    episodes = torch.arange(top.shape[0], device=top.device)[:, None].expand_as(top)
    picked = top >= 0
    top_effect = effects[top[picked], episodes[picked]]
    return float(top_effect.mean()), float(effects[valid].mean())


def _assemble(
    trajectory: Trajectory,
    config: ExplainConfig,
    metrics: TrustMetrics,
    main: _Scored,
    valid: Tensor,
    stability: np.ndarray,
) -> Explanation:
    def host(tensor: Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    rows = main.rows
    step_scores = normalize_valid(main.per_categorical, valid)
    obs_scores = normalize_valid(main.per_observation, valid)
    row_raw = _row_scores(main)  # invalid entries are 0, so the rows hold the overall peak
    peak = row_raw.max()
    row_scores = row_raw / peak if float(peak) > 0 else row_raw
    factor_activity = host(factor_activations(rows, main.fit))
    examples = _examples(factor_activity, host(valid), config.top_k)
    categorical = (
        rows.categorical if rows.categorical is not None else torch.full_like(rows.step, -1)
    )
    return Explanation(
        game=trajectory.game,
        pomdp=trajectory.pomdp,
        seeds=trajectory.seeds,
        action_names=game_spec(trajectory.game).action_names,
        fact_names=trajectory.fact_names,
        config=config,
        metrics=metrics,
        prototypes=host(main.fit.prototypes),
        activations=host(main.fit.activations),
        row_step=host(rows.step),
        row_episode=host(rows.episode),
        row_categorical=host(categorical),
        row_scores=host(row_scores),
        step_scores=host(step_scores),
        observation_scores=host(obs_scores),
        top_observations=host(main.top),
        factor_activations=factor_activity,
        factor_examples=examples,
        factor_stability=stability.astype(np.float64),
        beliefs=np.zeros((0, *trajectory.observations.shape[1:]), dtype=np.float32),
        factor_decoded=np.zeros((0, *trajectory.observations.shape[2:]), dtype=np.float32),
        observations=host(trajectory.observations),
        posterior_probs=host(trajectory.posterior_probs),  # recomputed: not held meanwhile
        stoch_classes=host(trajectory.stoch_classes.to(torch.int16)),
        actions=host(trajectory.actions),
        rewards=host(trajectory.rewards),
        valid=host(valid),
        facts=host(trajectory.facts),
    )


def _examples(activations: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """``[r, k, 2]`` (step, episode) of each factor's picks (``results/picks.py``), -1 where
    fewer than ``k`` valid observations exist."""
    steps, episodes = np.nonzero(valid)
    width = min(k, len(steps))
    order, _ = top_picks(activations[valid], episodes, width)  # [width, r]
    pairs = np.full((activations.shape[2], k, 2), -1, dtype=np.int64)
    pairs[:, :width, 0] = steps[order].T
    pairs[:, :width, 1] = episodes[order].T
    return pairs


def _decoded(
    agent: DreamerAgent, trajectory: Trajectory, valid: Tensor, e: Explanation
) -> tuple[np.ndarray, np.ndarray]:
    """The decoded views (``analysis/decoding.py``): beliefs and decoded factors."""
    strongest = np.full(e.rank, -1, dtype=np.int64)
    if e.config.layout == "pooled":
        for j, (t, b) in enumerate(e.factor_examples[:, 0]):
            rows = np.flatnonzero((e.row_step == t) & (e.row_episode == b))
            if t >= 0 and len(rows):
                strongest[j] = e.row_categorical[rows[np.argmax(e.activations[rows, j])]]
    beliefs = decoded_beliefs(agent, trajectory.deter, trajectory.posterior_logits, valid)
    factors = decoded_factors(
        agent,
        trajectory.deter,
        trajectory.posterior_logits,
        e.prototypes,
        e.factor_examples,
        strongest,
    )
    return beliefs, factors
