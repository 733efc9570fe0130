"""Compute-once directories on disk, shared by pytest-xdist workers and by later runs.

An entry is a directory named by its key. It is built in a temporary sibling directory and
renamed into place only when complete, under a file lock, so that:

* concurrent workers asking for the same key compute it once (the others wait, then read);
* a process killed mid-write leaves only a ``.tmp-`` directory that nothing trusts (and the next
  builder sweeps away), never a half-written entry.

Torch-free; used for rollouts and explanations by ``audit.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from ..files import default_mode, ensure_writable

__all__ = ["COMPLETE_MARKER", "LEDGER", "cached_directory", "file_digest"]

COMPLETE_MARKER = "COMPLETE"
LEDGER = "computations.log"
"""One line per entry built, in the cache root: lets tests count computations under xdist."""
_STALE_SECONDS = 24 * 3600


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_directory(root: Path, key: str, build: Callable[[Path], None]) -> Path:
    """The complete entry ``root/key``, built by ``build(tmpdir)`` if it does not exist yet.

    ``build`` writes the entry's files into the directory it is given; nothing else may see them
    until it returns.
    """
    entry = root / key
    if (entry / COMPLETE_MARKER).is_file():
        return entry
    ensure_writable(root, "cache directory", "--dreamer-cache-dir")
    with FileLock(str(root / f"{key}.lock")):
        if (entry / COMPLETE_MARKER).is_file():
            return entry
        _sweep_stale(root, key)
        if entry.exists():  # not complete: a leftover that nothing may trust
            shutil.rmtree(entry)
        scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        try:
            build(scratch)
            (scratch / COMPLETE_MARKER).write_text(f"{os.getpid()} {time.time():.0f}\n")
            os.chmod(scratch, default_mode(directory=True))
            os.replace(scratch, entry)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        with open(root / LEDGER, "a") as ledger:
            ledger.write(f"{key} {os.getpid()}\n")
    return entry


def _sweep_stale(root: Path, key: str) -> None:
    """Remove scratch directories of this key left by killed builders (we hold its lock)."""
    for leftover in root.glob(f".tmp-{key}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    cutoff = time.time() - _STALE_SECONDS
    for leftover in root.glob(".tmp-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
