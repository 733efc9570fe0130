"""Compute-once directories on disk, shared by pytest-xdist workers and by later runs, verified
before every use.

An entry is a directory named by its key. It is built in a scratch sibling directory and renamed
into place only when complete, under a file lock, so that concurrent workers asking for the same
key compute it once and a process killed mid-write leaves only a scratch directory.

**Trust model.** The cache is exactly as trusted as the directory it lives in: whoever can write
there can make a run compute anything. What this module adds is that nothing in an entry is
believed without checks:

* the manifest (``MANIFEST.json``, written last) lists every file of the entry with its SHA-256
  and size, the entry's key, the cache schema and the package version; an entry whose manifest
  is missing, unparsable, for another key, schema or version, or disagrees with any file (an
  edited number, a truncated array, a flipped byte, a file added or removed) is not used;
* only regular files count: a symlink or any other kind of file inside an entry (or an entry
  that is itself a symlink) makes the entry unusable, so an entry cannot point the report at
  files elsewhere;
* the loaders validate what they read (types, shapes, finiteness, known game), so an entry that
  passes the manifest but holds values the package cannot have written is refused too;
* keys hash the checkpoint's content, the settings, the schema and the package's own source, so a
  changed package never serves explanations an older one computed.

A damaged or forged entry is reported in one line (:class:`~pytest_dreamer_audit.errors.
CacheEntryWarning`: which entry, what is wrong) and rebuilt, never trusted. The manifest alone
does not stop someone who can write the cache directory and recompute the digests. For caches
shared between CI jobs, set ``DREAMER_AUDIT_CACHE_KEY`` (a secret held outside the cache, e.g. a
CI secret): manifests are then signed with HMAC-SHA256 under it, and entries without a valid
signature are rebuilt, so a poisoned shared cache cannot make an audit pass.

Torch-free; used for rollouts and explanations by ``audit.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from filelock import FileLock

from ..errors import CacheEntryWarning, ConfigError, SavedDataError
from ..files import default_mode, ensure_writable, open_regular

__all__ = [
    "CACHE_SCHEMA",
    "HMAC_ENV",
    "LEDGER",
    "MANIFEST",
    "MAX_DIGEST_BYTES",
    "cached",
    "code_digest",
    "file_digest",
    "verify_entry",
]

T = TypeVar("T")
CACHE_SCHEMA = 2
"""Version of the entry layout and of the manifest; part of every key."""
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = "pytest-dreamer-audit cache entry"
HMAC_ENV = "DREAMER_AUDIT_CACHE_KEY"
LEDGER = "computations.log"
"""One line per entry built, in the cache root: lets tests count computations under xdist."""
SCRATCH_PREFIX = ".dreamer-audit-scratch-"
SCRATCH_MARKER = ".dreamer-audit-scratch"
"""A file in every scratch directory this module makes: the sweep removes only those."""
MAX_DIGEST_BYTES = 4 << 30
"""Largest checkpoint hashed (4 GiB; reference MinAtar checkpoints are ~7 MB)."""
_STALE_SECONDS = 24 * 3600


def file_digest(path: str | os.PathLike[str], *, limit: int = MAX_DIGEST_BYTES) -> str:
    """SHA-256 of a regular file's content (hex), in bounded time.

    Raises:
        ConfigError: the path is not a regular file (a directory, a FIFO, a device such as
            ``/dev/zero``) or is larger than ``limit`` bytes.
    """
    source = Path(path)
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
            return _hash(stream)
    finally:
        os.close(descriptor)


def _hash(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


@cache
def code_digest() -> str:
    """SHA-256 over the package's own Python sources: part of every cache key, so that a changed
    package (a fixed bug) never reuses what an older one computed."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return digest.hexdigest()


def _signing_key() -> bytes | None:
    secret = os.environ.get(HMAC_ENV, "")
    return secret.encode() if secret else None


def _body(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in manifest.items() if k != "hmac"}, sort_keys=True).encode()


def _regular_files(directory: Path) -> dict[str, os.stat_result]:
    """Every entry of ``directory`` (not recursive); anything but a regular file is refused."""
    files = {}
    for child in directory.iterdir():
        info = child.lstat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            raise SavedDataError(f"{child.name} is {kind}")
        files[child.name] = info
    return files


def _sha256(path: Path) -> str:
    """SHA-256 of a file of an entry, never through a symlink."""
    try:
        with open_regular(path) as stream:
            return _hash(stream)
    except ConfigError as error:
        raise SavedDataError(str(error)) from None


def write_manifest(directory: Path, key: str) -> None:
    """List every file of a built entry with its digest and size (written last)."""
    from .. import __version__

    files = {
        name: {"sha256": _sha256(directory / name), "size": info.st_size}
        for name, info in sorted(_regular_files(directory).items())
    }
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "schema": CACHE_SCHEMA,
        "package": __version__,
        "key": key,
        "files": files,
    }
    signing = _signing_key()
    if signing is not None:
        manifest["hmac"] = hmac.new(signing, _body(manifest), hashlib.sha256).hexdigest()
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def verify_entry(entry: Path, key: str) -> None:
    """Check an entry against its manifest.

    Raises:
        SavedDataError: what is wrong, in a few words (the caller names the entry).
    """
    from .. import __version__

    if entry.is_symlink() or not entry.is_dir():
        raise SavedDataError("the entry is not a directory")
    files = _regular_files(entry)
    if MANIFEST not in files:
        raise SavedDataError(f"no {MANIFEST} (an unfinished or foreign entry)")
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise SavedDataError(f"{MANIFEST} is unreadable ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SavedDataError(f"{MANIFEST} is not a cache manifest")
    expected = {"schema": CACHE_SCHEMA, "package": __version__, "key": key}
    for field, value in expected.items():
        if manifest.get(field) != value:
            raise SavedDataError(f"{field} is {manifest.get(field)!r}, expected {value!r}")
    signing = _signing_key()
    if signing is not None:
        wanted = hmac.new(signing, _body(manifest), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(str(manifest.get("hmac", "")), wanted):
            raise SavedDataError(f"the manifest is not signed with {HMAC_ENV}")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise SavedDataError(f"{MANIFEST} lists no files")
    present = set(files) - {MANIFEST}
    if present != set(listed):
        raise SavedDataError(f"files {sorted(present ^ set(listed))} missing or not listed")
    for name, facts in listed.items():
        if not isinstance(facts, dict) or files[name].st_size != facts.get("size"):
            raise SavedDataError(f"{name} has the wrong size")
        if _sha256(entry / name) != facts.get("sha256"):
            raise SavedDataError(f"{name} does not match its digest")


def cached(
    root: Path, key: str, build: Callable[[Path], None], load: Callable[[Path], T]
) -> tuple[Path, T]:
    """The entry ``root/key`` and what ``load`` reads from it, building it with ``build`` when it
    is missing, damaged or refused by ``load`` (a :class:`SavedDataError`).

    ``build`` writes the entry's files into the directory it is given; nothing else may see them
    until it returns. A refused entry is reported with a :class:`CacheEntryWarning` and rebuilt
    once; a freshly built entry that ``load`` refuses is an error.
    """
    entry = root / key
    problem = _usable(entry, key, load)
    if isinstance(problem, tuple):
        return problem
    ensure_writable(root, "cache directory", "--dreamer-cache-dir")
    lock = root / f"{key}.lock"
    if lock.is_symlink() or (lock.exists() and not lock.is_file()):
        raise ConfigError(
            f"the cache lock {lock} is not a plain file; remove it (nothing else in the cache "
            "directory may use that name)"
        )
    with FileLock(str(lock)):
        problem = _usable(entry, key, load)  # another worker may have built it meanwhile
        if isinstance(problem, tuple):
            return problem
        if problem is not None:
            warnings.warn(
                CacheEntryWarning(f"dreamer-audit: cache entry {entry} rebuilt: {problem}"),
                stacklevel=3,
            )
        _sweep_stale(root, key)
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.exists():
            shutil.rmtree(entry)
        scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{key}-", dir=root))
        try:
            (scratch / SCRATCH_MARKER).write_text(f"{os.getpid()} {time.time():.0f}\n")
            build(scratch)
            (scratch / SCRATCH_MARKER).unlink()
            write_manifest(scratch, key)
            os.chmod(scratch, default_mode(directory=True))
            os.replace(scratch, entry)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        with open(root / LEDGER, "a") as ledger:
            ledger.write(f"{key} {os.getpid()}\n")
    try:  # just written under the lock: loading validates it, re-hashing would add nothing
        return entry, load(entry)
    except SavedDataError as error:
        raise SavedDataError(
            f"cache entry {entry} was just built but is unusable: {error}"
        ) from None


def _usable(entry: Path, key: str, load: Callable[[Path], T]) -> tuple[Path, T] | str | None:
    """``(entry, loaded)`` when the entry verifies and loads; else what is wrong (None: absent)."""
    if not entry.exists() and not entry.is_symlink():
        return None
    try:  # the manifest first: a loader must never read an unverified file (or a FIFO)
        verify_entry(entry, key)
        return entry, load(entry)
    except SavedDataError as error:
        return str(error)
    except OSError as error:
        return f"unreadable ({error.strerror or error})"


def _sweep_stale(root: Path, key: str) -> None:
    """Remove scratch directories this module made and a killed builder left (we hold the lock
    of ``key``; other keys' scratch directories only when a day old). A directory counts as ours
    only with our prefix, our marker file inside, and no symlink on the way."""
    cutoff = time.time() - _STALE_SECONDS
    for leftover in root.glob(f"{SCRATCH_PREFIX}*"):
        try:
            if leftover.is_symlink() or not leftover.is_dir():
                continue
            marker = leftover / SCRATCH_MARKER
            if marker.is_symlink() or not marker.is_file():
                continue
            mine = leftover.name.startswith(f"{SCRATCH_PREFIX}{key}-")
            if mine or leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
