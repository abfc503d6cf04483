"""File helpers: atomic writes keep the old file on failure and get a plain file's mode, the
one reader of users' text files, and content hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.fileio import (
    UserTextError,
    atomic_write_bytes,
    atomic_write_text,
    default_file_mode,
    file_sha256,
    read_user_text,
)


def test_atomic_write_creates_folders_and_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(path, "one\r\n")
    atomic_write_text(path, "two\n")
    assert path.read_bytes() == b"two\n" and os.listdir(path.parent) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch) -> None:
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "atomic.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
        assert default_file_mode() == 0o666 & ~umask
    finally:
        os.umask(previous)
    modes = {(tmp_path / name).stat().st_mode & 0o777 for name in ("atomic.txt", "plain.txt")}
    assert modes == {0o666 & ~umask}


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"a,b\n1,2\n", "a,b\n1,2\n"),
        (b"\xef\xbb\xbfvideo,label\n", "video,label\n"),  # Excel's BOM dropped
        ("caf\u00e9\n".encode(), "caf\u00e9\n"),
        (b"", ""),
    ],
)
def test_user_text_is_utf8_without_a_bom(tmp_path: Path, data: bytes, text: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(data)
    assert read_user_text(path, "label file") == text


def test_non_utf8_user_text_names_the_file_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"video,label\nclip.mp4,caf\xe9\n")
    with pytest.raises(UserTextError) as raised:
        read_user_text(path, "label file")
    error = raised.value
    assert isinstance(error, UserError) and error.line == 2 and error.path == path
    assert str(error).startswith(f"{path}: label file is not UTF-8 text: byte 24 (line 2)")
    assert "0xe9" in str(error)


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_unreadable_user_text_is_one_error_with_the_os_reason(tmp_path: Path, make: str) -> None:
    path = tmp_path / "config.yaml"
    if make == "directory":
        path.mkdir()
    with pytest.raises(UserTextError, match=r"cannot read config \(") as raised:
        read_user_text(path, "config")
    assert raised.value.line is None


def test_user_text_errors_can_be_the_callers_own_type(tmp_path: Path) -> None:
    class ManifestError(UserError):
        pass

    path = tmp_path / "list.txt"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ManifestError, match=f"^{path}: manifest is not UTF-8 text"):
        read_user_text(path, "manifest", ManifestError)


@pytest.mark.parametrize("size", [0, 5, (1 << 20) + 3])  # across the 1 MiB read block
def test_file_sha256_is_the_content_hash(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
