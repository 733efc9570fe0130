"""The package's one error hierarchy.

Every error raised on purpose by pytest-dreamer-audit is a :class:`DreamerAuditError`. Messages say
what went wrong, why it matters and how to fix it, so that a user can act on the first line.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointKeyError",
    "CheckpointNotFoundError",
    "CheckpointShapeError",
    "CheckpointValueError",
    "ConfigError",
    "DreamerAuditError",
    "FactorizationError",
    "UnknownGameError",
    "UnsafeCheckpointError",
]


class DreamerAuditError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(DreamerAuditError, ValueError):
    """A setting or argument has a value the package cannot work with."""


class UnknownGameError(ConfigError):
    """A game name that is not one of the five MinAtar games."""


class CheckpointError(DreamerAuditError):
    """A checkpoint file cannot be used; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class CheckpointFormatError(CheckpointError):
    """The file is not a torch checkpoint, or not one laid out as a DreamerV2 checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle holds objects that ``torch.load(weights_only=True)`` refuses; nothing was run."""


class CheckpointKeyError(CheckpointError):
    """Modules or parameters are missing, or unexpected ones are present."""


class CheckpointShapeError(CheckpointError):
    """Tensor shapes contradict each other, so the network sizes are not consistent."""


class CheckpointValueError(CheckpointError):
    """Tensors hold values the agent cannot use (NaN, infinity, non-float dtypes)."""


class FactorizationError(DreamerAuditError, ValueError):
    """The input of an NMF is unusable (negative, non-finite, empty) or the fit failed."""
