"""The agent under test (a private copy of the checkpoint, or random weights) and its rollout."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pytest_dreamer_audit.model.agent import AgentMetadata, DreamerAgent, build_agent
from pytest_dreamer_audit.model.checkpoint import load_checkpoint
from pytest_dreamer_audit.model.networks import ModelSizes
from pytest_dreamer_audit.rollout.rollouts import Trajectory, run_rollouts

GAME, STEPS = "freeway", 50
"""Every suite rolls out Freeway POMDP for 50 steps."""
CHECKPOINT = "checkpoint"
RANDOM_WEIGHTS = "reference sizes, random weights (seed 0)"


@dataclass(frozen=True, kw_only=True)
class AgentDescription:
    """Which agent a run measured: a checkpoint, or the reference sizes with random weights."""

    kind: str
    """``CHECKPOINT`` or ``RANDOM_WEIGHTS``."""
    sizes: Mapping[str, int]
    """The agent's ``ModelSizes`` as plain numbers."""
    path: str | None = None
    """The checkpoint as given (the run read a copy of it)."""
    sha256_16: str | None = None
    """The first 16 hex digits of the copy's SHA-256."""
    env_steps: int | None = None
    recent_mean_return: float | None = None
    note: str | None = None
    """Why there is no checkpoint (random weights only)."""

    def to_json(self) -> dict[str, Any]:
        if self.kind == CHECKPOINT:
            return {
                "kind": self.kind,
                "path": self.path,
                "sha256_16": self.sha256_16,
                "env_steps": self.env_steps,
                "recent_mean_return": self.recent_mean_return,
                "sizes": dict(self.sizes),
            }
        return {"kind": self.kind, "note": self.note, "sizes": dict(self.sizes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentDescription:
        return cls(
            kind=data["kind"],
            sizes=data["sizes"],
            path=data.get("path"),
            sha256_16=data.get("sha256_16"),
            env_steps=data.get("env_steps"),
            recent_mean_return=data.get("recent_mean_return"),
            note=data.get("note"),
        )


@dataclass(frozen=True)
class AgentSource:
    """The agent every suite uses, and the file the end-to-end suite loads it from."""

    agent: DreamerAgent
    path: Path | None
    """A private copy of the checkpoint, or None for random weights."""
    description: AgentDescription


def prepare_agent(checkpoint: Path | None, device: torch.device, workdir: Path) -> AgentSource:
    """Copy the checkpoint into ``workdir`` (training may rewrite the original), load the copy.

    Without a readable file: the reference sizes (Freeway POMDP) with random weights, seed 0.
    """
    if checkpoint is not None and checkpoint.is_file():
        copy = workdir / checkpoint.name
        shutil.copyfile(checkpoint, copy)
        try:
            agent = load_checkpoint(copy, device=device)
        except Exception as error:  # a file caught mid-rewrite: fall back, say so
            note = f"could not load {checkpoint} ({type(error).__name__}: {error})"
        else:
            training = agent.metadata.training or {}
            description = AgentDescription(
                kind=CHECKPOINT,
                path=str(checkpoint),
                sha256_16=hashlib.sha256(copy.read_bytes()).hexdigest()[:16],
                env_steps=training.get("env_steps"),
                recent_mean_return=training.get("recent_mean_return"),
                sizes=vars(agent.sizes),
            )
            return AgentSource(agent, copy, description)
    else:
        note = f"no checkpoint at {checkpoint}"
    sizes = ModelSizes(channels=2, actions=3)
    agent = build_agent(sizes, seed=0, metadata=AgentMetadata(GAME, True)).to(device)
    return AgentSource(
        agent, None, AgentDescription(kind=RANDOM_WEIGHTS, note=note, sizes=vars(sizes))
    )


def rollout(agent: DreamerAgent, episodes: int, seed: int = 0) -> Trajectory:
    """``episodes`` x ``STEPS`` of Freeway POMDP in lock-step; episode b uses seed ``seed + b``."""
    return run_rollouts(agent, GAME, pomdp=True, episodes=episodes, steps=STEPS, seed=seed)
