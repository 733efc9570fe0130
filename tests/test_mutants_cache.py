"""The cache at its edges, written against the mutants that survived
``tox -e mutation -- pytest_dreamer_audit/plugin/cache.py`` (benchmarks/mutation.md) and the
hand-sampled ones of issue 35: a signature that is missing, not ASCII or too long; every refusal
named; files swapped for links between the listing and the read; an entry that cannot be deleted;
the private copies; another worker building the entry meanwhile; a read-only cache; the lock path;
the sweep's day boundary; and a source file changed in a subpackage giving a new code digest."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_dreamer_audit.errors import CacheEntryWarning, ConfigError, SavedDataError
from pytest_dreamer_audit.files import default_mode
from pytest_dreamer_audit.plugin import cache as cache_module
from pytest_dreamer_audit.plugin.cache import (
    CACHE_SCHEMA,
    HMAC_ENV,
    LEDGER,
    MANIFEST,
    SCRATCH_MARKER,
    SCRATCH_PREFIX,
    SIGNATURE,
    cached,
    code_digest,
    verify_entry,
)
from pytest_dreamer_audit.version import __version__
from tests.test_cache import _read, _write

LOOP = os.strerror(errno.ELOOP)  # what opening a symlink with O_NOFOLLOW says


def _refuse_build(directory: Path) -> None:
    raise AssertionError("the entry was built again")


def _builds(root: Path) -> int:
    ledger = root / LEDGER
    return len(ledger.read_text().splitlines()) if ledger.exists() else 0


def _private_copies() -> set[Path]:
    return set(cache_module._private_root().iterdir())


@pytest.fixture
def entry(tmp_path: Path) -> Path:
    built, text = cached(tmp_path, "k", _write("genuine"), _read)
    assert text == "genuine"
    return built


def _rebuilt_warning(tmp_path: Path, load: Callable[[Path], Any] = _read) -> str:
    """The one warning of a rebuild (the entry then holds "genuine" again)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cached(tmp_path, "k", _write("genuine"), load)[1] == "genuine"
    assert [type(w.message) for w in seen] == [CacheEntryWarning]
    return str(seen[0].message)


# --- what a build leaves ------------------------------------------------------------------------


def test_a_built_entry_its_manifest_and_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills write_manifest_24.._30 (the manifest's exact bytes: sorted, indented, final newline),
    # cached_83/_84 (the entry's mode: a directory's), cached_32 (`FileLock(str(None))`: a lock
    # named "None" in the working directory) and pins the marker's cleanup (the scratch marker
    # is never part of an entry).
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cache"
    built, _ = cached(root, "k", _write("genuine"), _read)
    assert sorted(p.name for p in built.iterdir()) == ["MANIFEST.json", "data.txt"]
    listed = {"sha256": hashlib.sha256(b"genuine").hexdigest(), "size": 7}
    manifest = {
        "files": {"data.txt": listed},
        "format": "pytest-dreamer-audit cache entry",
        "key": "k",
        "package": __version__,
        "schema": CACHE_SCHEMA,
    }
    expected = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert (built / MANIFEST).read_text() == expected
    assert expected.startswith('{\n  "files": {\n    "data.txt": {\n      "sha256"')
    assert built.stat().st_mode & 0o777 == default_mode(directory=True)
    assert sorted(p.name for p in root.iterdir()) == [LEDGER, "k", "k.lock"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_file_over_a_mebibyte_is_hashed_whole(tmp_path: Path) -> None:
    # Kills _copy_verified_27 (`size = len(block)`: only the last 1 MiB block counted).
    data = bytes(range(256)) * 6000  # 1.46 MiB

    def build(directory: Path) -> None:
        (directory / "big.bin").write_bytes(data)

    def load(directory: Path) -> int:
        return len((directory / "big.bin").read_bytes())

    assert cached(tmp_path, "k", build, load)[1] == len(data)
    assert cached(tmp_path, "k", _refuse_build, load)[1] == len(data)
    assert _builds(tmp_path) == 1


# --- signatures (the "manifest with its hmac removed") ----------------------------------


def test_a_signed_cache_refuses_an_entry_whose_signature_was_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _manifest_14 (the refusal's message) and pins the hand-sampled survivor: the check
    # skipped when the signature is absent would accept any manifest.
    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    built, _ = cached(tmp_path, "k", _write("genuine"), _read)
    (built / SIGNATURE).unlink()
    with pytest.raises(SavedDataError) as caught:
        verify_entry(built, "k")
    assert str(caught.value) == f"the manifest is not signed with {HMAC_ENV} (no {SIGNATURE})"
    assert _rebuilt_warning(tmp_path) == (
        f"dreamer-audit: cache entry {built} rebuilt: the manifest is not signed with "
        f"{HMAC_ENV} (no {SIGNATURE})"
    )
    verify_entry(built, "k")  # signed again
    assert _builds(tmp_path) == 2


def test_a_signature_of_other_bytes_is_refused_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signature file that is not ASCII was a crash (a str with U+FFFD, which
    # hmac.compare_digest refuses with a TypeError no caller caught): found by this work, fixed
    # by comparing bytes. Kills the decoding mutants where they still apply.
    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    built, _ = cached(tmp_path, "k", _write("genuine"), _read)
    (built / SIGNATURE).write_bytes(b"\xff\xfe" * 32 + b"\n")
    with pytest.raises(SavedDataError, match=f"^the manifest is not signed with {HMAC_ENV}$"):
        verify_entry(built, "k")


def test_a_signature_file_is_read_up_to_256_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _manifest_25 (limit 257), _read_bounded_4 (`read(limit - 1)`), _8 (`>=`) and _9
    # (the message): a valid signature padded to 256 bytes verifies, to 257 is refused.
    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    built, _ = cached(tmp_path, "k", _write("genuine"), _read)
    signature = (built / SIGNATURE).read_text().strip()
    assert len(signature) == 64
    (built / SIGNATURE).write_text(signature + " " * 191 + "\n")  # 256 bytes
    verify_entry(built, "k")
    (built / SIGNATURE).write_text(signature + " " * 192 + "\n")  # 257 bytes
    with pytest.raises(SavedDataError) as caught:
        verify_entry(built, "k")
    assert str(caught.value) == f"{SIGNATURE} is larger than 256 bytes"


def test_a_manifest_over_the_limit_is_read_only_one_byte_past_it(
    entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _read_bounded_3 (`read(None)`: a huge manifest read whole into memory) and _5
    # (`read(limit + 2)`): the bound is what stops a forged multi-gigabyte manifest.
    (entry / MANIFEST).write_bytes(b" " * (2 * cache_module.MAX_MANIFEST_BYTES))
    read: list[int] = []
    real = cache_module.open_regular

    class Counting:
        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()

        def read(self, size: int | None = -1) -> bytes:
            data: bytes = self.stream.read(size)
            read.append(len(data))
            return data

    monkeypatch.setattr(cache_module, "open_regular", lambda path: Counting(real(path)))
    with pytest.raises(SavedDataError) as caught:
        verify_entry(entry, "k")
    assert str(caught.value) == f"{MANIFEST} is larger than {1 << 20} bytes"
    assert read == [cache_module.MAX_MANIFEST_BYTES + 1]


# --- every refusal says what is wrong -----------------------------------------------------------


def _manifest_edit(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def tamper(entry: Path) -> None:
        manifest = json.loads((entry / MANIFEST).read_text())
        change(manifest)
        (entry / MANIFEST).write_text(json.dumps(manifest))

    return tamper


def _size(entry: Path, size: object) -> None:
    _manifest_edit(lambda m: m["files"].update({"data.txt": size}))(entry)


REFUSALS: list[tuple[str, Callable[[Path], object], str]] = [
    (
        "no-manifest",
        lambda e: (e / MANIFEST).unlink(),
        f"no {MANIFEST} (an unfinished or foreign entry)",
    ),
    ("list", lambda e: (e / MANIFEST).write_text("[]"), f"{MANIFEST} is not a cache manifest"),
    ("other-key", _manifest_edit(lambda m: m.update(key="other")), "key is 'other', expected 'k'"),
    (
        "long-key",
        _manifest_edit(lambda m: m.update(key="x" * 200)),
        "key is '" + "x" * 79 + ", expected 'k'",
    ),
    ("no-files", _manifest_edit(lambda m: m.update(files=[])), f"{MANIFEST} lists no files"),
    (
        "extra-file",
        lambda e: (e / "payload.npy").write_bytes(b"x"),
        "files ['payload.npy'] missing or not listed",
    ),
    (
        "missing-file",
        lambda e: (e / "data.txt").unlink(),
        "files ['data.txt'] missing or not listed",
    ),
    (
        "wrong-size",
        lambda e: _size(e, {"sha256": "0" * 64, "size": 8}),
        "data.txt has the wrong size",
    ),
    ("facts-a-list", lambda e: _size(e, [7]), "data.txt has the wrong size"),
    (
        "same-size-other-bytes",
        lambda e: (e / "data.txt").write_text("GENUINE"),
        "data.txt does not match its digest",
    ),
    (
        "symlink",
        lambda e: ((e / "data.txt").unlink(), (e / "data.txt").symlink_to("/etc/passwd")),
        "data.txt is a symlink",
    ),
    ("subdirectory", lambda e: (e / "nested").mkdir(), "nested is not a regular file"),
    (
        "fifo",
        lambda e: ((e / "data.txt").unlink(), os.mkfifo(e / "data.txt")),
        "data.txt is not a regular file",
    ),
    (
        "entry-a-file",
        lambda e: (shutil.rmtree(e), e.write_text("x")),
        "the entry is not a directory",
    ),
]


@pytest.mark.parametrize(("tamper", "why"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_each_refusal_says_what_is_wrong(
    tmp_path: Path, entry: Path, tamper: Callable[[Path], object], why: str
) -> None:
    # Kills _manifest_4, _50, _60, _61, _67, _73, _75, _77, _83 (`and` in the size check: a
    # wrong size passed on to the digest; facts that are no dict crashed), _copy_verified_42,
    # _regular_files_5.._13 and verify_entry_3.._5: the warning names the problem exactly.
    tamper(entry)
    with pytest.raises(SavedDataError) as caught:
        verify_entry(entry, "k")
    assert str(caught.value) == why
    assert _rebuilt_warning(tmp_path) == f"dreamer-audit: cache entry {entry} rebuilt: {why}"
    assert not list(tmp_path.glob(".dreamer-audit-unusable-*"))  # deleted, not moved aside
    assert _builds(tmp_path) == 2


# --- files swapped between the listing and the read ---------------------------------------------


def _swap_for_a_link(path: Path) -> None:
    path.unlink()
    path.symlink_to("/etc/hostname")


def test_a_data_file_swapped_for_a_link_after_the_manifest_is_refused_by_name(
    entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _copy_verified_31/_32 (open_regular's reason lost).
    real = cache_module._manifest

    def then_swap(where: Path, key: str) -> dict[str, Any]:
        listed = real(where, key)
        _swap_for_a_link(where / "data.txt")
        return listed

    monkeypatch.setattr(cache_module, "_manifest", then_swap)
    with pytest.raises(SavedDataError) as caught:
        verify_entry(entry, "k")
    assert str(caught.value) == f"{entry / 'data.txt'} cannot be opened as a plain file ({LOOP})"


def test_a_manifest_swapped_for_a_link_after_the_listing_is_refused_by_name(
    entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _read_bounded_6/_7.
    real = cache_module._regular_files

    def then_swap(directory: Path) -> dict[str, os.stat_result]:
        files = real(directory)
        _swap_for_a_link(directory / MANIFEST)
        return files

    monkeypatch.setattr(cache_module, "_regular_files", then_swap)
    with pytest.raises(SavedDataError) as caught:
        verify_entry(entry, "k")
    assert str(caught.value) == f"{entry / MANIFEST} cannot be opened as a plain file ({LOOP})"


def test_a_built_file_swapped_for_a_link_before_it_is_hashed_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _sha256_3/_4: the manifest of a build is never written over a link.
    real = cache_module._regular_files

    def then_swap(directory: Path) -> dict[str, os.stat_result]:
        files = real(directory)
        if directory.name.startswith(SCRATCH_PREFIX):
            _swap_for_a_link(directory / "data.txt")
        return files

    monkeypatch.setattr(cache_module, "_regular_files", then_swap)
    with pytest.raises(
        SavedDataError, match=r"data\.txt cannot be opened as a plain file"
    ) as caught:
        cached(tmp_path, "k", _write("genuine"), _read)
    assert str(caught.value).endswith(f"/data.txt cannot be opened as a plain file ({LOOP})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.lock"]  # no entry, no scratch


# --- an entry that cannot be deleted ------------------------------------------------------------


def _stubborn_rmtree(monkeypatch: pytest.MonkeyPatch, refuse: Callable[[Path], bool]) -> None:
    """``shutil.rmtree`` that cannot delete the paths ``refuse`` names: it raises, or with
    ``ignore_errors`` does nothing, as the real one does with a folder it may not empty."""
    real = shutil.rmtree

    def rmtree(path: Any, ignore_errors: bool = False, **kwargs: Any) -> None:
        if path is not None and refuse(Path(path)):
            if ignore_errors:
                return
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real(path, ignore_errors=ignore_errors, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)


def _aside(path: Path) -> bool:
    return path.name.startswith(".dreamer-audit-unusable-")


def test_an_entry_that_cannot_be_deleted_is_moved_aside_and_deleted_there(
    tmp_path: Path, entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _remove_3.._8 (the move), _15.._18 (the aside folder left behind) and _21 (the
    # note given though nothing is left).
    (entry / MANIFEST).write_text("{damaged")
    _stubborn_rmtree(monkeypatch, lambda path: path == entry)
    assert _rebuilt_warning(tmp_path) == (
        f"dreamer-audit: cache entry {entry} rebuilt: {MANIFEST} is unreadable (JSONDecodeError)"
    )
    assert not [p for p in tmp_path.iterdir() if _aside(p)]
    verify_entry(entry, "k")


def test_an_entry_that_cannot_be_deleted_even_aside_is_named_in_the_warning(
    tmp_path: Path, entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _remove_16.._20 (`rmtree(aside)` without ignore_errors, `and False`) and
    # cached_45.._48 (the note).
    (entry / MANIFEST).write_text("{damaged")
    _stubborn_rmtree(monkeypatch, lambda path: path == entry or _aside(path))
    message = _rebuilt_warning(tmp_path)
    (aside,) = [p for p in tmp_path.iterdir() if _aside(p)]
    assert aside.name.startswith(f".dreamer-audit-unusable-k-{os.getpid()}-")
    assert (aside / MANIFEST).read_text() == "{damaged"
    assert message == (
        f"dreamer-audit: cache entry {entry} rebuilt: {MANIFEST} is unreadable (JSONDecodeError)"
        f" (it could not be deleted and was moved to {aside})"
    )


def test_an_entry_that_is_a_file_is_unlinked(tmp_path: Path, entry: Path) -> None:
    # Kills _remove_1 (`is_symlink() and is_file()`: a file handed to rmtree, then moved aside).
    shutil.rmtree(entry)
    entry.write_text("not a directory")
    assert _rebuilt_warning(tmp_path) == (
        f"dreamer-audit: cache entry {entry} rebuilt: the entry is not a directory"
    )
    assert not [p for p in tmp_path.iterdir() if _aside(p)]


def test_an_entry_that_can_be_neither_deleted_nor_moved_says_how_to_fix_it(
    tmp_path: Path, entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _remove_13/_14 (the fix garbled).
    (entry / MANIFEST).write_text("{damaged")
    _stubborn_rmtree(monkeypatch, lambda path: path == entry)

    def refuse_move(*args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cache_module.os, "replace", refuse_move)
    with pytest.raises(ConfigError) as caught:
        cached(tmp_path, "k", _write("genuine"), _read)
    assert str(caught.value) == (
        f"cache entry {entry} is unusable and cannot be removed (Permission denied); delete it "
        "by hand (it is only a cache), or point --dreamer-cache-dir at another directory"
    )


# --- the private copy the loader reads ----------------------------------------------------------


def _recording(given: list[Path]) -> Callable[[Path], str]:
    def load(directory: Path) -> str:
        given.append(directory)
        return _read(directory)

    return load


def test_the_loader_reads_a_private_copy_deleted_after_unless_kept(tmp_path: Path) -> None:
    # Kills cached_1 (keep_copy on by default), _usable_3 (an absent entry "not a directory":
    # a warning on every first build), _usable_6.._9 (the copy made elsewhere or unnamed),
    # _usable_20 (`if keep_copy`), cached_8 and _117 (keep_copy dropped on reuse or after the
    # build).
    given: list[Path] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cached(tmp_path, "k", _write("genuine"), _recording(given))
        cached(tmp_path, "k", _refuse_build, _recording(given))
        cached(tmp_path, "j", _write("kept"), _recording(given), keep_copy=True)
        cached(tmp_path, "j", _refuse_build, _recording(given), keep_copy=True)
    assert seen == []
    private = cache_module._private_root()
    assert [p.parent for p in given] == [private] * 4
    assert [p.name[:2] for p in given] == ["k-", "k-", "j-", "j-"]
    assert [p.exists() for p in given] == [False, False, True, True]
    assert [(p / "data.txt").read_text() for p in given[2:]] == ["kept", "kept"]


def test_a_loader_may_consume_its_copy(tmp_path: Path) -> None:
    # Kills _usable_22.._25 and _27.._30 (the copy removed without ignore_errors: a loader
    # that moved or deleted what it read made the entry "unreadable").
    def consume(directory: Path) -> str:
        text = (directory / "data.txt").read_text()
        shutil.rmtree(directory)
        if text.startswith("bad"):
            raise SavedDataError("a value the package cannot have written")
        return text

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cached(tmp_path, "k", _write("genuine"), consume)[1] == "genuine"
        assert cached(tmp_path, "k", _refuse_build, consume)[1] == "genuine"
    assert seen == []
    _manifest_edit(lambda m: None)(tmp_path / "k")  # still valid
    (tmp_path / "k" / "data.txt").write_text("bad-but-consistent")
    _manifest_edit(
        lambda m: m["files"].update(
            {"data.txt": {"sha256": hashlib.sha256(b"bad-but-consistent").hexdigest(), "size": 18}}
        )
    )(tmp_path / "k")
    assert _rebuilt_warning(tmp_path, consume).endswith(
        "rebuilt: a value the package cannot have written"
    )
    # Kills _usable_33, _35, _36: a loader that moved its copy away, then failed to read.
    calls: list[int] = []

    def consume_then_fail(directory: Path) -> str:
        calls.append(1)
        text = consume(directory)
        if len(calls) <= 2:  # before the lock and under it
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return text

    assert _rebuilt_warning(tmp_path, consume_then_fail).endswith(
        "rebuilt: unreadable (No such file or directory)"
    )


def test_refused_and_unreadable_copies_are_deleted(tmp_path: Path, entry: Path) -> None:
    # Kills _usable_26 and _33.._35 (`rmtree(None)`: private copies piling up) and _41/_42 (the
    # OS error's reason): a loader refusing its copy, or failing to read it, leaves nothing.
    before = _private_copies()
    calls: list[int] = []

    def fails_until_rebuilt(directory: Path) -> str:
        calls.append(1)
        if len(calls) <= 2:  # before the lock and under it
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return _read(directory)

    assert _rebuilt_warning(tmp_path, fails_until_rebuilt) == (
        f"dreamer-audit: cache entry {entry} rebuilt: unreadable (No such file or directory)"
    )
    (entry / "data.txt").write_text("bad")
    _manifest_edit(
        lambda m: m["files"].update(
            {"data.txt": {"sha256": hashlib.sha256(b"bad").hexdigest(), "size": 3}}
        )
    )(entry)
    _rebuilt_warning(tmp_path)
    assert _private_copies() == before


def test_a_full_disk_while_copying_says_where_and_what_to_do(tmp_path: Path, entry: Path) -> None:
    # Kills _usable_36.._40 (the ENOSPC branch: `!=`, the message) and _37 (`rmtree(None)`).
    before = _private_copies()

    def full(directory: Path) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ConfigError) as caught:
        cached(tmp_path, "k", _refuse_build, full)
    assert str(caught.value) == (
        f"no private copy of cache entry {entry} can be made in {cache_module._private_root()} "
        "(the disk is full); free space there or set TMPDIR"
    )
    assert _private_copies() == before


def test_no_room_for_a_private_copy_is_a_config_error(
    tmp_path: Path, entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _usable_10/_11.
    import tempfile

    def full(*args: object, **kwargs: object) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.tempfile, "mkdtemp", full)
    with pytest.raises(ConfigError) as caught:
        cached(tmp_path, "k", _refuse_build, _read)
    assert str(caught.value) == (
        f"no private copy of cache entry {entry} can be made in {tempfile.gettempdir()} (No "
        "space left on device); free space there or set TMPDIR"
    )


# --- cached: reuse, races, locks and errors -----------------------------------------------------


def test_a_valid_entry_is_served_from_a_cache_that_cannot_be_written(
    tmp_path: Path, entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills cached_4 and _6 (the first check skipped or for another key: every reuse then
    # needs a writable cache and the lock).
    def read_only(*args: object) -> Path:
        raise ConfigError("the cache directory is not writable")

    monkeypatch.setattr(cache_module, "ensure_writable", read_only)
    assert cached(tmp_path, "k", _refuse_build, _read) == (entry, "genuine")


def test_an_entry_another_worker_built_meanwhile_is_used_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills cached_35/_37 (the check under the lock for another key, or keep_copy dropped).
    elsewhere = tmp_path / "other-worker"
    cached(elsewhere, "k", _write("theirs"), _read)
    root = tmp_path / "cache"
    real = cache_module.FileLock

    class Meanwhile(real):  # type: ignore[valid-type,misc]
        def __enter__(self) -> Any:
            shutil.copytree(elsewhere / "k", root / "k")  # finished while we waited
            return super().__enter__()

    monkeypatch.setattr(cache_module, "FileLock", Meanwhile)
    given: list[Path] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = cached(root, "k", _refuse_build, _recording(given), keep_copy=True)
    assert result == (root / "k", "theirs")
    assert seen == []
    assert given[0].exists()
    assert _builds(root) == 0


def test_an_unwritable_cache_names_the_option(tmp_path: Path) -> None:
    # Kills cached_15, _21, _22 (the option garbled or missing).
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as caught:
        cached(blocker / "sub", "k", _write("x"), _read)
    message = str(caught.value)
    assert message.startswith(f"cache directory {blocker / 'sub'} is not writable (")
    assert message.endswith("); point --dreamer-cache-dir at a writable directory")


@pytest.mark.parametrize("kind", ["directory", "symlink", "dangling-symlink"])
def test_a_lock_path_that_is_not_a_plain_file_is_refused(tmp_path: Path, kind: str) -> None:
    # Kills cached_25 (`and`: a directory in the lock's place) and _28.._30 (the message).
    lock = tmp_path / "k.lock"
    if kind == "directory":
        lock.mkdir()
    else:
        target = tmp_path / "target"
        if kind == "symlink":
            target.write_text("")
        lock.symlink_to(target)
    with pytest.raises(ConfigError) as caught:
        cached(tmp_path, "k", _write("x"), _read)
    assert str(caught.value) == (
        f"the cache lock {lock} is not a plain file; remove it (nothing else in the cache "
        "directory may use that name)"
    )
    assert not (tmp_path / "k").exists()


def test_a_build_that_cannot_write_says_make_the_directory_writable(tmp_path: Path) -> None:
    # Kills cached_106.._110.
    def denied(directory: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(ConfigError) as caught:
        cached(tmp_path, "k", denied, _read)
    assert str(caught.value) == (
        f"cache entry {tmp_path / 'k'} could not be written (Permission denied); make the "
        "directory writable, or point --dreamer-cache-dir at another directory"
    )


def test_a_failed_build_is_reported_even_when_its_scratch_cannot_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills cached_90, _92, _93 (the scratch removed without ignore_errors: its PermissionError
    # replaced the build's own error).
    _stubborn_rmtree(monkeypatch, lambda path: path.name.startswith(SCRATCH_PREFIX))

    def broken(directory: Path) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        cached(tmp_path, "k", broken, _read)


def _through_a_helper(root: Path) -> None:
    cached(root, "k", _write("genuine"), _read)  # the line a rebuild warning points at


def test_the_rebuild_warning_points_at_the_callers_caller(tmp_path: Path, entry: Path) -> None:
    # Kills cached_58 (stacklevel 1: the warning pointed into the cache module). Under mutmut
    # a trampoline adds frames, so only "not the cache module" holds both ways (stacklevel 4,
    # cached_60, differs only outside mutmut).
    (entry / "data.txt").write_text("forged")
    with pytest.warns(CacheEntryWarning) as seen:
        _through_a_helper(tmp_path)
    shown = Path(seen[0].filename)
    assert shown.name != "cache.py"
    assert shown == Path(__file__) or "mutmut" in shown.parts  # the trampoline's frame


# --- the sweep of scratch directories -----------------------------------------------------------


def _scratch(root: Path, name: str, age: float | None = None, marker: bool = True) -> Path:
    directory = root / f"{SCRATCH_PREFIX}{name}"
    directory.mkdir(parents=True)
    if marker:
        (directory / SCRATCH_MARKER).write_text("1 1\n")
    if age is not None:
        os.utime(directory, (age, age))
    return directory


def test_the_sweep_removes_other_keys_scratch_only_after_a_full_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _sweep_stale_2 (`time + day`: every other key's scratch removed at once) and _15
    # (`<=`: exactly a day old is not older than a day).
    now = 2_000_000_000
    fresh = _scratch(tmp_path, "a-1", age=now - 60)
    a_day = _scratch(tmp_path, "b-1", age=now - 24 * 3600)
    older = _scratch(tmp_path, "c-1", age=now - 24 * 3600 - 1)
    monkeypatch.setattr(
        cache_module, "time", SimpleNamespace(time=lambda: now, time_ns=time.time_ns)
    )
    cached(tmp_path / "", "k", _write("x"), _read)
    assert fresh.exists()
    assert a_day.exists()
    assert not older.exists()


def test_the_sweep_goes_on_past_what_is_not_a_directory(tmp_path: Path) -> None:
    # Kills _sweep_stale_6 (`break` at the first non-directory: the rest never swept). The
    # listing's order is the file system's: 20 files among 20 stale folders, some file comes
    # before some folder.
    old = time.time() - 3 * 24 * 3600
    stale = [_scratch(tmp_path, f"other-{index}", age=old) for index in range(20)]
    for index in range(20):
        (tmp_path / f"{SCRATCH_PREFIX}file-{index}").write_text("")
    cached(tmp_path, "k", _write("x"), _read)
    assert [folder for folder in stale if folder.exists()] == []
    assert len(list(tmp_path.glob(f"{SCRATCH_PREFIX}file-*"))) == 20


def test_the_sweep_goes_on_past_a_leftover_it_cannot_inspect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kills _sweep_stale_21 (`break` on an OSError: one folder the sweep may not look into,
    # e.g. another user's, stopped it; 20 of them among 20 stale folders, one comes first).
    for index in range(20):
        _scratch(tmp_path, f"locked-{index}")
    old = time.time() - 3 * 24 * 3600
    stale = [_scratch(tmp_path, f"other-{index}", age=old) for index in range(20)]
    real = Path.stat

    def stat(self: Path, **kwargs: Any) -> os.stat_result:
        if self.name.startswith(f"{SCRATCH_PREFIX}locked-"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    cached(tmp_path, "k", _write("x"), _read)
    assert [folder for folder in stale if folder.exists()] == []


# --- the code digest (the issue's `glob` in place of `rglob`) -----------------------------------


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's Python sources, which ``code_digest`` is made to read."""
    source = Path(cache_module.__file__).resolve().parents[1]
    copy = tmp_path / "pytest_dreamer_audit"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    monkeypatch.setattr(cache_module, "__file__", str(copy / "plugin" / "cache.py"))
    return copy


def test_a_change_anywhere_in_the_package_changes_the_code_digest(package_copy: Path) -> None:
    digest: Callable[[], str] = code_digest.__wrapped__  # type: ignore[attr-defined]
    first = digest()
    assert first == digest()
    seen = {first}
    # A source file in a subpackage (what `glob` in place of `rglob` would ignore).
    nulls = package_copy / "results" / "nulls.py"
    nulls.write_text(nulls.read_text() + "\n# a fixed bug\n")
    seen.add(digest())
    # A new module in a subpackage, a module renamed, the top-level package.
    (package_copy / "results" / "new_module.py").write_text("X = 1\n")
    seen.add(digest())
    (package_copy / "results" / "new_module.py").rename(package_copy / "results" / "renamed.py")
    seen.add(digest())
    (package_copy / "version.py").write_text((package_copy / "version.py").read_text() + "\n")
    seen.add(digest())
    assert len(seen) == 5
    # What is not Python source does not count.
    (package_copy / "results" / "notes.txt").write_text("x")
    assert digest() in seen
