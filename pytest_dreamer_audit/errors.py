"""The package's one error hierarchy.

Every error raised on purpose by pytest-dreamer-audit is a :class:`DreamerAuditError`. Messages say
what went wrong, why it matters and how to fix it, so that a user can act on the first line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMMAND_LINE",
    "CacheEntryWarning",
    "PYTEST",
    "PYTHON",
    "SavedDataError",
    "Spelling",
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


class SavedDataError(DreamerAuditError, ValueError):
    """A file this package saved (an explanation, a trajectory, a cache entry) is damaged, was
    changed after it was written, or was written by another version of the package."""


class CacheEntryWarning(UserWarning):
    """A cache entry failed its checks (damaged, tampered with, or from another version) and
    was rebuilt instead of used."""


class FactorizationError(DreamerAuditError, ValueError):
    """The input of an NMF is unusable (negative, non-finite, empty) or the fit failed."""


@dataclass(frozen=True)
class Spelling:
    """How one edge of the package names a setting in the "how to fix" part of a message.

    The library's functions take Python keywords (``game='freeway'``), the pytest plugin takes
    ``--dreamer-*`` options with ini keys and marker keywords, the ``dreamer-audit`` command its own
    options; a message built with a spelling names what the user can actually type.
    """

    prefix: str
    """``""`` for Python keywords, else the option prefix (``"--dreamer-"``, ``"--"``)."""
    ini_prefix: str = ""
    """Where settings also have ini keys and marker keywords: the ini key prefix."""

    def name(self, name: str) -> str:
        """How this edge names the setting ``name`` (``--dreamer-game``, ``game=``)."""
        return f"{self.prefix}{name.replace('_', '-')}" if self.prefix else f"{name}="

    def metavar(self, name: str, default: str) -> str:
        """What the help shows as the value of the setting ``name``, whose default is written
        ``default``: ``true|false`` for a flag (its default is ``"true"`` or ``"false"``), the
        name in capitals otherwise (``--dreamer-probes true|false``, ``--dreamer-rank RANK``)."""
        return "true|false" if default in ("true", "false") else name.upper()

    def option(self, name: str, value: object) -> str:
        """``name`` set to ``value`` as this edge writes it (``--dreamer-game freeway``)."""
        if not self.prefix:
            return f"{name}={value!r}"
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flag = f"{self.prefix}{name.replace('_', '-')} {text}"
        if not self.ini_prefix:
            return flag
        return (
            f"{flag} (or the ini key {self.ini_prefix}{name}, or "
            f"@pytest.mark.dreamer_audit({name}=...))"
        )


PYTHON = Spelling("")
PYTEST = Spelling("--dreamer-", "dreamer_")
COMMAND_LINE = Spelling("--")
