"""Synthetic videos for the video tests: every frame spells its own index in big blocks, so a
decoded frame can be checked against the index the decoder gives it, even after lossy coding."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from pipeline.video.decode import iter_chunks
from pipeline.video.plan import resized_shape

FPS = 30
FRAMES = 90
HEIGHT, WIDTH = 64, 96


def index_frame(index: int) -> np.ndarray:
    """RGB frame whose 10 big blocks spell `index` in binary (readable after lossy coding)."""
    frame = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    for bit in range(10):
        if (index >> bit) & 1:
            row, col = divmod(bit, 5)
            frame[row * 32 : row * 32 + 32, col * 19 : col * 19 + 19] = 220
    frame[:, 95:, 0] = index % 256
    return frame


def read_index(frame: np.ndarray) -> int:
    means = [frame[r * 32 + 8 : r * 32 + 24, c * 19 + 5 : c * 19 + 14].mean() for r in (0, 1)
             for c in range(5)]  # fmt: skip
    return sum(1 << bit for bit, mean in enumerate(means) if mean > 130)


def write_video(path: Path, fourcc: str, frames: int = FRAMES) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for index in range(frames):
        writer.write(cv2.cvtColor(index_frame(index), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def decode_all(path: Path, **kwargs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chunks = list(iter_chunks(path, **kwargs))
    return (
        np.concatenate([c.frames for c in chunks]),
        np.concatenate([c.indices for c in chunks]),
        np.concatenate([c.times_s for c in chunks]),
    )


def faststart(data: bytes) -> bytes:
    """Move an MP4's moov atom before mdat (patching chunk offsets), as `-movflags faststart`."""
    atoms, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        atoms.append((kind, data[pos : pos + size]))
        pos += size
    moov = bytearray(dict(atoms)[b"moov"])
    _shift_offsets(moov, 8, len(moov), len(moov))
    head = [a for k, a in atoms if k == b"ftyp"]
    rest = [a for k, a in atoms if k not in (b"ftyp", b"moov")]
    return b"".join([*head, bytes(moov), *rest])


def _shift_offsets(buf: bytearray, start: int, end: int, shift: int) -> None:
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", buf[pos : pos + 8])
        if kind in (b"trak", b"mdia", b"minf", b"stbl"):
            _shift_offsets(buf, pos + 8, pos + size, shift)
        elif kind == b"stco":
            count = struct.unpack(">I", buf[pos + 12 : pos + 16])[0]
            for at in range(pos + 16, pos + 16 + 4 * count, 4):
                buf[at : at + 4] = struct.pack(
                    ">I", struct.unpack(">I", buf[at : at + 4])[0] + shift
                )
        pos += size


def opencv_reference(path: Path, size: int = 48) -> list[np.ndarray]:
    """Plain sequential OpenCV decode (its own rotation), small RGB frames for comparisons."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            return frames
        height, width = resized_shape(*bgr.shape[:2], size)
        frames.append(cv2.resize(bgr[..., ::-1], (width, height), interpolation=cv2.INTER_AREA))


def decode_all_from(stream) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chunks = list(stream)
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))  # type: ignore


def write_index_videos(root: Path) -> dict[str, Path]:
    """The index videos the video tests decode: lossless, lossy, AVI, no frames, faststart."""
    built = {
        "lossless": write_video(root / "index.mkv", "FFV1"),
        "mp4v": write_video(root / "index.mp4", "mp4v"),
        "mjpeg_avi": write_video(root / "index.avi", "MJPG"),
        "no_frames_mkv": write_video(root / "none.mkv", "FFV1", frames=0),
        "no_frames_mp4": write_video(root / "none.mp4", "mp4v", frames=0),
    }
    built["faststart"] = root / "faststart.mp4"
    built["faststart"].write_bytes(faststart(built["mp4v"].read_bytes()))
    return built


def read_all_bgr(path: Path) -> np.ndarray:
    """Every frame of ``path`` as OpenCV decodes it (BGR, no resize): (N, H, W, 3) uint8."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames)
