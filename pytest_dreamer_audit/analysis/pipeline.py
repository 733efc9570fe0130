"""Explain a batch of rollouts: factorize the posteriors, score, pick examples, measure trust.

``explain(trajectory, config, agent=agent)`` is the one entry point; it returns an
:class:`~pytest_dreamer_audit.results.explanation.Explanation` of plain arrays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..games import game_spec
from ..model.agent import DreamerAgent, build_agent
from ..results.explanation import ExplainConfig, Explanation, TrustMetrics
from ..rollout.rollouts import Trajectory, replay_posteriors
from .factorize import Factorization, FlatRows, NMFConfig, fit_nmf, flatten_posteriors
from .scores import (
    categorical_scores,
    factor_examples,
    normalize_valid,
    observation_scores,
    surprise,
    top_observations,
)
from .trust import deletion_effects, matched_cosines, spearman, topk_jaccard

__all__ = ["explain"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Scored:
    rows: FlatRows
    fit: Factorization
    per_categorical: Tensor  # [L, B, C], un-normalised
    per_observation: Tensor  # [L, B], un-normalised
    top: Tensor  # [B, k]


def _score(
    probs: Tensor, valid: Tensor, kl: Tensor, config: ExplainConfig, nmf: NMFConfig
) -> _Scored:
    rows = flatten_posteriors(probs, valid, config.layout)
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
        config: the explanation settings (defaults: rank 10, pooled, activation score).
        agent: the agent that produced the trajectory; needed for the sanity check (its
            architecture with random weights) and deletion faithfulness (its actor). Without it
            those metrics are NaN.
        progress: called with a short label before each expensive stage (for progress bars).

    Returns:
        An :class:`Explanation` with numpy arrays on the CPU.
    """
    config = config or ExplainConfig()
    note = progress or (lambda _label: None)
    valid = trajectory.valid.bool()
    probs = trajectory.posterior_probs
    kl = surprise(trajectory.posterior_logits, trajectory.prior_logits)

    note("factorize")
    main = _score(probs, valid, kl, config, config.nmf())
    stability = _stability(probs, valid, kl, config, main, note)
    confidence = spearman(_row_scores(main), main.rows.matrix.norm(dim=1))
    sanity, deletion = (math.nan, (math.nan, math.nan))
    if agent is not None:
        note("sanity check")
        sanity = _sanity(agent, trajectory, valid, config, main)
        note("deletion")
        deletion = _deletion(agent, trajectory, valid, main)
    metrics = TrustMetrics(
        relative_error=main.fit.relative_error,
        explained_variance=main.fit.explained_variance,
        iterations=main.fit.iterations,
        stability_mean_cosine=stability[0],
        stability_min_cosine=stability[1],
        stability_topk_jaccard=stability[2],
        confidence_spearman=confidence,
        sanity_spearman=sanity,
        deletion_topk=deletion[0],
        deletion_random=deletion[1],
        deletion_ratio=deletion[0] / deletion[1] if deletion[1] > 0 else math.nan,
    )
    return _assemble(trajectory, config, metrics, main, valid, probs)


def _row_scores(scored: _Scored) -> Tensor:
    """Un-normalised score of each NMF row (pooled: a categorical; per step: an observation)."""
    rows = scored.rows
    if rows.categorical is not None:
        return scored.per_categorical[rows.step, rows.episode, rows.categorical]
    return scored.per_observation[rows.step, rows.episode]


def _stability(
    probs: Tensor, valid: Tensor, kl: Tensor, config: ExplainConfig, main: _Scored, note: Progress
) -> tuple[float, float, float]:
    if config.stability_refits == 0:
        return math.nan, math.nan, math.nan
    means, minima, overlaps = [], [], []
    for refit in range(1, config.stability_refits + 1):
        note(f"stability refit {refit}/{config.stability_refits}")
        other = _score(
            probs, valid, kl, config, config.nmf(init="random", seed=config.seed + refit)
        )
        cosines = matched_cosines(main.fit.prototypes, other.fit.prototypes)
        means.append(float(cosines.mean()))
        minima.append(float(cosines.min()))
        overlaps.append(topk_jaccard(main.top, other.top))
    return float(np.mean(means)), float(np.min(minima)), float(np.mean(overlaps))


def _sanity(
    agent: DreamerAgent, trajectory: Trajectory, valid: Tensor, config: ExplainConfig, main: _Scored
) -> float:
    randomized = build_agent(agent.sizes, seed=config.sanity_seed).to(agent.device)
    replayed = replay_posteriors(randomized, trajectory)
    probs = torch.softmax(replayed.posterior_logits, dim=-1)
    kl = surprise(replayed.posterior_logits, replayed.prior_logits)
    # Only the scores are compared: give the (slowly converging, nearly uniform) random-weights
    # posteriors the iteration budget the main fit needed, not the full cap.
    budget = dataclasses.replace(config.nmf(), max_iter=max(main.fit.iterations, 10))
    other = _score(probs, valid, kl, config, budget)
    return spearman(main.per_observation[valid], other.per_observation[valid])


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
    probs: Tensor,
) -> Explanation:
    def host(tensor: Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    rows = main.rows
    step_scores = normalize_valid(main.per_categorical, valid)
    obs_scores = normalize_valid(main.per_observation, valid)
    row_raw = _row_scores(main)  # invalid entries are 0, so the rows hold the overall peak
    peak = row_raw.max()
    row_scores = row_raw / peak if float(peak) > 0 else row_raw
    factor_activity, examples = factor_examples(rows, main.fit, valid, config.top_k)
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
        factor_activations=host(factor_activity),
        factor_examples=host(examples),
        observations=host(trajectory.observations),
        posterior_probs=host(probs),
        stoch_classes=host(trajectory.stoch.argmax(dim=-1).to(torch.int16)),
        actions=host(trajectory.actions),
        rewards=host(trajectory.rewards),
        valid=host(valid),
        facts=host(trajectory.facts),
    )
