"""Atomic file writes: a temporary sibling, then a rename, with the user's usual permissions.

A process killed mid-write leaves at most a hidden temporary file, never a half-written target
that a later run would trust. ``tempfile`` creates files readable by the owner only; the result
gets the permissions a plain ``open(path, "w")`` would give (0666 minus the umask).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import ConfigError

__all__ = [
    "atomic_copy",
    "atomic_text",
    "atomic_write",
    "default_mode",
    "distinct_name",
    "ensure_writable",
    "regular_file",
    "open_regular",
]


def default_mode(directory: bool = False) -> int:
    """What ``open`` (0666) or ``mkdir`` (0777) would create under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Create ``path`` with the bytes ``write(stream)`` writes, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, default_mode())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def atomic_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading, never through a symlink (``ConfigError`` otherwise):
    what the package copies or embeds must be the file it wrote, not one a link points at."""
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer (it is refused below).
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        descriptor = os.open(path, flags)
    except OSError as error:
        raise ConfigError(f"{path} cannot be opened as a plain file ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ConfigError(f"{path} is not a regular file")
    return os.fdopen(descriptor, "rb")


def atomic_copy(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy a regular file's bytes atomically (see :func:`open_regular`)."""
    with open_regular(source) as origin:
        return atomic_write(path, lambda stream: shutil.copyfileobj(origin, stream))


def ensure_writable(path: str | os.PathLike[str], what: str, option: str) -> Path:
    """Create the directory ``path`` and write a probe file there, so a bad path fails early.

    Raises:
        ConfigError: ``"<what> <path> is not writable (<reason>); point <option> at a writable
            directory"``.
    """
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as error:
        raise ConfigError(
            f"{what} {directory} is not writable ({error.strerror or error}); point {option} at "
            "a writable directory"
        ) from None
    return directory


def distinct_name(readable: str, identity: str, *, limit: int = 60) -> str:
    """A file name that is safe, bounded and distinct: ``readable`` reduced to ASCII letters,
    digits, ``.``, ``_`` and ``-`` (at most ``limit`` characters), then ``-`` and 12 hex digits
    of the SHA-256 of ``identity``. Two identities never share a name (up to a 48-bit hash),
    however alike their readable parts are (``a/b``, ``a_b``, ``a b``, non-ASCII text)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", readable).strip("._-")[:limit].rstrip("._-")
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe or 'test'}-{digest}"


def regular_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` if it names a readable regular file, without opening it for long.

    Raises:
        ConfigError: ``"<what> <path>: ..."`` saying whether it is missing, a directory, some
            other kind of file (a FIFO or device would hang whoever reads it), or unreadable.
    """
    target = Path(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"{what} {target}: no such file (relative paths start at {Path.cwd()})"
        ) from None
    except OSError as error:
        raise ConfigError(f"{what} {target}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {target} is a directory; pass the .pth file inside it")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {target} is not a regular file (a FIFO or device?)")
    if not os.access(target, os.R_OK):
        raise ConfigError(f"{what} {target} is not readable")
    return target
