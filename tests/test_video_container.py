"""Container sniffing: the kind from the first bytes, cut files told from whole ones by the
container's own size fields, and the specific error for a file the decoder cannot open."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline.video._container import check_path, container_kind, cut_short, unopenable_error
from pipeline.video.decode import probe
from pipeline.video.errors import (
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    VideoNotFoundError,
)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x20ftypisom" + b"\x00" * 20, "mp4"),
        (b"\x00\x00\x00\x08moov", "mp4"),  # QuickTime without ftyp
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"ID3\x04\x00", "audio"),
        (b"fLaC\x00\x00", "audio"),
        (b"video,label\nclips/a.mp4,cat\n", "text"),
        ("un café à 3 €".encode()[:-1], "text"),  # a character cut at the end still reads
        (b"\x00\x01\x02\x03\xff\xfe", "unknown"),
        (b"", "unknown"),
    ],
)
def test_container_kind_from_the_first_bytes(head: bytes, kind: str) -> None:
    assert container_kind(head) == kind


def test_good_files_are_not_taken_for_cut_ones(index_videos):
    for name in ("lossless", "mjpeg_avi", "faststart", "mp4v"):
        path = index_videos[name]
        assert not cut_short(path, container_kind(path.read_bytes()[:64])), name
        assert not probe(path).truncated, name


@pytest.mark.parametrize("source", ["lossless", "mjpeg_avi", "faststart"])
def test_a_cut_file_is_cut_short_by_its_own_size_fields(index_videos, tmp_path, source) -> None:
    data = index_videos[source].read_bytes()
    path = tmp_path / f"cut{index_videos[source].suffix}"
    path.write_bytes(data[: int(len(data) * 0.6)])
    assert cut_short(path, container_kind(data[:64])) is True


def test_a_kind_without_size_fields_cannot_tell(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert cut_short(path, "text") is None


@pytest.mark.parametrize(
    ("case", "error", "cause"),
    [
        ("missing", VideoNotFoundError, "no such file"),
        ("directory", NotAVideoError, "directory"),
        ("empty", NotAVideoError, "empty"),
    ],
)
def test_check_path_refuses_what_cannot_be_a_video(tmp_path, case, error, cause) -> None:
    path = tmp_path / "clip.mp4"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.touch()
    with pytest.raises(error, match=cause) as raised:
        check_path(path)
    assert raised.value.path == str(path)


def test_check_path_passes_a_readable_file(index_videos) -> None:
    check_path(index_videos["lossless"])


def _unopenable(tmp_path: Path, index_videos: dict[str, Path], case: str) -> Path:
    path = tmp_path / f"{case}.bin"
    if case == "text":
        path.write_text("this is not a video\n" * 50)
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(50_000))
    elif case == "wav":
        with wave.open(str(path), "wb") as audio:
            audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(8000)
            audio.writeframes(b"\x00\x00" * 800)
    elif case == "mp4_without_moov":
        data = index_videos["mp4v"].read_bytes()  # moov at the end: the cut removes it
        path.write_bytes(data[: len(data) // 2])
    else:
        return index_videos[case]
    return path


@pytest.mark.parametrize(
    ("case", "error", "cause"),
    [
        ("text", NotAVideoError, "text file"),
        ("random", NotAVideoError, "unrecognised format"),
        ("wav", NoVideoStreamError, "audio-only"),
        ("mp4_without_moov", NotAVideoError, "'moov' atom"),
        ("no_frames_mp4", NoVideoStreamError, "without a video track"),
        ("no_frames_mkv", EmptyVideoError, "holds no frames"),
    ],
)
def test_unopenable_file_gets_its_specific_error(tmp_path, index_videos, case, error, cause):
    path = _unopenable(tmp_path, index_videos, case)
    found = unopenable_error(path)
    assert type(found) is error and cause in found.cause and found.path == str(path)
