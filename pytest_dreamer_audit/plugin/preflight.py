"""Start-up checks of the audited checkpoints against the settings.

Run by the plugin at configure time (in the controller and in every xdist worker), only when
checkpoints are given, so that a broken file or a setting that cannot work with it (a rank above
the row width, a game the agent does not fit) stops the run with one line before any test
starts, instead of failing every test.

Loading a checkpoint imports torch. What the check needs of it, the agent's sizes and its
recorded game, is kept in the audit cache (``agent-<key>``, keyed by the checkpoint's content
hash and the package's source, verified like every entry), so that a warm run checks every
checkpoint without importing torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import PYTEST, SavedDataError
from ..settings import AuditSettings
from .cache import cached, code_digest
from .digests import file_digest, read_checked

__all__ = ["AgentFacts", "check_checkpoint"]

FACTS_FILE = "agent.json"
_SIZES = ("categoricals", "classes", "channels", "actions", "deter")


@dataclass(frozen=True)
class AgentFacts:
    """What the start-up check needs of a checkpoint: the sizes of ``settings.AgentShape`` and
    the recorded game and POMDP flag (None when the file does not record them)."""

    categoricals: int
    classes: int
    channels: int
    actions: int
    deter: int
    game: str | None
    pomdp: bool | None


def _read(entry: Path) -> AgentFacts:
    try:
        data = json.loads((entry / FACTS_FILE).read_text())
    except (OSError, ValueError) as error:
        raise SavedDataError(f"{FACTS_FILE} is unreadable ({error})") from None
    if not isinstance(data, dict) or set(data) != {*_SIZES, "game", "pomdp"}:
        raise SavedDataError(f"{FACTS_FILE} does not hold an agent's sizes")
    sizes = [data[name] for name in _SIZES]
    if not all(type(value) is int and 1 <= value <= 1 << 20 for value in sizes):
        raise SavedDataError(f"{FACTS_FILE} holds sizes that are not positive integers")
    if not (data["game"] is None or isinstance(data["game"], str)):
        raise SavedDataError(f"{FACTS_FILE} holds a game that is not a name")
    if not (data["pomdp"] is None or isinstance(data["pomdp"], bool)):
        raise SavedDataError(f"{FACTS_FILE} holds a POMDP flag that is not a boolean")
    return AgentFacts(
        categoricals=data["categoricals"],
        classes=data["classes"],
        channels=data["channels"],
        actions=data["actions"],
        deter=data["deter"],
        game=data["game"],
        pomdp=data["pomdp"],
    )


def agent_facts(
    checkpoint: str, cache_root: Path, split: tuple[int | None, int | None] = (None, None)
) -> AgentFacts:
    """The checkpoint's sizes and recorded game: from the cache, else by loading it (torch).
    ``split``: the stochastic split ``(C, K)`` to load a reference checkpoint with, or
    ``(None, None)`` to read it from the checkpoint (``AuditSettings.split``)."""
    categoricals, classes = split
    if not Path(checkpoint).is_file():
        from ..model.checkpoint import load_checkpoint

        load_checkpoint(checkpoint, spelling=PYTEST)  # raises the error saying what is wrong
    digest = file_digest(checkpoint)
    text = f"{digest} {code_digest()} {categoricals} {classes}"
    key = "agent-" + hashlib.sha256(text.encode()).hexdigest()[:24]

    def build(directory: Path) -> None:
        from ..model.checkpoint import load_checkpoint

        # The bytes hashed for the key, read once: a file saved over meanwhile is refused.
        agent = load_checkpoint(
            checkpoint,
            content=read_checked(checkpoint, digest),
            categoricals=categoricals,
            classes=classes,
            spelling=PYTEST,
        )
        facts = {name: getattr(agent.sizes, name) for name in _SIZES}
        facts |= {"game": agent.metadata.game, "pomdp": agent.metadata.pomdp}
        (directory / FACTS_FILE).write_text(json.dumps(facts, sort_keys=True) + "\n")

    return cached(cache_root, key, build, _read)[1]


def check_checkpoint(settings: AuditSettings, cache_root: Path) -> None:
    """Raise a :class:`~pytest_dreamer_audit.errors.DreamerAuditError` if the audit cannot run."""
    if settings.device not in ("auto", "cpu"):
        from ..model.devices import resolve_device  # a cuda:N this machine lacks fails here

        resolve_device(settings.device)
    facts = agent_facts(settings.checkpoint, cache_root, settings.split)
    settings.check_agent(facts, facts.game, facts.pomdp)
