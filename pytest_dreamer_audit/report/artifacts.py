"""The artifacts directory: one folder per test with its PNGs and ``summary.json``.

Standard library only. Files are written atomically, so xdist workers and killed runs never
leave a half-written file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..files import atomic_copy, atomic_text, distinct_name
from .records import AuditRecord

__all__ = ["artifact_directory", "artifact_name", "write_artifacts"]


def artifact_directory(root: Path, nodeid: str) -> Path:
    """The test's own folder: a readable prefix of its id and a hash of the whole id, so that no
    two tests share one (:func:`~pytest_dreamer_audit.files.distinct_name`)."""
    path, _, rest = nodeid.partition("::")
    return root / distinct_name(f"{Path(path).name}::{rest}" if rest else nodeid, nodeid)


def artifact_name(index: int, record: AuditRecord, image: str) -> str:
    """The name of the copy of ``image`` (a PNG of the test's ``index``-th record) in the test's
    folder: the report links the full rollout grids by it."""
    return f"{index}-{record.label}-{Path(image).name}"


def write_artifacts(directory: Path, nodeid: str, records: Iterable[AuditRecord]) -> Path:
    """Copy each record's PNGs into ``directory`` and write ``summary.json`` there."""
    directory.mkdir(parents=True, exist_ok=True)
    summaries = []
    for index, record in enumerate(records):
        for image, _caption in record.images:
            atomic_copy(Path(image), directory / artifact_name(index, record, image))
        summaries.append(record.to_json())
    text = json.dumps({"test": nodeid, "audits": summaries}, indent=2, sort_keys=True) + "\n"
    atomic_text(directory / "summary.json", text)
    return directory
