from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.plugin.cache import COMPLETE_MARKER, LEDGER, cached_directory, file_digest


def _write(text: str):  # type: ignore[no-untyped-def]
    def build(directory: Path) -> None:
        (directory / "data.txt").write_text(text)

    return build


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    first = cached_directory(tmp_path, "k", _write("one"))
    second = cached_directory(tmp_path, "k", _write("two"))
    assert first == second == tmp_path / "k"
    assert (first / "data.txt").read_text() == "one"
    assert (tmp_path / LEDGER).read_text().split()[0] == "k"
    assert len((tmp_path / LEDGER).read_text().splitlines()) == 1


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(directory: Path) -> None:
        (directory / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_directory(tmp_path, "k", broken)
    assert not (tmp_path / "k").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def _slow_build(root: str, started: str) -> None:
    def build(directory: Path) -> None:
        (directory / "part.txt").write_text("x")
        Path(started).write_text("go")
        time.sleep(60)

    cached_directory(Path(root), "k", build)


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
    assert list((tmp_path / "c").glob(".tmp-k-*"))  # the half-written scratch directory
    entry = cached_directory(tmp_path / "c", "k", _write("fresh"))
    assert (entry / "data.txt").read_text() == "fresh"
    assert (entry / COMPLETE_MARKER).is_file()
    assert not list((tmp_path / "c").glob(".tmp-k-*"))  # swept


def test_an_incomplete_entry_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "data.txt").write_text("stale")
    assert (cached_directory(tmp_path, "k", _write("new")) / "data.txt").read_text() == "new"


def test_unwritable_root_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cache directory .* is not writable"):
        cached_directory(blocker / "sub", "k", _write("x"))


def test_file_digest_is_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
