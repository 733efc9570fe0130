"""Test doubles: tiny agents and checkpoint writers, public so users can test their audits fast.

A tiny agent has the reference architecture with small widths (a forward pass costs microseconds)
and random weights from a fixed seed, so tests of rollouts, explanations and the plugin run on a
CPU in seconds.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .games import game_spec
from .model.agent import AgentMetadata, DreamerAgent, build_agent
from .model.checkpoint import save_checkpoint
from .model.networks import ModelSizes

__all__ = ["tiny_agent", "tiny_sizes", "write_tiny_checkpoint"]


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
