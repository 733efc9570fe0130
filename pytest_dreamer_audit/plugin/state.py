"""The plugin's state: its option names, what ``pytest_configure`` validates once per session
(:class:`PluginState`), where tests leave what the reports show (stash keys), and how a
``dreamer_audit`` marker changes a test's settings.

Imported on every pytest run: no torch, no NumPy (the checkpoint checks import torch lazily, when
a checkpoint is new).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..errors import ConfigError, DreamerAuditError
from ..files import ensure_writable, regular_file
from ..report.records import AuditRecord, Check
from ..report.terminal import printable
from ..settings import MARKER, OPTIONS, AuditSettings, parse_value

__all__ = [
    "CHECKPOINT_FLAG",
    "CHECKPOINT_INI",
    "CHECKS",
    "EVIDENCE",
    "RECORDS",
    "STATE",
    "UPDATE_FLAG",
    "UPDATE_INI",
    "PluginState",
    "marker_settings",
    "read_state",
]

CHECKPOINT_FLAG = "--dreamer-checkpoint"
CHECKPOINT_INI = "dreamer_checkpoint"
UPDATE_FLAG = "--dreamer-update-baselines"
UPDATE_INI = "dreamer_update_baselines"


@dataclass
class PluginState:
    """Validated start-up settings and what the controller collects for the summaries."""

    template: AuditSettings
    checkpoints: list[str]
    update_baselines: bool
    artifacts: Path
    cache_dir: Path
    baseline_dir: str
    threads: int = 1
    summaries: list[AuditRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Lines for the terminal summary about reports the plugin could not read."""
    claimed: dict[Path, str] = field(default_factory=dict)
    """Which test writes each artifacts folder and baseline in this process."""
    pictures: dict[str, str] = field(default_factory=dict)
    """Which test's report carries each explanation's pictures (by key): the controller's,
    under xdist, where the workers' reports meet."""


STATE = pytest.StashKey[PluginState]()
RECORDS = pytest.StashKey[list[AuditRecord]]()
EVIDENCE = pytest.StashKey[Path]()
CHECKS = pytest.StashKey[list[Check]]()


def _value(config: pytest.Config, name: str) -> Any:
    cli = config.getoption(name)
    return cli if cli not in (None, []) else config.getini(name)


def _check_writable(path: Path, what: str, flag: str) -> None:
    """Create ``path`` and write a probe file there, so a bad path fails at start-up."""
    try:
        ensure_writable(path, what, flag)
    except ConfigError as error:
        raise pytest.UsageError(printable(f"dreamer-audit: {error}")) from None


def read_state(config: pytest.Config) -> PluginState:
    """The session's validated settings from the options and the ini file; a usage error (the
    run stops before collecting) for anything wrong, each checkpoint checked up front."""
    values = {}
    checkpoints = [str(p) for p in _value(config, CHECKPOINT_INI)]
    try:
        from .cache import signing_key

        signing_key()  # a key set but empty must stop the run, not silently turn signing off
        for option in OPTIONS:
            values[option.field] = parse_value(option, str(_value(config, option.ini)))
        for path in checkpoints:
            regular_file(path, CHECKPOINT_FLAG)
        artifacts = Path(values.pop("artifacts"))
        cache_dir = values.pop("cache_dir")
        baseline_dir = values.pop("baseline_dir")
        threads = values.pop("threads")
        template = AuditSettings(checkpoint="", **values)
    except DreamerAuditError as error:
        raise pytest.UsageError(printable(f"dreamer-audit: {error}")) from None
    cache = (
        Path(cache_dir) if cache_dir else config.rootpath / ".pytest_cache" / "d" / "dreamer-audit"
    )
    if template.device.startswith("cuda"):
        from ..model.devices import resolve_device  # imports torch: only when CUDA is asked for

        try:
            resolve_device(template.device)
        except DreamerAuditError as error:
            raise pytest.UsageError(
                printable(f"dreamer-audit: --dreamer-device: {error}")
            ) from None
    if checkpoints:
        _check_writable(artifacts, "artifacts directory", "--dreamer-artifacts")
        _check_writable(cache, "cache directory", "--dreamer-cache-dir")
        from .preflight import check_checkpoint  # imports torch when a checkpoint is new

        for path in checkpoints:
            try:
                check_checkpoint(dataclasses.replace(template, checkpoint=path), cache)
            except DreamerAuditError as error:
                raise pytest.UsageError(printable(f"dreamer-audit: {error}")) from None
    update = bool(_value(config, UPDATE_INI))
    if baseline_dir and not update and not Path(baseline_dir).is_dir():
        raise pytest.UsageError(
            f"dreamer-audit: --dreamer-baseline-dir {baseline_dir} does not exist; create it, or "
            "pass --dreamer-update-baselines to write the baselines there"
        )
    return PluginState(
        template=template,
        checkpoints=checkpoints,
        update_baselines=update,
        artifacts=artifacts,
        cache_dir=cache,
        baseline_dir=baseline_dir,
        threads=threads,
    )


def marker_settings(template: AuditSettings, marker: pytest.Mark) -> AuditSettings:
    """The template with a marker's keywords applied; typed errors for anything else."""
    if marker.args:
        raise ConfigError(f"@pytest.mark.{MARKER} takes keyword arguments only, got {marker.args}")
    known = [f.name for f in dataclasses.fields(AuditSettings)]
    for name in marker.kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(known)}"
            raise ConfigError(f"@pytest.mark.{MARKER} got an unknown setting {name!r}{hint}")
    return template.with_overrides(marker.kwargs)
