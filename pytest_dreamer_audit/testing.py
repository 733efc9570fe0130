"""Test doubles: tiny agents and checkpoint writers, public so users can test their audits fast.

A tiny agent has the reference architecture with small widths (a forward pass costs microseconds)
and random weights from a fixed seed, so tests of rollouts, explanations and the plugin run on a
CPU in seconds. A fake explanation (random arrays of the right shapes) tests what reads
explanations without an agent; ``FAST_INI`` makes a pytester project's audits take a second.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .games import game_spec
from .model.agent import AgentMetadata, DreamerAgent, build_agent
from .model.checkpoint import save_checkpoint
from .model.networks import ModelSizes
from .results.config import Layout
from .results.explanation import ExplainConfig, Explanation, TrustMetrics
from .rollout.envs import fact_names

__all__ = [
    "FAST_INI",
    "fake_explanation",
    "tiny_agent",
    "tiny_sizes",
    "write_tiny_checkpoint",
]


def tiny_sizes(game: str = "freeway", *, pomdp: bool = True, **overrides: Any) -> ModelSizes:
    """Small sizes fitting ``game``: 4 categoricals x 5 classes, widths of 8 to 32."""
    spec = game_spec(game)
    sizes = ModelSizes(
        channels=len(spec.observed_channels(pomdp)),
        actions=spec.actions,
        deter=16,
        categoricals=4,
        classes=5,
        embedding=24,
        node=16,
        depth=4,
        actor_hidden=12,
        actor_layers=2,
        head_hidden=8,
        head_layers=2,
    )
    return replace(sizes, **overrides)


def tiny_agent(
    game: str = "freeway", *, pomdp: bool = True, seed: int = 0, **overrides: Any
) -> DreamerAgent:
    """A tiny agent with seeded random weights and native metadata for ``game``."""
    return build_agent(
        tiny_sizes(game, pomdp=pomdp, **overrides),
        seed=seed,
        metadata=AgentMetadata(game=game, pomdp=pomdp, training={"kind": "tiny test agent"}),
    )


def write_tiny_checkpoint(
    path: str | os.PathLike[str],
    game: str = "freeway",
    *,
    pomdp: bool = True,
    seed: int = 0,
    native: bool = True,
    **overrides: Any,
) -> Path:
    """Write a tiny agent's checkpoint (``native=False``: the plain reference format)."""
    return save_checkpoint(
        tiny_agent(game, pomdp=pomdp, seed=seed, **overrides), path, native=native
    )


FAST_INI = """
[pytest]
dreamer_episodes = 2
dreamer_steps = 6
dreamer_rank = 3
dreamer_top_k = 2
dreamer_stability_refits = 1
dreamer_render_episodes = 1
dreamer_device = cpu
"""
"""An ini file (for ``pytester.makeini``) whose audits of a tiny agent take about a second."""


def fake_explanation(
    *,
    game: str = "freeway",
    pomdp: bool = True,
    steps: int = 12,
    episodes: int = 3,
    categoricals: int = 4,
    classes: int = 5,
    rank: int = 3,
    top_k: int = 3,
    layout: Layout = "pooled",
    lengths: list[int] | None = None,
    seed: int = 0,
) -> Explanation:
    """An Explanation of seeded random arrays with the documented shapes (no agent, no NMF),
    for tests of what reads explanations (rendering, reports).

    ``lengths[b]`` valid steps per episode (default: all ``steps``); rows after are padding.
    """
    rng = np.random.default_rng(seed)
    spec = game_spec(game)
    channels = len(spec.observed_channels(pomdp))
    lengths = lengths or [steps] * episodes
    valid = np.arange(steps)[:, None] < np.asarray(lengths)[None, :]  # [L, B]
    logits = rng.normal(size=(steps, episodes, categoricals, classes)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    width = classes if layout == "pooled" else categoricals * classes
    prototypes = rng.random((rank, width))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    t, b, c = np.nonzero(np.broadcast_to(valid[..., None], (steps, episodes, categoricals)))
    if layout == "per_step":
        t, b = np.nonzero(valid)
        c = np.full_like(t, -1)
    rows = len(t)
    step_scores = rng.random((steps, episodes, categoricals)) * valid[..., None]
    obs_scores = rng.random((steps, episodes)) * valid
    obs_scores /= obs_scores.max()
    top = np.argsort(-obs_scores, axis=0)[:top_k].T.copy()  # [B, k]
    top[~valid[top, np.arange(episodes)[:, None]]] = -1
    factor_activations = rng.random((steps, episodes, rank)) * valid[..., None]
    flat = factor_activations.reshape(-1, rank).T
    best = np.argsort(-flat, axis=1)[:, :top_k]
    examples = np.stack([best // episodes, best % episodes], axis=-1)
    names = fact_names(game)
    facts = np.zeros((steps, episodes, len(names)), dtype=np.int32)
    if "move_ready" in names:
        facts[..., names.index("move_ready")] = rng.integers(0, 2, (steps, episodes))
    facts[..., names.index("sticky")] = rng.random((steps, episodes)) < 0.1
    return Explanation(
        game=game,
        pomdp=pomdp,
        seeds=tuple(range(episodes)),
        action_names=spec.action_names,
        fact_names=names,
        config=ExplainConfig(rank=rank, layout=layout, top_k=top_k),
        metrics=TrustMetrics(relative_error=0.1, explained_variance=0.9, iterations=50),
        prototypes=prototypes.astype(np.float32),
        activations=rng.random((rows, rank)).astype(np.float32),
        row_step=t,
        row_episode=b,
        row_categorical=c,
        row_scores=rng.random(rows).astype(np.float32),
        step_scores=step_scores.astype(np.float32),
        observation_scores=obs_scores.astype(np.float32),
        top_observations=top,
        factor_activations=factor_activations.astype(np.float32),
        factor_examples=examples,
        factor_stability=np.full(rank, 0.95),
        beliefs=np.zeros((0, episodes, channels, 10, 10), dtype=np.float32),
        factor_decoded=np.zeros((0, channels, 10, 10), dtype=np.float32),
        observations=rng.random((steps, episodes, channels, 10, 10)) < 0.1,
        posterior_probs=probs.astype(np.float32),
        stoch_classes=probs.argmax(-1).astype(np.int16),
        actions=rng.integers(0, spec.actions, (steps, episodes)),
        rewards=((rng.random((steps, episodes)) < 0.05) & valid).astype(np.float32),
        valid=valid,
        facts=facts,
    )


# --- markup in reports --------------------------------------------------------------------------
