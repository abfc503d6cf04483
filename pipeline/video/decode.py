"""Probe a video (``probe`` -> ``VideoInfo``) and decode it (``iter_chunks`` -> ``FrameChunk``).

Frame-exact: one sequential pass from the first frame, never a seek, each frame checked
against the container's packet timestamps, so frame *i* out is frame *i* of the video, upright,
RGB and resized at decode; memory is bounded by one chunk. Damage yields the frames that cannot
depend on missing data plus a warning, any other problem a ``VideoError`` naming the file. The
README ("Decoding") states the guarantees; ``DECODER_VERSION`` changes whenever pixels could.

Why ``auto`` is OpenCV, not decord (``benchmarks/decode.py``): decord's peak RSS grows with the
video's length (88 MB for 1 min vs 141 MB for 10 min at 360p, ~570 MB with ``get_batch``) and
it is ~3x slower here; OpenCV's ``grab()``/``retrieve()`` stays flat (67 vs 70 MB). Both give
identical pixels on the shared files decord accepts except MJPEG (2 levels apart), hence
version "2".
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pipeline.errors import UserError
from pipeline.video._backends import (
    DecordFrames,
    FrameClock,
    OpenCVFrames,
    StreamHeader,
    decoded_times,
    decord_available,
    open_capture,
    packet_times,
    read_header,
    resize_frame,
)
from pipeline.video._container import (
    EXACT_COUNT_CONTAINERS,
    check_path,
    container_kind,
    cut_short,
    read_head,
    unopenable_error,
)
from pipeline.video.errors import (
    DamagedVideoWarning,
    DecodeError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoWarning,
    UnreadableVideoError,
    VideoError,
    VideoNotFoundError,
    VideoWarning,
)
from pipeline.video.plan import resized_shape, sample_plan

__all__ = [
    "BACKENDS",
    "DECODER_VERSION",
    "ChunkStream",
    "DamagedVideoWarning",
    "DecodeError",
    "EmptyVideoError",
    "FrameChunk",
    "NoVideoStreamError",
    "NotAVideoError",
    "TruncatedVideoWarning",
    "UnreadableVideoError",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoWarning",
    "iter_chunks",
    "probe",
    "sample_plan",
]

# Part of the extractor key: bump whenever decoded pixels, indices or times could change.
# "2": `auto` decodes with OpenCV, no longer decord; pixels are identical except on MJPEG
# (full-range YUV: decord and OpenCV convert it to RGB up to 2 levels apart). Not bumped when
# cut or damaged files began to keep fewer frames: every frame's pixels, index and time are
# unchanged, and a bump would make every trained model refuse to label (see labeling.py).
DECODER_VERSION = "2"
BACKENDS = ("auto", "decord", "opencv")
# Containers that estimate their frame count from a duration that may include audio: only a
# large shortfall there means the file was cut.
_ESTIMATE_TOLERANCE = 0.1
# Codecs whose frames never reference other frames: cut or damaged data harms only its own frame.
_INTRA_ONLY_CODECS = {"mjpeg", "ffv1", "rawvideo", "png", "huffyuv", "utvideo", "prores", "dnxhd"}
# The most frames a decoder may hold back to reorder them (the H.264/HEVC limit).
_MAX_REORDER = 16


@dataclass(frozen=True)
class VideoInfo:
    """One video stream as decoded: sizes are after rotation, times from real timestamps."""

    path: str
    frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    rotation: int  # degrees clockwise applied to make the picture upright
    codec: str
    backend: str  # the backend that decodes it ("decord" or "opencv")
    container: str = "unknown"
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoInfo:
        """The info :meth:`to_dict` gave (as a feature store header keeps it); keys it does not
        know are ignored, and descriptive fields an older header lacks get neutral values."""
        names = {f.name for f in dataclasses.fields(cls)}
        neutral = {"path": "", "rotation": 0, "codec": "unknown", "backend": "unknown"}
        return cls(**{**neutral, **{k: v for k, v in data.items() if k in names}})


class FrameChunk(NamedTuple):
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, upright
    indices: np.ndarray  # (N,) int64 native frame indices, increasing
    times_s: np.ndarray  # (N,) float64 presentation times, increasing


class _Scan(NamedTuple):
    info: VideoInfo
    times_s: np.ndarray  # (frames,) presentation time of every native frame
    notes: list[tuple[type[VideoWarning], str]]
    clock: FrameClock | None  # to check the decoder's frames by; None when times are made up


class _Times(NamedTuple):
    times_s: np.ndarray  # sorted, relative to the first frame
    origin_s: float | None  # the first frame's container time; None when times are made up
    notes: list[tuple[type[VideoWarning], str]]


def probe(path: str | Path, backend: str = "auto") -> VideoInfo:
    """Read a video's stream facts; `backend` only decides `VideoInfo.backend`.

    Cost: a demux-only pass over the file's packets (milliseconds, nothing decoded), plus
    decord's own index pass under `decord`. Issues the same warnings as decoding would.
    """
    scan = _scan(Path(path), backend)
    for category, message in scan.notes:
        warnings.warn(message, category, stacklevel=2)
    return scan.info


def iter_chunks(
    path: str | Path,
    sample_fps: float | None = None,
    size: int | None = None,
    chunk_frames: int = 64,
    backend: str = "auto",
    max_frames: int | None = None,
) -> ChunkStream:
    """Decode `path` into `FrameChunk`s of at most `chunk_frames` frames (see module doc).

    `sample_fps` None keeps every frame, else the frame shown at each time 0, 1/f, 2/f, ...;
    `max_frames` thins that plan uniformly; `size` is the short side after resizing (None =
    native). Probing happens here (errors raise now); decoding happens while iterating.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames!r}")
    return ChunkStream(Path(path), sample_fps, size, chunk_frames, backend, max_frames)


class ChunkStream:
    """An iterable of `FrameChunk`; `.info`, `.backend`, `.plan` known before iterating,
    `.warnings` filled as decoding proceeds. Iterate once per stream object."""

    def __init__(
        self,
        path: Path,
        sample_fps: float | None,
        size: int | None,
        chunk_frames: int,
        backend: str,
        max_frames: int | None,
    ) -> None:
        scan = _scan(path, backend)
        self.path = path
        self.info = scan.info
        self.backend = scan.info.backend
        self.requested_backend = backend
        self.times_s = scan.times_s
        self._clock = scan.clock
        self._decoder: OpenCVFrames | None = None
        self.plan = sample_plan(scan.times_s, sample_fps, max_frames, scan.info.duration_s)
        self.out_hw = resized_shape(self.info.height, self.info.width, size)
        self.chunk_frames = chunk_frames
        self.warnings: list[str] = []
        for category, message in scan.notes:
            self._warn(category, message)

    def __iter__(self) -> Iterator[FrameChunk]:
        yielded, last = 0, -1
        pending: list[tuple[int, np.ndarray]] = []  # at most one chunk of resized frames
        for index, frame in self._decoded_frames(self.plan):
            pending.append((index, resize_frame(frame, self.out_hw)))
            yielded, last = yielded + 1, index
            if len(pending) == self.chunk_frames:
                yield self._chunk(pending)
                pending = []
        if pending:
            yield self._chunk(pending)
        self._check_complete(yielded, last)

    def _chunk(self, pending: list[tuple[int, np.ndarray]]) -> FrameChunk:
        indices = np.fromiter((index for index, _ in pending), np.int64, len(pending))
        frames = np.stack([frame for _, frame in pending])  # (N, H, W, 3)
        return FrameChunk(frames, indices, self.times_s[indices].astype(np.float64))

    def _decoded_frames(self, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        if self.backend != "decord":
            yield from self._opencv_frames(wanted)
            return
        try:  # only when asked for by name: `auto` is OpenCV (see _choose_backend)
            yield from _checked(self._decord_frames(wanted), self.info)
        except Exception as exc:  # DECORDError, RuntimeError, _Untrusted: all mean distrust
            raise DecodeError(self.path, f"decord failed: {_first_line(exc)}") from exc

    def _decord_frames(self, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        decoder = DecordFrames(self.path)
        try:
            yield from decoder.frames(wanted)
        finally:
            decoder.close()

    def _opencv_frames(self, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        decoder = self._decoder = OpenCVFrames(
            self.path, self.info.rotation, self._clock, frames=self.info.frames
        )
        try:
            yield from decoder.frames(wanted)
        finally:
            decoder.close()

    def _check_complete(self, yielded: int, last: int) -> None:
        decoder = self._decoder
        lost = decoder.lost if decoder is not None else []
        if lost:
            ranges = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in lost[:10])
            more = f" and {len(lost) - 10} more runs" if len(lost) > 10 else ""
            self._warn(
                DamagedVideoWarning,
                f"{self.path}: damaged data: frames {ranges}{more} could not be decoded and are "
                "left out; every other frame keeps its own index",
            )
        if yielded == 0 and self.plan.size:
            raise DecodeError(self.path, "the decoder produced no frame")
        if decoder is not None and decoder.out_of_sync:
            self._warn(
                DamagedVideoWarning,
                f"{self.path}: damaged data after frame {last}: the decoder's frames no longer "
                f"match the file's timestamps, so decoding stopped; the {yielded} frames before "
                "were returned",
            )
        elif yielded < self.plan.size - _lost_wanted(self.plan, lost):
            self._warn(
                TruncatedVideoWarning,
                f"{self.path}: decoding stopped after frame {last} of {self.info.frames} "
                f"(damaged or cut file); the {yielded} frames before the damage were returned",
            )

    def _warn(self, category: type[VideoWarning], message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, category, stacklevel=3)


class _Untrusted(Exception):
    """decord's output disagrees with the container: it must not be used for this file."""


def _checked(
    frames: Iterator[tuple[int, np.ndarray]], info: VideoInfo
) -> Iterator[tuple[int, np.ndarray]]:
    for index, frame in frames:
        if frame.shape[:2] != (info.height, info.width):
            raise _Untrusted(
                f"decord decodes {frame.shape[1]}x{frame.shape[0]}, "
                f"the stream is {info.width}x{info.height}"
            )
        yield index, frame


# --- probing ---------------------------------------------------------------------------------


def _scan(path: Path, backend: str) -> _Scan:
    if backend not in BACKENDS:
        raise UserError(f"unknown decode backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    check_path(path)
    capture = open_capture(path)
    if capture is None:
        raise unopenable_error(path)
    try:
        header = read_header(capture)
    finally:
        capture.release()
    if header.width <= 0 or header.height <= 0:
        raise DecodeError(path, "the video stream has no frame size (unreadable stream header)")
    kind = container_kind(read_head(path)[:64])
    scanned = _frame_times(path, header, kind)
    info = _info(path, header, kind, scanned.times_s, truncated=bool(scanned.notes))
    chosen = _choose_backend(path, backend, info)
    clock = None
    if scanned.origin_s is not None and _timestamps_checkable(kind, header.codec):
        clock = FrameClock(scanned.times_s, scanned.origin_s, _tolerance(scanned.times_s))
    return _Scan(dataclasses.replace(info, backend=chosen), scanned.times_s, scanned.notes, clock)


def _frame_times(path: Path, header: StreamHeader, kind: str) -> _Times:
    """Every frame's time (s, from 0), and a truncation note when the file was cut short.

    A cut file keeps only the frames that cannot depend on the cut data and whose index is
    certain: the last packet on disk may be cut in the middle, frames decoded after it are
    lost, and a decoder may present a frame up to `reorder` places after it was stored, so the
    first `frames on disk - 1 - reorder` frames by time are kept.
    """
    in_file_order = packet_times(path, header)
    raw = in_file_order if in_file_order is not None else decoded_times(path)
    if raw.size == 0:
        if cut_short(path, kind):
            raise EmptyVideoError(path, "file is cut short before its first complete frame")
        raise EmptyVideoError(path, "the video stream holds no frames")
    times_s, origin_s = _valid_times(np.sort(raw), header.fps)
    reorder = _reorder_depth(in_file_order, kind, header.codec)
    verdict = _damage(path, kind, header.frame_count, times_s, origin_s is not None)
    if verdict is None:
        return _Times(times_s, origin_s, [])
    reason, gap = verdict
    if gap is not None:  # frames are missing in the middle: the numbering after them is unsure
        kept = max(1, gap - reorder)
        note = (
            f"{path}: damaged file ({reason}; frames are missing after frame {gap - 1}); the "
            f"first {kept} frames are decoded, as frames after the damage cannot be numbered "
            "for sure"
        )
        return _Times(times_s[:kept], origin_s, [(DamagedVideoWarning, note)])
    kept = max(1, times_s.size - 1 - reorder)
    note = (
        f"{path}: file is cut short ({reason}); the first {kept} of the {times_s.size} frames on "
        "disk are decoded (the rest may depend on the missing data)"
    )
    return _Times(times_s[:kept], origin_s, [(TruncatedVideoWarning, note)])


def _damage(
    path: Path, kind: str, header_count: int, times_s: np.ndarray, real_times: bool
) -> tuple[str, int | None] | None:
    """(why the file is cut or damaged, rank of the first frame after missing ones or None for
    a cut at the end), or None for a whole file.

    Evidence: the frame count of containers that store it exactly (MP4, AVI); the container's
    size fields (`cut_short`); for Matroska, whose count is only duration x fps (and the
    duration may be the audio's), a count well short of that estimate counts only on a
    constant-frame-rate stream, where it also tells where frames are missing: at a jump in the
    timestamps. Variable frame rate streams are never judged by their timestamps.
    """
    on_disk = times_s.size
    regular = real_times and _constant_rate(times_s)
    whole = cut_short(path, kind)
    if kind in EXACT_COUNT_CONTAINERS and 0 < on_disk < header_count:
        reason = f"{on_disk} of {header_count} frames are on disk"
        return reason, _first_gap(times_s) if regular else None
    if whole:
        return "the container declares more data than the file holds", None
    if kind in EXACT_COUNT_CONTAINERS or not regular or header_count <= 0:
        return None
    if on_disk >= header_count * (1 - _ESTIMATE_TOLERANCE) - 2:
        return None
    reason = f"{on_disk} of about {header_count} frames (duration x fps) are on disk"
    gap = _first_gap(times_s)
    if gap is not None:
        return reason, gap
    # No frame is missing between the first and the last: the end is missing, unless the
    # container says it is whole (then its duration was another stream's, e.g. longer audio).
    return (reason, None) if whole is None else None


def _constant_rate(times_s: np.ndarray) -> bool:
    """Are at least 95% of the frame intervals one value (within 10%)? A damaged constant-rate
    stream has a few jumps over missing frames; a variable-rate one has many uneven intervals."""
    if times_s.size < 3:
        return False
    steps = np.diff(times_s)
    typical = float(np.median(steps))
    return bool(np.mean(np.abs(steps - typical) <= 0.1 * typical) >= 0.95)


def _first_gap(times_s: np.ndarray) -> int | None:
    """Rank of the first frame shown more than 1.5 frame intervals after the one before it
    (the typical interval being the median): where a file known to miss frames misses them."""
    if times_s.size < 3:
        return None
    steps = np.diff(times_s)
    gaps = np.flatnonzero(steps > 1.5 * np.median(steps))
    return int(gaps[0]) + 1 if gaps.size else None


def _reorder_depth(in_file_order: np.ndarray | None, kind: str, codec: str) -> int:
    """How many places a frame may be presented after the order it is stored in."""
    if codec in _INTRA_ONLY_CODECS:
        return 0
    if in_file_order is None or kind == "avi":  # no presentation times in file order to tell
        return _MAX_REORDER
    ranks = np.argsort(np.argsort(in_file_order, kind="stable"), kind="stable")
    return int(max(0, (np.arange(ranks.size) - ranks).max()))


def _timestamps_checkable(kind: str, codec: str) -> bool:
    """Does OpenCV report a decoded frame's time as the packet scan saw it? Yes for MP4/MOV
    and Matroska, and for intra-only codecs; AVI stores decode times only, which B-frame
    codecs shift (checked on every shared test file)."""
    return kind in ("mp4", "matroska") or codec in _INTRA_ONLY_CODECS


def _tolerance(times_s: np.ndarray) -> float:
    """How far a decoded frame's time may be from its packet's: a quarter frame, >= 1.5 ms
    (Matroska rounds times to whole milliseconds)."""
    if times_s.size < 2:
        return 0.0015
    return max(0.0015, 0.25 * float(np.median(np.diff(times_s))))


def _valid_times(times_s: np.ndarray, fps: float) -> tuple[np.ndarray, float | None]:
    """Times relative to the first frame, and that frame's container time; index / fps (and
    no origin) where the container's times are unusable."""
    relative = times_s - times_s[0]
    if np.all(np.isfinite(relative)) and np.all(np.diff(relative) > 0):
        return relative, float(times_s[0])
    # Duplicate or missing timestamps (broken muxers): frames are then evenly spaced.
    return np.arange(times_s.size, dtype=np.float64) / (fps if fps > 0 else 30.0), None


def _info(
    path: Path, header: StreamHeader, kind: str, times_s: np.ndarray, truncated: bool
) -> VideoInfo:
    frames = int(times_s.size)
    fps = header.fps if header.fps > 0 else _measured_fps(times_s)
    swap = header.rotation in (90, 270)
    return VideoInfo(
        path=str(path),
        frames=frames,
        fps=round(fps, 6),
        duration_s=round(float(times_s[-1]) + (1.0 / fps if fps > 0 else 0.0), 6),
        width=header.height if swap else header.width,
        height=header.width if swap else header.height,
        rotation=header.rotation,
        codec=header.codec,
        backend="opencv",
        container=kind,
        truncated=truncated,
    )


def _measured_fps(times_s: np.ndarray) -> float:
    if times_s.size < 2 or times_s[-1] <= 0:
        return 0.0
    return float((times_s.size - 1) / times_s[-1])


def _choose_backend(path: Path, requested: str, info: VideoInfo) -> str:
    """The backend that decodes `path`: "opencv", or "decord" when asked for and trusted.

    `auto` is OpenCV: decord's peak memory grows with the video's length (see the module doc:
    1.6x from a 1- to a 10-minute 360p file, several times that with some access patterns)
    while OpenCV's stays one chunk, and OpenCV's grab()/retrieve() is also faster for sampled
    decoding. So `auto` never switches backend mid-file; `decord`, asked for
    by name, raises a `DecodeError` for a file it cannot be trusted with instead of switching.
    """
    if requested in ("auto", "opencv"):
        return "opencv"
    reason = _decord_distrust(path, info)
    if reason is not None:
        raise DecodeError(path, f"decord cannot be trusted for this file: {reason}")
    return "decord"


def _decord_distrust(path: Path, info: VideoInfo) -> str | None:
    """Why decord must not decode this file, or None when it agrees with the container."""
    if not decord_available():
        return "decord is not installed"
    if info.truncated:
        return "the file is cut short and decord can hang past the damage"
    if info.container == "avi":
        # Seen here: decord's skip_frames on B-frame H.264 in AVI gave different pixels from
        # run to run, and its AVI timestamps are garbage.
        return "decord is not frame-exact on AVI files (frames it skips come out wrong)"
    try:
        decoder = DecordFrames(path)
    except Exception as exc:  # DECORDError and RuntimeError share no narrower base
        return f"decord cannot open it ({_first_line(exc)})"
    try:
        if len(decoder) != info.frames:
            return (
                f"decord lists {len(decoder)} frames where the container has {info.frames} "
                "(it picks another video stream or mis-indexes the file)"
            )
    finally:
        decoder.close()
    return None


def _lost_wanted(plan: np.ndarray, lost: list[tuple[int, int]]) -> int:
    """How many planned frames fall in the runs the decoder lost."""
    return sum(
        int(np.searchsorted(plan, last, side="right") - np.searchsorted(plan, first))
        for first, last in lost
    )


def _first_line(reason: object) -> str:
    text = str(reason).strip().splitlines()
    return text[0][:300] if text else type(reason).__name__
