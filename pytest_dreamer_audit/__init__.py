"""pytest-dreamer-audit: audit trained DreamerV2 agents with pytest.

Importing this package does not import torch: pytest loads every installed plugin on every run,
so the heavy names below are resolved on first use (PEP 562 ``__getattr__``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointNotFoundError,
    CheckpointShapeError,
    CheckpointValueError,
    ConfigError,
    DreamerAuditError,
    UnknownGameError,
    UnsafeCheckpointError,
)
from .games import GAMES, GameSpec, game_spec

__version__ = "0.1.0"

_LAZY = {
    "AgentMetadata": "agent",
    "DreamerAgent": "agent",
    "LatentState": "agent",
    "build_agent": "agent",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "ModelSizes": "networks",
    "NoiseKeys": "sampling",
    "Trajectory": "rollout",
    "run_rollouts": "rollout",
}

__all__ = [
    "GAMES",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointKeyError",
    "CheckpointNotFoundError",
    "CheckpointShapeError",
    "CheckpointValueError",
    "ConfigError",
    "DreamerAuditError",
    "GameSpec",
    "UnknownGameError",
    "UnsafeCheckpointError",
    "__version__",
    "game_spec",
    # Resolved lazily (see _LAZY):
    "AgentMetadata",
    "DreamerAgent",
    "LatentState",
    "ModelSizes",
    "NoiseKeys",
    "Trajectory",
    "build_agent",
    "load_checkpoint",
    "run_rollouts",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from .agent import AgentMetadata, DreamerAgent, LatentState, build_agent
    from .checkpoint import load_checkpoint, save_checkpoint
    from .networks import ModelSizes
    from .rollout import Trajectory, run_rollouts
    from .sampling import NoiseKeys


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
