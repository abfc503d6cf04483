"""Frame-exact, bounded-memory decoding (``probe``, ``iter_chunks``): synthetic index videos,
damaged files built here, and every real file in ../shared/data/videos."""

from __future__ import annotations

import json
import subprocess
import time
import warnings
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.video._backends import decord_available
from pipeline.video.decode import (
    DamagedVideoWarning,
    DecodeError,
    EmptyVideoError,
    FrameChunk,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoWarning,
    UnreadableVideoError,
    VideoError,
    VideoInfo,
    VideoNotFoundError,
    VideoWarning,
    _first_gap,
    _reorder_depth,
    iter_chunks,
    probe,
    sample_plan,
)
from tests.conftest import SHARED_VIDEOS, shared_video_files
from tests.helpers_labeling import INFO
from tests.helpers_video import (
    FPS,
    FRAMES,
    HEIGHT,
    WIDTH,
    decode_all,
    decode_all_from,
    index_frame,
    opencv_reference,
    read_index,
)

BACKENDS = ["opencv"] + (["decord"] if decord_available() else [])


# --- synthetic lossless video: frame-exact sampling ------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sample_fps", [None, 1, 5, 7.5])
def test_lossless_sampling_is_frame_exact(index_videos, backend, sample_fps):
    stream = iter_chunks(
        index_videos["lossless"], sample_fps=sample_fps, chunk_frames=8, backend=backend
    )
    frames, indices, times = decode_all(
        index_videos["lossless"], sample_fps=sample_fps, backend=backend
    )
    assert stream.backend == backend
    assert indices.tolist() == sample_plan(np.arange(FRAMES) / FPS, sample_fps, None).tolist()
    np.testing.assert_allclose(times, indices / FPS, atol=1e-3)
    for frame, index in zip(frames, indices, strict=True):
        np.testing.assert_array_equal(frame, index_frame(int(index)))


def test_chunks_are_bounded_resized_and_typed(index_videos):
    stream = iter_chunks(index_videos["lossless"], size=32, chunk_frames=7, max_frames=20)
    chunks = list(stream)
    assert [len(c.indices) for c in chunks] == [7, 7, 6]
    for chunk in chunks:
        assert isinstance(chunk, FrameChunk)
        assert chunk.frames.dtype == np.uint8 and chunk.frames.shape[1:] == (32, 48, 3)
        assert chunk.indices.dtype == np.int64 and chunk.times_s.dtype == np.float64
    assert stream.info.frames == FRAMES and stream.warnings == []


def test_lossy_mp4_indices_survive_compression(index_videos):
    frames, indices, _ = decode_all(index_videos["mp4v"], sample_fps=7.5)
    assert [read_index(f) for f in frames] == indices.tolist()


def test_probe_reports_stream_facts(index_videos):
    info = probe(index_videos["lossless"])
    assert (info.frames, info.fps, info.width, info.height) == (FRAMES, FPS, WIDTH, HEIGHT)
    assert (
        info.rotation == 0
        and info.codec == "ffv1"
        and info.duration_s == pytest.approx(3.0, abs=1e-3)
    )
    assert set(info.to_dict()) >= {"path", "frames", "fps", "duration_s", "codec", "backend"}


# --- damaged input ---------------------------------------------------------------------------


def _damaged(tmp_path: Path, index_videos: dict[str, Path], case: str) -> Path:
    path = tmp_path / f"{case}.mp4"
    if case == "missing":
        return path
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.touch()
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(50_000))
    elif case == "text":
        path.write_text("this is not a video\n" * 50)
    elif case == "cut_mp4":
        data = index_videos["mp4v"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "wav":
        with wave.open(str(path), "wb") as audio:
            audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(8000)
            audio.writeframes(b"\x00\x00" * 8000)
    else:
        return index_videos[case]
    return path


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("missing", VideoNotFoundError),
        ("directory", NotAVideoError),
        ("empty", NotAVideoError),
        ("random", NotAVideoError),
        ("text", NotAVideoError),
        ("cut_mp4", NotAVideoError),  # moov at the end: the cut removed the header
        ("wav", NoVideoStreamError),
        ("no_frames_mp4", NoVideoStreamError),  # OpenCV writes no track without frames
        ("no_frames_mkv", EmptyVideoError),
    ],
)
def test_damaged_input_gives_its_error_quickly(tmp_path, index_videos, case, error):
    path = _damaged(tmp_path, index_videos, case)
    started = time.monotonic()
    with pytest.raises(error) as raised:
        probe(path)
    with pytest.raises(error):
        iter_chunks(path)
    assert time.monotonic() - started < 10
    assert str(path) in str(raised.value) and raised.value.cause in str(raised.value)
    assert isinstance(raised.value, VideoError)


@pytest.mark.parametrize("source", ["faststart", "lossless"])
def test_truncated_file_yields_frames_before_the_damage(tmp_path, index_videos, source):
    data = index_videos[source].read_bytes()
    path = tmp_path / f"cut{index_videos[source].suffix}"
    path.write_bytes(data[: len(data) // 2])
    started = time.monotonic()
    with pytest.warns(TruncatedVideoWarning):
        stream = iter_chunks(path, backend="auto")
        frames, indices, _ = decode_all_from(stream)
    assert time.monotonic() - started < 10
    assert stream.info.truncated and stream.warnings and stream.backend == "opencv"
    assert 0 < len(indices) < FRAMES and indices.tolist() == list(range(len(indices)))
    assert [read_index(f) for f in frames] == indices.tolist()  # no garbage frame


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9, 0.97, 0.995])
@pytest.mark.parametrize("source", ["lossless", "mjpeg_avi", "faststart"])
def test_cut_files_never_give_a_damaged_or_misnumbered_frame(
    tmp_path, index_videos, source, fraction
):
    data = index_videos[source].read_bytes()
    path = tmp_path / f"cut{index_videos[source].suffix}"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.warns(VideoWarning):
        frames, indices, _ = decode_all_from(iter_chunks(path))
    assert 0 < len(indices) < FRAMES and indices.tolist() == list(range(len(indices)))
    assert [read_index(f) for f in frames] == indices.tolist()


@pytest.mark.parametrize("at", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("source", ["lossless", "faststart"])
def test_damage_inside_a_file_never_gives_a_frame_under_another_index(
    tmp_path, index_videos, source, at
):
    data = bytearray(index_videos[source].read_bytes())
    start = int(len(data) * at)
    data[start : start + 200] = np.random.default_rng(0).integers(0, 255, 200, np.uint8).tobytes()
    path = tmp_path / f"damaged{index_videos[source].suffix}"
    path.write_bytes(bytes(data))
    with pytest.warns(VideoWarning):
        frames, indices, _ = decode_all_from(iter_chunks(path))
    assert [read_index(f) for f in frames] == indices.tolist()


def test_missing_frames_are_found_where_the_times_jump():
    times = np.arange(10) / 30.0
    assert _first_gap(times) is None
    assert _first_gap(np.delete(times, [4, 5])) == 4
    # Decode order I0 P4 B2 b1 b3 (B-pyramid): b1 is shown 2 places before it is stored.
    in_file_order = np.array([0, 4, 2, 1, 3]) / 30.0
    assert _reorder_depth(in_file_order, "mp4", "h264") == 2
    assert _reorder_depth(np.array([0.0, 0.1, 0.033]), "avi", "h264") == 16  # AVI cannot tell
    assert _reorder_depth(np.array([0.0, 0.1, 0.033]), "mp4", "mjpeg") == 0  # intra-only


@pytest.mark.parametrize(
    ("name", "fraction", "frames"),
    [("dlc_vid1_camera-1_mjpeg.avi", 0.99, 11), ("decord_flipping_a_pancake.mkv", 0.9, None)],
)
def test_real_cut_files_are_flagged_and_their_frames_match(
    shared_videos, tmp_path, name, fraction, frames
):
    source = SHARED_VIDEOS / name
    reference, _, _ = decode_all_from(iter_chunks(source, size=48))
    data = source.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.warns(VideoWarning):
        stream = iter_chunks(path, size=48)
        got, indices, _ = decode_all_from(stream)
    assert stream.info.truncated and indices.tolist() == list(range(len(indices)))
    assert frames is None or len(indices) == frames
    np.testing.assert_array_equal(got, reference[: len(indices)])


def test_real_file_damaged_in_the_middle_keeps_frames_on_their_own_index(shared_videos, tmp_path):
    source = SHARED_VIDEOS / "decord_flipping_a_pancake.mkv"
    reference, _, _ = decode_all_from(iter_chunks(source, size=48))
    data = bytearray(source.read_bytes())
    start = int(len(data) * 0.3)
    data[start : start + 20000] = (
        np.random.default_rng(1).integers(0, 255, 20000, np.uint8).tobytes()
    )
    path = tmp_path / "damaged.mkv"
    path.write_bytes(bytes(data))
    with pytest.warns(DamagedVideoWarning):
        got, indices, _ = decode_all_from(iter_chunks(path, size=48))
    assert len(indices) > 0
    for frame, index in zip(got, indices, strict=True):
        assert np.abs(frame.astype(int) - reference[index]).mean() < 3, index


def test_unknown_backend_is_a_user_error(index_videos):
    from pipeline.errors import UserError

    with pytest.raises(UserError, match="backend"):
        iter_chunks(index_videos["lossless"], backend="ffmpeg")


def test_decode_error_is_a_video_error():
    assert issubclass(DecodeError, VideoError)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_probe_json_and_error(index_videos, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli.app import app

    result = CliRunner().invoke(app, ["probe", str(index_videos["lossless"]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["frames"] == FRAMES
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n")
    result = CliRunner().invoke(app, ["probe", str(text)])
    assert result.exit_code == 2


# --- every real file in ../shared/data/videos ------------------------------------------------

SHARED = shared_video_files()
ROTATED = [p for p in SHARED if p.name.startswith("decord_video_")]


# decord over every real file is the slow half of this sweep (``auto`` decodes with OpenCV).
SWEEP_BACKENDS = [pytest.param(b, marks=pytest.mark.slow) if b == "decord" else b for b in BACKENDS]


@pytest.mark.parametrize("backend", SWEEP_BACKENDS)
@pytest.mark.parametrize("path", SHARED, ids=[p.name for p in SHARED])
def test_real_file_sampling_is_exact_and_matches_opencv(shared_videos, path, backend):
    try:
        full = iter_chunks(path, size=48, backend=backend)
    except DecodeError as exc:  # forced decord refuses files it cannot be trusted with
        assert backend == "decord", exc
        pytest.skip(f"decord refuses {path.name}: {exc.cause}")
    frames, indices, times = decode_all_from(full)
    sampled, sampled_indices, sampled_times = decode_all(
        path, size=48, sample_fps=5, backend=backend
    )
    assert full.info.frames == len(frames) and indices.tolist() == list(range(len(frames)))
    assert np.all(np.diff(times) > 0) and times[0] == 0
    assert sampled_indices.tolist() == sample_plan(times, 5, None).tolist()
    np.testing.assert_array_equal(sampled, frames[sampled_indices])
    np.testing.assert_array_equal(sampled_times, times[sampled_indices])
    reference = opencv_reference(path)
    assert len(reference) == len(frames)
    for frame, index in zip(sampled, sampled_indices, strict=True):
        _assert_closest(frame, reference, int(index))


def _assert_closest(frame: np.ndarray, reference: list[np.ndarray], index: int) -> None:
    def distance(i: int) -> float:
        return float(np.abs(frame.astype(np.int16) - reference[i]).mean())

    own = distance(index)
    for neighbour in (index - 1, index + 1):
        if 0 <= neighbour < len(reference) and not np.array_equal(
            reference[neighbour], reference[index]
        ):
            assert own < distance(neighbour), (index, neighbour)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ROTATED, ids=[p.name for p in ROTATED])
def test_rotated_files_come_out_upright(shared_videos, path, backend):
    angle = int(path.stem.rsplit("_", 1)[1])
    # ffmpeg's display matrix for video_90 says rotation=-90: players turn it 90° clockwise.
    turns_clockwise = {0: 0, 90: 1, 180: 2, 270: 3}[angle]
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    raw = []
    while (read := capture.read())[0]:
        raw.append(read[1][..., ::-1])
    frames, _, _ = decode_all(path, backend=backend)
    info = probe(path, backend=backend)
    assert info.rotation == angle
    assert (info.height, info.width) == np.rot90(raw[0], -turns_clockwise).shape[:2]
    assert len(frames) == len(raw)
    for frame, unrotated in zip(frames, raw, strict=True):
        np.testing.assert_array_equal(frame, np.rot90(unrotated, -turns_clockwise))


@pytest.mark.skipif(not decord_available(), reason="decord not installed")
@pytest.mark.parametrize("name", ["moviepy_no_duration_vp9.webm", "torchcodec_nasa_13013.mp4"])
def test_auto_is_opencv_and_forced_decord_refuses_untrusted_files(shared_videos, name):
    path = next((p for p in shared_videos if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} absent")
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        stream = iter_chunks(path, sample_fps=1)
        list(stream)
    assert stream.backend == "opencv" and not stream.warnings
    with pytest.raises(DecodeError, match="decord cannot be trusted"):
        iter_chunks(path, sample_fps=1, backend="decord")


def test_auto_decodes_with_opencv(index_videos):
    stream = iter_chunks(index_videos["lossless"], sample_fps=5)
    auto = [chunk.frames for chunk in stream]
    opencv = [chunk.frames for chunk in iter_chunks(index_videos["lossless"], 5, backend="opencv")]
    assert stream.backend == "opencv" and probe(index_videos["lossless"]).backend == "opencv"
    np.testing.assert_array_equal(np.concatenate(auto), np.concatenate(opencv))


def test_unreadable_file_is_a_video_error_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "locked.mp4"
    path.write_bytes(b"\x00" * 64)
    real_open = Path.open

    def deny(self, *args, **kwargs):  # chmod 000 does not stop root, so refuse the read here
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(UnreadableVideoError, match="Permission denied") as raised:
        probe(path)
    assert str(path) in str(raised.value)


def test_a_file_cut_before_its_first_frame_says_so(shared_videos, tmp_path):
    data = (SHARED_VIDEOS / "decord_video_0.mov").read_bytes()  # moov first, 3 frames
    path = tmp_path / "cut.mov"
    path.write_bytes(data[: int(len(data) * 0.99)])
    with pytest.raises(EmptyVideoError, match="cut short before its first complete frame"):
        probe(path)


@pytest.fixture(scope="module")
def vfr_videos(tmp_path_factory) -> dict[str, Path]:
    """Variable frame rate H.264 (B-frames) in MKV, MP4 (moov first) and an MKV with audio
    running 2 s past the video, made with imageio-ffmpeg's bundled ffmpeg."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    root = tmp_path_factory.mktemp("vfr")
    source = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=8"]
    vfr = ["-vf", "select='lt(mod(n\\,10)\\,3)+eq(mod(n\\,10)\\,7)'", "-fps_mode", "vfr"]
    made = {}
    for name, extra in [
        ("vfr.mkv", [*vfr, "-c:v", "libx264", "-bf", "3"]),
        ("vfr.mp4", [*vfr, "-c:v", "libx264", "-bf", "3", "-movflags", "+faststart"]),
        ("long_audio.mkv", ["-f", "lavfi", "-i", "sine=duration=10", "-map", "0", "-map", "1",
                            "-c:v", "libx264", "-c:a", "libvorbis"]),
    ]:  # fmt: skip
        made[name] = root / name
        subprocess.run([ffmpeg, "-v", "error", "-y", *source, *extra, str(made[name])], check=True)
    return made


def test_whole_variable_rate_and_long_audio_files_are_not_taken_for_damaged(vfr_videos):
    expected = {"vfr.mkv": 80, "vfr.mp4": 80, "long_audio.mkv": 200}
    for name, path in vfr_videos.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", VideoWarning)
            info = probe(path)
        assert (info.frames, info.truncated) == (expected[name], False), name


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9, 0.995])
def test_cut_variable_rate_file_keeps_its_good_frames(vfr_videos, tmp_path, fraction):
    source = vfr_videos["vfr.mp4"]
    reference, _, _ = decode_all_from(iter_chunks(source, size=48))
    data = source.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.warns(TruncatedVideoWarning):
        got, indices, _ = decode_all_from(iter_chunks(path, size=48))
    # about as many as are on disk (minus the frames that may depend on the cut), all right
    assert len(indices) >= fraction * 80 - 8 and indices.tolist() == list(range(len(indices)))
    for frame, index in zip(got, indices, strict=True):
        assert np.abs(frame.astype(int) - reference[index]).mean() < 3, index


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (INFO.to_dict(), INFO),
        ({**INFO.to_dict(), "decoder_extra": 1}, INFO),  # a newer header's extra key
        ({k: getattr(INFO, k) for k in ("fps", "frames", "duration_s", "width", "height")},
         VideoInfo("", 20, 10.0, 2.0, 64, 48, 0, "unknown", "unknown")),  # an older header
    ],
)  # fmt: skip
def test_video_info_comes_back_typed_from_a_store_header(header, expected) -> None:
    assert VideoInfo.from_dict(json.loads(json.dumps(header))) == expected
