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
    FactorizationError,
    SavedDataError,
    UnknownGameError,
    UnsafeCheckpointError,
)
from .games import GAMES, GameSpec, game_spec
from .version import __version__

_LAZY = {
    "AgentMetadata": "model.agent",
    "DreamerAgent": "model.agent",
    "LatentState": "model.agent",
    "build_agent": "model.agent",
    "load_checkpoint": "model.checkpoint",
    "save_checkpoint": "model.checkpoint",
    "ModelSizes": "model.networks",
    "NoiseKeys": "model.sampling",
    "Trajectory": "rollout.rollouts",
    "run_rollouts": "rollout.rollouts",
    "explain": "analysis.pipeline",
    "ExplainConfig": "results.explanation",
    "Explanation": "results.explanation",
    "load_explanation": "results.explanation",
    "fact_associations": "results.semantics",
    "claims_table": "results.claims",
    "score_event_test": "results.claims",
    "ClaimConfig": "results.config",
    "BaselineTolerances": "results.baseline",
    "TrustThresholds": "results.trustworthy",
    "DreamerAudit": "plugin.audit_object",
    "AuditSettings": "settings",
}
# Submodules users address by their short names (``pytest_dreamer_audit.assertions``).
_MODULES = {"assertions": "results.assertions", "semantics": "results.semantics"}

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
    "FactorizationError",
    "GameSpec",
    "SavedDataError",
    "UnknownGameError",
    "UnsafeCheckpointError",
    "__version__",
    "game_spec",
    # Resolved lazily (see _LAZY and _MODULES):
    "AgentMetadata",
    "AuditSettings",
    "BaselineTolerances",
    "ClaimConfig",
    "DreamerAudit",
    "ExplainConfig",
    "Explanation",
    "TrustThresholds",
    "assertions",
    "explain",
    "claims_table",
    "fact_associations",
    "load_explanation",
    "score_event_test",
    "semantics",
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
    from .analysis.pipeline import explain
    from .model.agent import AgentMetadata, DreamerAgent, LatentState, build_agent
    from .model.checkpoint import load_checkpoint, save_checkpoint
    from .model.networks import ModelSizes
    from .model.sampling import NoiseKeys
    from .plugin.audit_object import DreamerAudit
    from .results import assertions, semantics
    from .results.baseline import BaselineTolerances
    from .results.claims import claims_table, score_event_test
    from .results.config import ClaimConfig
    from .results.explanation import ExplainConfig, Explanation, load_explanation
    from .results.semantics import fact_associations
    from .results.trustworthy import TrustThresholds
    from .rollout.rollouts import Trajectory, run_rollouts
    from .settings import AuditSettings


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value: Any = import_module(f".{_MODULES[name]}", __name__)
    elif name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
