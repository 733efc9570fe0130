"""The checkpoint's bytes for the audit cache: hashed in bounded time, and read back only as the
bytes that were hashed.

Every cache key is made from a checkpoint's SHA-256 (:func:`file_digest`). Whoever then loads the
checkpoint for a keyed result loads bytes read once and checked against that digest
(:func:`read_checked`): a file overwritten during the session (a trainer saving a new best) is
refused, never filed under the key of the bytes it replaced. Torch-free.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigError

__all__ = ["MAX_DIGEST_BYTES", "file_digest", "hash_stream", "read_checked"]

MAX_DIGEST_BYTES = 4 << 30
"""Largest checkpoint hashed (4 GiB; reference MinAtar checkpoints are ~7 MB)."""


def file_digest(path: str | os.PathLike[str], *, limit: int = MAX_DIGEST_BYTES) -> str:
    """SHA-256 of a regular file's content (hex), in bounded time.

    Raises:
        ConfigError: the path is not a regular file (a directory, a FIFO, a device such as
            ``/dev/zero``) or is larger than ``limit`` bytes.
    """
    with _open_checkpoint(Path(path), limit) as stream:
        return hash_stream(stream)


def read_checked(
    path: str | os.PathLike[str], digest: str, *, limit: int = MAX_DIGEST_BYTES
) -> bytes:
    """The bytes of a checkpoint, read once, whose SHA-256 is ``digest`` (the one its cache keys
    were made from): whoever loads a checkpoint for a keyed result loads these bytes, so a file
    overwritten during the session (a trainer saving a new best) never fills another file's
    entry.

    Raises:
        ConfigError: the file is not a regular file, is too large, or no longer has ``digest``.
    """
    source = Path(path)
    with _open_checkpoint(source, limit) as stream:
        data = stream.read(limit + 1)
    if hashlib.sha256(data).hexdigest() != digest:
        raise ConfigError(
            f"{source} changed while this run was using it (its content is not the one hashed "
            "when the run started: was it saved over?); audit a copy that nothing writes to, "
            "and rerun"
        )
    return data


@contextlib.contextmanager
def _open_checkpoint(source: Path, limit: int) -> Iterator[BinaryIO]:
    try:
        descriptor = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ConfigError(
            f"{source} cannot be read ({error.strerror or error}); pass a readable checkpoint file"
        ) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"{source} is not a regular file; pass the path of a .pth checkpoint file"
            )
        if info.st_size > limit:
            raise ConfigError(
                f"{source} is {info.st_size / 2**30:.1f} GiB, more than the {limit / 2**30:.0f} "
                "GiB a DreamerV2 checkpoint could need; pass the right file"
            )
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            yield stream
    finally:
        os.close(descriptor)


def hash_stream(stream: BinaryIO) -> str:
    """SHA-256 (hex) of what is left in ``stream``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()
