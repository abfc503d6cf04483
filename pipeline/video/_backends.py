"""The two decoders behind `pipeline.video.decode`: OpenCV (FFmpeg) and decord.

Both are used only in the access pattern that is frame-exact: one sequential pass from the
first frame, decoding every frame and converting only the wanted ones. Nothing here seeks, so
the seek bugs of either library (wrong frame after a keyframe seek on B-frame H.264, VP8, AVI,
files with messy timestamps) cannot reach our output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

# OpenCV prints its own warnings ("can't be used to capture by name") for files we then report
# with a specific VideoError; keep its console quiet unless the user asks for it.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# Each FFmpeg read or open that blocks longer than this is interrupted by OpenCV's FFmpeg
# interrupt callback: a stalled file fails instead of hanging the pipeline.
STALL_TIMEOUT_MS = 30_000
_CAPTURE_PARAMS = [
    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
    STALL_TIMEOUT_MS,
    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
    STALL_TIMEOUT_MS,
]
# Display-matrix rotation (OpenCV's ORIENTATION_META: degrees clockwise, the direction ffmpeg
# and players turn the picture) -> the cv2.rotate code that makes the frame upright.
_ROTATE_CODES = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}
_FOURCC_CODECS = {
    "h264": "h264",
    "avc1": "h264",
    "hevc": "hevc",
    "hev1": "hevc",
    "hvc1": "hevc",
    "fmp4": "mpeg4",
    "mp4v": "mpeg4",
    "xvid": "mpeg4",
    "divx": "mpeg4",
    "vp80": "vp8",
    "vp90": "vp9",
    "av01": "av1",
    "mjpg": "mjpeg",
    "ffv1": "ffv1",
}


class StreamHeader(NamedTuple):
    """What OpenCV reads from the container for the stream it decodes (before rotation)."""

    width: int
    height: int
    fps: float
    frame_count: int  # the container's count or FFmpeg's estimate; -1 when absent
    rotation: int  # degrees clockwise, one of 0, 90, 180, 270
    codec: str


def open_capture(path: Path, raw_packets: bool = False) -> cv2.VideoCapture | None:
    """An opened FFmpeg capture with rotation left to us, or None when FFmpeg refuses the file."""
    params = list(_CAPTURE_PARAMS)
    if raw_packets:
        params += [cv2.CAP_PROP_FORMAT, -1]  # demux only: grab() reads packets, decodes nothing
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        return None
    # We rotate ourselves so that decord and OpenCV frames go through the same, tested code.
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    return capture


def read_header(capture: cv2.VideoCapture) -> StreamHeader:
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
    tag = fourcc.decode("latin-1").strip("\x00 ").lower()
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    fps = capture.get(cv2.CAP_PROP_FPS)
    return StreamHeader(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(fps) if np.isfinite(fps) and fps > 0 else 0.0,
        frame_count=int(count) if np.isfinite(count) and 0 <= count < 2**40 else -1,
        rotation=int(round(capture.get(cv2.CAP_PROP_ORIENTATION_META))) % 360,
        codec=_FOURCC_CODECS.get(tag, tag or "unknown"),
    )


def packet_times(path: Path, header: StreamHeader) -> np.ndarray | None:
    """Presentation times (s) of every video packet in file (decode) order, read without decoding.

    One packet is one frame for every codec we meet, so this is also the exact frame count,
    even where the header has none (WebM from MediaRecorder). None when the demux-only open
    picks another video stream than the decoding open (files with several video streams).
    """
    capture = open_capture(path, raw_packets=True)
    if capture is None:
        return None
    try:
        same_stream = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == header.width
            and int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == header.height
        )
        if not same_stream:
            return None
        times_ms = []
        while capture.grab():
            times_ms.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    finally:
        capture.release()
    return np.asarray(times_ms, dtype=np.float64) / 1000.0


def decoded_times(path: Path) -> np.ndarray:
    """Presentation times (s) from a full decode: the slow path for multi-stream files."""
    capture = open_capture(path)
    times_ms = []
    try:
        while capture is not None and capture.grab():
            times_ms.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    finally:
        if capture is not None:
            capture.release()
    return np.asarray(times_ms, dtype=np.float64) / 1000.0


def upright_rgb(bgr: np.ndarray, rotation: int) -> np.ndarray:
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    code = _ROTATE_CODES.get(rotation)
    return rgb if code is None else cv2.rotate(rgb, code)


def resize_frame(rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    height, width = out_hw
    if rgb.shape[:2] == (height, width):
        return rgb
    # INTER_AREA averages the source pixels when shrinking (no aliasing); linear when growing.
    shrinking = height * width < rgb.shape[0] * rgb.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interpolation)


class FrameClock(NamedTuple):
    """What the packet scan says each native frame's timestamp is, to check the decoder by."""

    times_s: np.ndarray  # (frames,) sorted, relative to the first frame
    origin_s: float  # the first frame's container timestamp (s)
    tolerance_s: float


class OpenCVFrames:
    """Sequential FFmpeg decode: grab() every frame, retrieve() (convert) only wanted ones.

    With a `FrameClock`, every grabbed frame's timestamp is checked against the packet scan, so
    a frame the decoder drops (damaged data in the middle of the file) cannot shift the frames
    after it onto the wrong index: those frames keep their own index and the lost ones are
    listed in `lost`. A frame whose timestamp matches no packet stops decoding (`out_of_sync`).
    """

    name = "opencv"

    def __init__(
        self, path: Path, rotation: int, clock: FrameClock | None = None, frames: int = 0
    ) -> None:
        self.path = path
        self.rotation = rotation
        self.lost: list[tuple[int, int]] = []  # (first, last) native indices never decoded
        self.out_of_sync = False
        self._clock = clock
        self._frames = frames  # frames the stream should hold (0: unknown)
        self._current = -1  # native index of the frame last grabbed
        self._capture = open_capture(path)

    def frames(self, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(index, upright RGB frame) for each index in the sorted `wanted` that the decoder
        produces; stops at the end of the stream or where it fails or loses sync.

        A frame is handed out only once the decoder has moved past it: when decoding fails
        before the stream's end, the frame just before the failure is dropped too, since
        decoders patch a damaged frame with its neighbour's pixels (seen on MPEG-4 part 2).
        """
        if self._capture is None:
            return
        held: tuple[int, np.ndarray] | None = None
        for index in wanted:
            while self._current < index:
                if not self._grab():
                    return
                if held is not None:
                    yield held
                    held = None
            if self._current != index:  # the decoder lost this frame
                continue
            ok, bgr = self._capture.retrieve()
            if not ok or bgr is None:
                return
            held = (int(index), upright_rgb(bgr, self.rotation))
        if held is not None and (self._current + 1 >= self._frames or self._grab()):
            yield held

    def _grab(self) -> bool:
        """Decode the next frame; False at the end, on a decoder failure or a lost sync."""
        if not self._capture.grab():
            return False
        placed = self._place(self._current + 1)
        if placed is None:
            self.out_of_sync = True
            return False
        self._current = placed
        return True

    def _place(self, expected: int) -> int | None:
        """Native index of the frame just grabbed (`expected` unless frames were lost)."""
        clock = self._clock
        if clock is None or clock.times_s.size < 2:
            return expected
        shown = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - clock.origin_s
        times = clock.times_s
        if expected < times.size and abs(shown - times[expected]) <= clock.tolerance_s:
            return expected
        nearest = int(np.clip(np.searchsorted(times, shown), 1, times.size - 1))
        if abs(shown - times[nearest - 1]) < abs(shown - times[nearest]):
            nearest -= 1
        if abs(shown - times[nearest]) <= clock.tolerance_s and nearest > expected:
            self.lost.append((expected, nearest - 1))
            return nearest
        if expected == 0:  # timestamps this decoder reports differently: nothing to check by
            self._clock = None
            return expected
        return None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


class DecordFrames:
    """Sequential decord decode: skip_frames() decodes without converting, next() converts.

    decord applies the display rotation itself (checked equal to OpenCV's rotation on the
    rotated test files), so frames come out upright.
    """

    name = "decord"

    def __init__(self, path: Path) -> None:
        import decord

        decord.bridge.set_bridge("native")
        self.path = path
        self.decoded = 0
        self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0))

    def __len__(self) -> int:
        return len(self._reader)

    def frames(self, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(index, upright RGB frame) for each sorted index; raises on a decoder error."""
        total = len(self._reader)
        for index in wanted:
            # Never ask for a frame decord does not list: past its end it can spin forever.
            if index >= total:
                return
            if index > self.decoded:
                self._reader.skip_frames(int(index - self.decoded))
                self.decoded = int(index)
            try:
                frame = self._reader.next().asnumpy()
            except StopIteration:
                return
            self.decoded += 1
            yield int(index), frame

    def close(self) -> None:
        self._reader = None
