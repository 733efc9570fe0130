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
signature are rebuilt, so a poisoned shared cache cannot make an audit pass. A key that is set
but empty is a start-up error, never "no signing" (a CI secret that is missing expands to "").

**Read once.** An entry is never verified in one read and loaded in another: every file is read
once, hashed as it is copied into a private folder of this process, and the loader reads that
copy (:func:`cached`), so a file swapped between the check and the load is never used. The
manifest's signature covers its exact bytes and is checked before the manifest is parsed.

Torch-free; used for rollouts and explanations by ``audit.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
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
from typing import Any, TypeVar

from filelock import FileLock

from ..errors import CacheEntryWarning, ConfigError, DreamerAuditError, SavedDataError
from ..files import default_mode, ensure_writable, open_regular
from .digests import MAX_DIGEST_BYTES, file_digest, hash_stream, read_checked

__all__ = [
    "CACHE_SCHEMA",
    "HMAC_ENV",
    "LEDGER",
    "MANIFEST",
    "MAX_DIGEST_BYTES",
    "SIGNATURE",
    "cached",
    "code_digest",
    "file_digest",
    "read_checked",
    "signing_key",
    "verify_entry",
]

T = TypeVar("T")
CACHE_SCHEMA = 3
"""Version of the entry layout and of the manifest; part of every key."""
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.hmac"
"""HMAC-SHA256 (hex) of the exact bytes of the manifest, written after it when signing."""
MAX_MANIFEST_BYTES = 1 << 20
"""Largest manifest read (an entry lists a few dozen files: a few KiB)."""
MANIFEST_FORMAT = "pytest-dreamer-audit cache entry"
HMAC_ENV = "DREAMER_AUDIT_CACHE_KEY"
LEDGER = "computations.log"
"""One line per entry built, in the cache root: lets tests count computations under xdist."""
SCRATCH_PREFIX = ".dreamer-audit-scratch-"
SCRATCH_MARKER = ".dreamer-audit-scratch"
"""A file in every scratch directory this module makes: the sweep removes only those."""
_STALE_SECONDS = 24 * 3600


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


def signing_key() -> bytes | None:
    """The secret of :data:`HMAC_ENV`, or None when it is not set (no signing).

    Raises:
        ConfigError: it is set but empty or blank. GitHub Actions expands a missing secret to
            ``""``, so an empty key must not silently turn signing off.
    """
    secret = os.environ.get(HMAC_ENV)
    if secret is None:
        return None
    if not secret.strip():
        raise ConfigError(
            f"{HMAC_ENV} is set but empty, so cache entries could not be signed (a CI secret "
            "that does not exist expands to an empty string); set it to the secret, or unset "
            "it to run without signed cache entries"
        )
    return secret.encode()


def _signature(signing: bytes, manifest: bytes) -> str:
    return hmac.new(signing, manifest, hashlib.sha256).hexdigest()


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
            return hash_stream(stream)
    except ConfigError as error:
        raise SavedDataError(str(error)) from None


def write_manifest(directory: Path, key: str) -> None:
    """List every file of a built entry with its digest and size (written last), and sign the
    manifest's bytes when :data:`HMAC_ENV` is set."""
    from ..version import __version__

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
    text = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (directory / MANIFEST).write_bytes(text)
    signing = signing_key()
    if signing is not None:
        (directory / SIGNATURE).write_text(_signature(signing, text) + "\n")


def _read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of an entry (never through a link), at most ``limit``."""
    try:
        with open_regular(path) as stream:
            data = stream.read(limit + 1)
    except ConfigError as error:
        raise SavedDataError(str(error)) from None
    if len(data) > limit:
        raise SavedDataError(f"{path.name} is larger than {limit} bytes")
    return data


def _manifest(entry: Path, key: str) -> dict[str, Any]:
    """The entry's manifest, read once: its signature checked on those bytes before they are
    parsed (a manifest nested thousands deep is refused, not parsed, when signing is on)."""
    from ..version import __version__

    files = _regular_files(entry)
    if MANIFEST not in files:
        raise SavedDataError(f"no {MANIFEST} (an unfinished or foreign entry)")
    text = _read_bounded(entry / MANIFEST, MAX_MANIFEST_BYTES)
    signing = signing_key()
    if signing is not None:
        if SIGNATURE not in files:
            raise SavedDataError(f"the manifest is not signed with {HMAC_ENV} (no {SIGNATURE})")
        signature = _read_bounded(entry / SIGNATURE, 256).strip()  # bytes: any are compared
        if not hmac.compare_digest(signature, _signature(signing, text).encode("ascii")):
            raise SavedDataError(f"the manifest is not signed with {HMAC_ENV}")
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nested thousands deep
        raise SavedDataError(f"{MANIFEST} is unreadable ({type(error).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SavedDataError(f"{MANIFEST} is not a cache manifest")
    expected = {"schema": CACHE_SCHEMA, "package": __version__, "key": key}
    for field, value in expected.items():
        if manifest.get(field) != value:
            raise SavedDataError(f"{field} is {manifest.get(field)!r:.80}, expected {value!r}")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise SavedDataError(f"{MANIFEST} lists no files")
    present = set(files) - {MANIFEST, SIGNATURE}
    if present != set(listed):
        raise SavedDataError(f"files {sorted(present ^ set(listed))} missing or not listed")
    for name, facts in listed.items():
        if not isinstance(facts, dict) or files[name].st_size != facts.get("size"):
            raise SavedDataError(f"{name} has the wrong size")
    return listed


def _copy_verified(source: Path, facts: Mapping[str, Any], target: Path | None) -> None:
    """Read ``source`` once, hashing the bytes as they are copied to ``target`` (or nowhere);
    a digest or size other than the manifest's is refused."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open_regular(source) as stream, contextlib.ExitStack() as stack:
            output = None if target is None else stack.enter_context(open(target, "xb"))
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                if output is not None:
                    output.write(block)
    except ConfigError as error:
        raise SavedDataError(str(error)) from None
    if size != facts.get("size") or digest.hexdigest() != facts.get("sha256"):
        raise SavedDataError(f"{source.name} does not match its digest")


def verify_entry(entry: Path, key: str, *, copy_to: Path | None = None) -> None:
    """Check an entry against its manifest, reading each file once; with ``copy_to``, the bytes
    that were checked are copied there (the only copy a loader may read).

    Raises:
        SavedDataError: what is wrong, in a few words (the caller names the entry).
    """
    if entry.is_symlink() or not entry.is_dir():
        raise SavedDataError("the entry is not a directory")
    for name, facts in _manifest(entry, key).items():
        _copy_verified(entry / name, facts, None if copy_to is None else copy_to / name)


@cache
def _private_root() -> Path:
    """This process's folder of verified copies (owner-only, removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="dreamer-audit-verified-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def cached(
    root: Path,
    key: str,
    build: Callable[[Path], None],
    load: Callable[[Path], T],
    *,
    keep_copy: bool = False,
) -> tuple[Path, T]:
    """The entry ``root/key`` and what ``load`` reads from it, building it with ``build`` when it
    is missing, damaged or refused by ``load`` (a :class:`SavedDataError`).

    ``build`` writes the entry's files into the directory it is given; nothing else may see them
    until it returns. ``load`` is given a private copy of the entry made from the very bytes that
    were verified (never the shared entry, which someone may rewrite meanwhile), deleted once
    ``load`` returns unless ``keep_copy`` (what it returns then points into it). A refused entry
    is reported with a :class:`CacheEntryWarning` and rebuilt once; a freshly built entry that
    ``load`` refuses is an error.

    Raises:
        ConfigError: the cache cannot be written (a full disk, a read-only folder) or a damaged
            entry cannot be moved out of the way; the message says which and what to do.
    """
    entry = root / key
    problem = _usable(entry, key, load, keep_copy)
    if isinstance(problem, tuple):
        return problem
    ensure_writable(root, "cache directory", "--dreamer-cache-dir")
    lock = root / f"{key}.lock"
    if lock.is_symlink() or (lock.exists() and not lock.is_file()):
        raise ConfigError(
            f"the cache lock {lock} is not a plain file; remove it (nothing else in the cache "
            "directory may use that name)"
        )
    try:
        with FileLock(str(lock)):
            # Another worker may have built it meanwhile.
            problem = _usable(entry, key, load, keep_copy)
            if isinstance(problem, tuple):
                return problem
            if problem is not None:
                moved = _remove(entry)
                note = f" (it could not be deleted and was moved to {moved})" if moved else ""
                with warnings.catch_warnings():
                    # Shown, never raised: under ``-W error`` a warning raised at start-up would
                    # end the session in INTERNALERROR, and the entry would never be rebuilt.
                    warnings.simplefilter("always", CacheEntryWarning)
                    warnings.warn(
                        CacheEntryWarning(
                            f"dreamer-audit: cache entry {entry} rebuilt: {problem}{note}"
                        ),
                        stacklevel=3,
                    )
            _sweep_stale(root, key)
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
    except DreamerAuditError:  # some are OSErrors too (a checkpoint not found): theirs to say
        raise
    except OSError as error:
        if error.errno == errno.ENOSPC:
            why = "the disk is full; free some space"
        else:
            why = "make the directory writable"
        raise ConfigError(
            f"cache entry {entry} could not be written ({error.strerror or error}); {why}, or "
            "point --dreamer-cache-dir at another directory"
        ) from None
    result = _usable(entry, key, load, keep_copy)
    if isinstance(result, tuple):
        return result
    raise SavedDataError(f"cache entry {entry} was just built but is unusable: {result}")


def _usable(
    entry: Path, key: str, load: Callable[[Path], T], keep_copy: bool
) -> tuple[Path, T] | str | None:
    """``(entry, loaded)`` when the entry verifies and loads; else what is wrong (None: absent).
    The loader reads a private copy of the bytes that were verified."""
    if not entry.exists() and not entry.is_symlink():
        return None
    try:
        copy = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=_private_root()))
    except OSError as error:
        raise ConfigError(
            f"no private copy of cache entry {entry} can be made in {tempfile.gettempdir()} "
            f"({error.strerror or error}); free space there or set TMPDIR"
        ) from None
    try:  # the manifest first: a loader must never read an unverified file (or a FIFO)
        verify_entry(entry, key, copy_to=copy)
        loaded = load(copy)
        if not keep_copy:
            shutil.rmtree(copy, ignore_errors=True)
        return entry, loaded
    except SavedDataError as error:
        shutil.rmtree(copy, ignore_errors=True)
        return str(error)
    except OSError as error:
        shutil.rmtree(copy, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise ConfigError(
                f"no private copy of cache entry {entry} can be made in {copy.parent} (the disk "
                "is full); free space there or set TMPDIR"
            ) from None
        return f"unreadable ({error.strerror or error})"


def _remove(entry: Path) -> Path | None:
    """Delete an unusable entry; one that cannot be deleted (a folder without permissions) is
    moved aside under a name the cache never reads, and that name returned."""
    try:
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.exists():
            shutil.rmtree(entry)
        return None
    except OSError:
        pass
    aside = entry.parent / f".dreamer-audit-unusable-{entry.name}-{os.getpid()}-{time.time_ns()}"
    try:
        os.replace(entry, aside)
    except OSError as error:
        raise ConfigError(
            f"cache entry {entry} is unusable and cannot be removed ({error.strerror or error}); "
            "delete it by hand (it is only a cache), or point --dreamer-cache-dir at another "
            "directory"
        ) from None
    shutil.rmtree(aside, ignore_errors=True)
    return aside if aside.exists() else None


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
