"""The decoder backends under ``decode``: OpenCV's header and packet scan, frame orientation
and resizing, and the sequential OpenCV and decord readers, on the synthetic index videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.video._backends import (
    DecordFrames,
    FrameClock,
    OpenCVFrames,
    decoded_times,
    decord_available,
    open_capture,
    packet_times,
    read_header,
    resize_frame,
    upright_rgb,
)
from tests.helpers_video import FPS, FRAMES, HEIGHT, WIDTH, index_frame, read_index


def _header(path: Path):
    capture = open_capture(path)
    assert capture is not None
    try:
        return read_header(capture)
    finally:
        capture.release()


@pytest.mark.parametrize(
    ("name", "codec"),
    [("lossless", "ffv1"), ("mp4v", "mpeg4"), ("faststart", "mpeg4"), ("mjpeg_avi", "mjpeg")],
)
def test_header_reports_size_rate_count_and_codec(index_videos, name: str, codec: str) -> None:
    header = _header(index_videos[name])
    assert (header.width, header.height, header.fps, header.rotation) == (WIDTH, HEIGHT, FPS, 0)
    assert header.codec == codec
    assert header.frame_count == FRAMES  # Matroska has no count: FFmpeg's estimate, exact here


def test_open_capture_refuses_what_ffmpeg_cannot_open(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n" * 20)
    assert open_capture(path) is None
    assert decoded_times(path).size == 0


@pytest.mark.parametrize("name", ["lossless", "mp4v", "mjpeg_avi", "faststart"])
def test_packet_scan_gives_every_frame_time_without_decoding(index_videos, name: str) -> None:
    path = index_videos[name]
    times = packet_times(path, _header(path))
    assert times is not None and times.size == FRAMES
    np.testing.assert_allclose(np.sort(times) - times.min(), np.arange(FRAMES) / FPS, atol=1e-3)
    np.testing.assert_allclose(np.sort(decoded_times(path)), np.sort(times), atol=1e-3)


def test_packet_scan_of_another_stream_is_none(index_videos) -> None:
    path = index_videos["lossless"]
    other = _header(path)._replace(width=WIDTH + 2)  # not the stream the demuxer picks
    assert packet_times(path, other) is None


@pytest.mark.parametrize(
    ("rotation", "turns"), [(0, 0), (90, -1), (180, 2), (270, 1)]
)  # np.rot90 turns counter-clockwise: -1 is a quarter turn clockwise
def test_upright_rgb_converts_and_turns_clockwise(rotation: int, turns: int) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        upright_rgb(rgb[..., ::-1].copy(), rotation), np.rot90(rgb, turns)
    )


@pytest.mark.parametrize(
    ("out_hw", "same_object"), [((64, 96), True), ((32, 48), False), ((128, 192), False)]
)
def test_resize_frame_keeps_a_frame_of_the_right_size(out_hw, same_object: bool) -> None:
    frame = index_frame(5)
    out = resize_frame(frame, out_hw)
    assert out.shape == (*out_hw, 3) and out.dtype == np.uint8 and (out is frame) is same_object
    if out_hw[0] < HEIGHT:  # shrinking averages: the blocks still spell the index
        assert read_index(resize_frame(out, (HEIGHT, WIDTH))) == 5


@pytest.mark.parametrize("wanted", [[0, 1, 2], [0, 30, 60, 89], [7, 8, 50]])
def test_opencv_frames_gives_the_wanted_frames_on_their_own_index(index_videos, wanted) -> None:
    reader = OpenCVFrames(index_videos["lossless"], rotation=0, frames=FRAMES)
    try:
        got = list(reader.frames(np.array(wanted)))
    finally:
        reader.close()
    assert [index for index, _ in got] == wanted and not reader.lost and not reader.out_of_sync
    for index, frame in got:
        np.testing.assert_array_equal(frame, index_frame(index))


def test_opencv_frames_checked_by_a_clock_that_disagrees_stops_out_of_sync(index_videos) -> None:
    times = np.arange(FRAMES) / FPS * 3  # the packets say three times slower than decoded
    clock = FrameClock(times_s=times, origin_s=0.0, tolerance_s=1e-3)
    reader = OpenCVFrames(index_videos["lossless"], rotation=0, clock=clock, frames=FRAMES)
    try:
        got = [index for index, _ in reader.frames(np.arange(FRAMES))]
    finally:
        reader.close()
    assert reader.out_of_sync and len(got) < FRAMES


def test_opencv_frames_of_an_unopenable_file_gives_nothing(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n" * 20)
    reader = OpenCVFrames(path, rotation=0)
    assert list(reader.frames(np.arange(3))) == []
    reader.close()


def test_decord_available_says_whether_decord_imports() -> None:
    try:
        import decord  # noqa: F401
    except ImportError:
        assert decord_available() is False
    else:
        assert decord_available() is True


@pytest.mark.skipif(not decord_available(), reason="decord not installed")
def test_decord_frames_gives_the_wanted_frames_and_stops_at_its_end(index_videos) -> None:
    reader = DecordFrames(index_videos["lossless"])
    assert len(reader) == FRAMES
    got = list(reader.frames(np.array([3, 40, 89, 95])))
    assert [index for index, _ in got] == [3, 40, 89]  # 95 is past the end: never asked for
    for index, frame in got:
        np.testing.assert_array_equal(frame, index_frame(index))
