"""The artifacts directory: one folder per test with its PNGs and ``summary.json``.

Standard library only. Files are written atomically, so xdist workers and killed runs never
leave a half-written file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from ..files import atomic_copy, atomic_text
from .records import AuditRecord

__all__ = ["artifact_directory", "write_artifacts"]


def artifact_directory(root: Path, nodeid: str) -> Path:
    """A filesystem-safe directory name for a test id."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("._")[:150]
    return root / safe


def write_artifacts(directory: Path, nodeid: str, records: Iterable[AuditRecord]) -> Path:
    """Copy each record's PNGs into ``directory`` and write ``summary.json`` there."""
    directory.mkdir(parents=True, exist_ok=True)
    summaries = []
    for index, record in enumerate(records):
        for image, _caption in record.images:
            source = Path(image)
            atomic_copy(source, directory / f"{index}-{record.label}-{source.name}")
        summaries.append(record.to_json())
    text = json.dumps({"test": nodeid, "audits": summaries}, indent=2, sort_keys=True) + "\n"
    atomic_text(directory / "summary.json", text)
    return directory
