"""The on-disk cache: compute once, survive kills, and never trust an entry that fails its checks."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_dreamer_audit.errors import CacheEntryWarning, ConfigError, SavedDataError
from pytest_dreamer_audit.plugin.cache import (
    HMAC_ENV,
    LEDGER,
    MANIFEST,
    SCRATCH_MARKER,
    SCRATCH_PREFIX,
    cached,
    code_digest,
    file_digest,
    verify_entry,
)


def _write(text: str) -> Callable[[Path], None]:
    def build(directory: Path) -> None:
        (directory / "data.txt").write_text(text)

    return build


def _read(entry: Path) -> str:
    text = (entry / "data.txt").read_text()
    if text.startswith("bad"):
        raise SavedDataError("data.txt holds a value the package cannot have written")
    return text


def _builds(root: Path) -> int:
    ledger = root / LEDGER
    return len(ledger.read_text().splitlines()) if ledger.exists() else 0


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    first = cached(tmp_path, "k", _write("one"), _read)
    second = cached(tmp_path, "k", _write("two"), _read)
    assert first == second == (tmp_path / "k", "one")
    assert (tmp_path / LEDGER).read_text().split()[0] == "k"
    assert _builds(tmp_path) == 1
    manifest = json.loads((tmp_path / "k" / MANIFEST).read_text())
    assert manifest["key"] == "k"
    assert manifest["files"]["data.txt"]["size"] == 3


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(directory: Path) -> None:
        (directory / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached(tmp_path, "k", broken, _read)
    assert not (tmp_path / "k").exists()
    assert not list(tmp_path.glob(f"{SCRATCH_PREFIX}*"))


def _slow_build(root: str, started: str) -> None:
    def build(directory: Path) -> None:
        (directory / "part.txt").write_text("x")
        Path(started).write_text("go")
        time.sleep(60)

    cached(Path(root), "k", build, _read)


def test_a_killed_builder_leaves_no_entry_a_later_run_trusts(tmp_path: Path) -> None:
    started = tmp_path / "started"
    process = multiprocessing.get_context("spawn").Process(
        target=_slow_build, args=(str(tmp_path / "c"), str(started))
    )
    process.start()
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert started.exists()
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert not (tmp_path / "c" / "k").exists()
    assert list((tmp_path / "c").glob(f"{SCRATCH_PREFIX}k-*"))  # the half-written scratch
    entry, text = cached(tmp_path / "c", "k", _write("fresh"), _read)
    assert text == "fresh"
    assert (entry / MANIFEST).is_file()
    assert not list((tmp_path / "c").glob(f"{SCRATCH_PREFIX}k-*"))  # swept


def test_the_sweep_leaves_other_peoples_directories_alone(tmp_path: Path) -> None:
    old = time.time() - 3 * 24 * 3600
    foreign = [tmp_path / ".tmp-someone-else", tmp_path / f"{SCRATCH_PREFIX}x-no-marker"]
    for directory in foreign:
        directory.mkdir()
        (directory / "precious.txt").write_text("keep")
        os.utime(directory, (old, old))
    ours = tmp_path / f"{SCRATCH_PREFIX}other-key-abc"
    ours.mkdir()
    (ours / SCRATCH_MARKER).write_text("1 1\n")
    os.utime(ours, (old, old))
    cached(tmp_path, "k", _write("x"), _read)
    assert all((directory / "precious.txt").read_text() == "keep" for directory in foreign)
    assert not ours.exists()  # a day-old scratch directory of ours


def test_unwritable_root_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cache directory .* is not writable"):
        cached(blocker / "sub", "k", _write("x"), _read)


def test_file_digest_is_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("special", ["directory", "fifo", "/dev/zero", "missing"])
def test_file_digest_refuses_what_is_not_a_regular_file_without_reading_it(
    tmp_path: Path, special: str
) -> None:
    path = tmp_path / "x.pth"
    if special == "directory":
        path.mkdir()
    elif special == "fifo":
        os.mkfifo(path)
    elif special == "/dev/zero":
        path = Path("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file|cannot be read"):
        file_digest(path)  # returns at once: a FIFO or /dev/zero would otherwise hang


def test_file_digest_refuses_files_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.pth"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(ConfigError, match="more than"):
        file_digest(path, limit=1024)


def test_the_package_source_digest_is_stable_and_hex() -> None:
    assert code_digest() == code_digest()
    assert len(code_digest()) == 64
    int(code_digest(), 16)


# --- tampering: every way of damaging an entry ends in a rebuild, never in a forged value ------


def _entry(root: Path) -> Path:
    entry, text = cached(root, "k", _write("genuine"), _read)
    assert text == "genuine"
    return entry


def _edit_data(entry: Path) -> None:
    (entry / "data.txt").write_text("forged")


def _truncate(entry: Path) -> None:
    (entry / "data.txt").write_text("gen")


def _flip_byte(entry: Path) -> None:
    data = bytearray((entry / "data.txt").read_bytes())
    data[0] ^= 0x01
    (entry / "data.txt").write_bytes(bytes(data))


def _forge_with_manifest(entry: Path) -> None:
    # Rewrite the file and its manifest entry consistently: only a signature can catch this,
    # so here the loader's validation does (the forged value is one it refuses).
    import hashlib

    (entry / "data.txt").write_text("bad-but-consistent")
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["files"]["data.txt"] = {
        "sha256": hashlib.sha256(b"bad-but-consistent").hexdigest(),
        "size": len(b"bad-but-consistent"),
    }
    (entry / MANIFEST).write_text(json.dumps(manifest))


def _symlink(entry: Path) -> None:
    (entry / "data.txt").unlink()
    (entry / "data.txt").symlink_to("/etc/passwd")


def _extra_file(entry: Path) -> None:
    (entry / "payload.npy").write_bytes(b"\x93NUMPY pickle")


def _remove_file(entry: Path) -> None:
    (entry / "data.txt").unlink()


def _remove_manifest(entry: Path) -> None:
    (entry / MANIFEST).unlink()


def _garble_manifest(entry: Path) -> None:
    (entry / MANIFEST).write_text("{not json")


def _manifest_is_a_list(entry: Path) -> None:
    (entry / MANIFEST).write_text("[]")


def _manifest_other_key(entry: Path) -> None:
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["key"] = "other"
    (entry / MANIFEST).write_text(json.dumps(manifest))


def _manifest_other_version(entry: Path) -> None:
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["package"] = "0.0.1"
    (entry / MANIFEST).write_text(json.dumps(manifest))


def _manifest_other_schema(entry: Path) -> None:
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["schema"] = 1
    (entry / MANIFEST).write_text(json.dumps(manifest))


def _subdirectory(entry: Path) -> None:
    (entry / "nested").mkdir()


def _entry_is_a_file(entry: Path) -> None:
    import shutil

    shutil.rmtree(entry)
    entry.write_text("not a directory")


def _entry_is_a_symlink(entry: Path) -> None:
    import shutil

    elsewhere = entry.parent / "elsewhere"
    shutil.copytree(entry, elsewhere)
    shutil.rmtree(entry)
    entry.symlink_to(elsewhere)


def _fifo(entry: Path) -> None:
    (entry / "data.txt").unlink()
    os.mkfifo(entry / "data.txt")


TAMPERING = [
    _edit_data,
    _truncate,
    _flip_byte,
    _forge_with_manifest,
    _symlink,
    _extra_file,
    _remove_file,
    _remove_manifest,
    _garble_manifest,
    _manifest_is_a_list,
    _manifest_other_key,
    _manifest_other_version,
    _manifest_other_schema,
    _subdirectory,
    _entry_is_a_file,
    _entry_is_a_symlink,
    _fifo,
]


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__.strip("_"))
def test_a_tampered_entry_is_rebuilt_and_reported(tmp_path: Path, tamper) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(tmp_path)
    tamper(entry)
    with pytest.warns(CacheEntryWarning, match=rf"cache entry {entry} rebuilt: \S"):
        rebuilt, text = cached(tmp_path, "k", _write("genuine"), _read)
    assert text == "genuine"  # the forged value never reaches the caller
    assert rebuilt == entry
    assert not entry.is_symlink()
    verify_entry(entry, "k")
    assert _builds(tmp_path) == 2


def test_signed_entries_refuse_a_consistent_forgery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    entry = _entry(tmp_path)
    verify_entry(entry, "k")
    # Someone without the secret rewrites a file and recomputes the manifest's digests.
    (entry / "data.txt").write_text("forged")
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["files"]["data.txt"] = {"sha256": hashlib.sha256(b"forged").hexdigest(), "size": 6}
    (entry / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SavedDataError, match=f"not signed with {HMAC_ENV}"):
        verify_entry(entry, "k")
    with pytest.warns(CacheEntryWarning, match="not signed"):
        assert cached(tmp_path, "k", _write("genuine"), _read)[1] == "genuine"
    # An entry signed under another secret is refused as well.
    monkeypatch.setenv(HMAC_ENV, "another-secret")
    with pytest.raises(SavedDataError, match="not signed"):
        verify_entry(entry, "k")


def test_an_entry_the_loader_refuses_right_after_its_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SavedDataError, match="was just built but is unusable"):
        cached(tmp_path, "k", _write("bad from the start"), _read)


# --- read once: what is verified is what is loaded (issue 30) -------------------------------------


def test_a_file_swapped_after_its_check_is_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    entry = _entry(tmp_path)
    given: list[Path] = []

    def swap_then_read(directory: Path) -> str:
        # Someone rewrites the shared entry right after the check, before the loader reads it.
        (entry / "data.txt").write_text("forged")
        given.append(directory)
        return _read(directory)

    assert cached(tmp_path, "k", _write("genuine"), swap_then_read)[1] == "genuine"
    assert not given[0].is_relative_to(tmp_path)  # a private copy of the verified bytes


def test_a_signed_manifest_is_checked_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    entry = _entry(tmp_path)
    (entry / MANIFEST).write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(SavedDataError, match=f"not signed with {HMAC_ENV}"):
        verify_entry(entry, "k")
    monkeypatch.delenv(HMAC_ENV)
    with pytest.raises(SavedDataError, match="unreadable .RecursionError"):
        verify_entry(entry, "k")


@pytest.mark.parametrize("secret", ["", " \t"])
def test_an_empty_signing_key_is_an_error_not_no_signing(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    from pytest_dreamer_audit.plugin.cache import signing_key

    monkeypatch.setenv(HMAC_ENV, secret)
    with pytest.raises(ConfigError, match=f"{HMAC_ENV} is set but empty.*unset it"):
        signing_key()
    monkeypatch.delenv(HMAC_ENV)
    assert signing_key() is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and deletes folders of mode 000")
def test_an_entry_of_mode_000_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    entry = _entry(tmp_path)
    entry.chmod(0)
    try:
        with pytest.warns(CacheEntryWarning, match="unreadable"):
            assert cached(tmp_path, "k", _write("genuine"), _read)[1] == "genuine"
    finally:
        for leftover in tmp_path.glob(".dreamer-audit-unusable-*"):
            leftover.chmod(0o755)


def test_an_entry_that_can_be_neither_deleted_nor_moved_is_one_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import shutil

    from pytest_dreamer_audit.plugin import cache as cache_module

    entry = _entry(tmp_path)
    (entry / MANIFEST).write_text("{damaged")

    real_rmtree = shutil.rmtree

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        if Path(str(path)) == entry:
            raise PermissionError(errno.EACCES, "Permission denied")
        real_rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    def refuse_move(*args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(shutil, "rmtree", refuse)
    monkeypatch.setattr(cache_module.os, "replace", refuse_move)
    with pytest.raises(ConfigError, match=r"cannot be removed \(Permission denied\); delete it"):
        cached(tmp_path, "k", _write("genuine"), _read)


def test_a_full_disk_is_a_config_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from pytest_dreamer_audit.plugin import cache as cache_module

    def full(directory: Path, key: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "write_manifest", full)
    with pytest.raises(ConfigError, match="disk is full; free some space, or point --dreamer"):
        cached(tmp_path, "k", _write("x"), _read)
    assert not (tmp_path / "k").exists()
