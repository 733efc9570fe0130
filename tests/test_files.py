"""Atomic writes and safe reads (``files.py``): contents, leftovers, permissions and errors."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.files import (
    atomic_copy,
    atomic_text,
    atomic_write,
    default_mode,
    ensure_writable,
    open_regular,
)


class _WriterError(Exception):
    """Raised by a writer half-way through its output."""


def _half_then_fail(stream: BinaryIO) -> None:
    stream.write(b"half of the new")
    stream.flush()
    raise _WriterError("the writer died")


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def umask_027() -> Iterator[None]:
    """Run under umask 027 (group read, nothing for others); the old umask comes back after."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


# --- default_mode -----------------------------------------------------------------------------


def test_default_mode_is_open_and_mkdir_minus_the_umask(umask_027: None) -> None:
    assert default_mode() == 0o640
    assert default_mode(directory=True) == 0o750
    assert os.umask(0o027) == 0o027  # reading the umask left it as it was


# --- atomic_write -----------------------------------------------------------------------------


def test_atomic_write_creates_parents_and_leaves_only_the_target(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"
    returned = atomic_write(target, lambda stream: stream.write(b"\x00\x01payload\xff"))
    assert returned == target
    assert isinstance(returned, Path)
    assert target.read_bytes() == b"\x00\x01payload\xff"
    assert _entries(target.parent) == ["out.bin"]


def test_atomic_write_accepts_a_string_path(tmp_path: Path) -> None:
    returned = atomic_write(str(tmp_path / "s.bin"), lambda stream: stream.write(b"x"))
    assert returned == tmp_path / "s.bin"
    assert returned.read_bytes() == b"x"


def test_atomic_write_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old content that is longer than the new one")
    atomic_write(target, lambda stream: stream.write(b"new"))
    assert target.read_bytes() == b"new"
    assert _entries(tmp_path) == ["out.txt"]


def test_a_failing_writer_keeps_the_old_content_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old content")
    with pytest.raises(_WriterError, match="the writer died"):
        atomic_write(target, _half_then_fail)
    assert target.read_bytes() == b"old content"
    assert _entries(tmp_path) == ["out.txt"]


def test_a_failing_writer_creates_nothing_where_there_was_nothing(tmp_path: Path) -> None:
    with pytest.raises(_WriterError):
        atomic_write(tmp_path / "out.txt", _half_then_fail)
    assert _entries(tmp_path) == []


def test_an_interrupt_during_the_write_also_removes_the_temporary_file(tmp_path: Path) -> None:
    """Ctrl-C is a BaseException, not an Exception: the cleanup must still run."""

    def interrupted(stream: BinaryIO) -> None:
        stream.write(b"partial")
        raise KeyboardInterrupt

    (tmp_path / "out.txt").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.txt", interrupted)
    assert (tmp_path / "out.txt").read_bytes() == b"old"
    assert _entries(tmp_path) == ["out.txt"]


def test_a_directory_in_the_way_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "inside.txt").write_text("kept")
    with pytest.raises(IsADirectoryError):
        atomic_write(target, lambda stream: stream.write(b"new"))
    assert _entries(tmp_path) == ["out"]
    assert (target / "inside.txt").read_text() == "kept"


def test_the_result_has_the_permissions_of_a_plain_open(tmp_path: Path, umask_027: None) -> None:
    """mkstemp makes 0600 files; the target gets 0666 minus the umask, as ``open`` would."""
    written = atomic_write(tmp_path / "out.bin", lambda stream: stream.write(b"x"))
    assert stat.S_IMODE(written.stat().st_mode) == 0o640
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    assert stat.S_IMODE(plain.stat().st_mode) == stat.S_IMODE(written.stat().st_mode)


# --- atomic_text ------------------------------------------------------------------------------


def test_atomic_text_writes_utf8_and_keeps_line_endings(tmp_path: Path) -> None:
    text = "h\u00e9llo \u2713\r\nline two\n"
    target = atomic_text(tmp_path / "t.txt", text)
    assert target.read_bytes() == "h\u00e9llo \u2713\r\nline two\n".encode()
    assert target.read_bytes().count(b"\r\n") == 1  # no newline translation either way


# --- open_regular and atomic_copy -------------------------------------------------------------


def test_atomic_copy_copies_every_byte(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 1000)
    target = atomic_copy(source, tmp_path / "copies" / "copy.bin")
    assert target.read_bytes() == source.read_bytes()
    assert _entries(tmp_path / "copies") == ["copy.bin"]


def test_open_regular_reads_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"content")
    with open_regular(tmp_path / "f.bin") as stream:
        assert stream.read() == b"content"


def test_a_symlinked_source_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    real = tmp_path / "real.bin"
    real.write_bytes(b"secret")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with pytest.raises(
        ConfigError, match=rf"^{link} cannot be opened as a plain file \(Too many levels"
    ):
        atomic_copy(link, tmp_path / "out" / "copy.bin")
    assert not (tmp_path / "out" / "copy.bin").exists()


def test_a_missing_source_is_a_config_error_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with pytest.raises(ConfigError) as caught:
        open_regular(missing)
    assert (
        str(caught.value)
        == f"{missing} cannot be opened as a plain file (No such file or directory)"
    )


def test_a_directory_source_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        atomic_copy(tmp_path, tmp_path / "copy.bin")
    assert str(caught.value) == f"{tmp_path} is not a regular file"
    assert not (tmp_path / "copy.bin").exists()


# --- ensure_writable --------------------------------------------------------------------------


def test_ensure_writable_creates_the_directory_and_leaves_no_probe(tmp_path: Path) -> None:
    directory = ensure_writable(tmp_path / "a" / "b", "the artifact directory", "--out")
    assert directory == tmp_path / "a" / "b"
    assert directory.is_dir()
    assert _entries(directory) == []


@pytest.mark.parametrize(
    ("below", "reason"),
    [("", "File exists"), ("sub", "Not a directory")],
    ids=["file", "below-file"],
)
def test_ensure_writable_names_the_reason_and_the_setting_to_change(
    tmp_path: Path, below: str, reason: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    directory = blocker / below if below else blocker
    with pytest.raises(ConfigError) as caught:
        ensure_writable(directory, "the artifact directory", "--dreamer-artifacts")
    assert type(caught.value) is ConfigError
    assert str(caught.value) == (
        f"the artifact directory {directory} is not writable ({reason}); point "
        "--dreamer-artifacts at a writable directory"
    )
    assert blocker.read_text() == "not a directory"


def test_copying_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        atomic_copy(fifo, tmp_path / "copy.png")  # would wait for a writer forever otherwise
    assert not (tmp_path / "copy.png").exists()
