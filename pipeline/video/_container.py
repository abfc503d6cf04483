"""Container sniffing from the file's first bytes.

OpenCV only says "could not open"; these checks turn that into the specific error a user can
act on (not a video, no video stream, no frames, truncated header), and tell which containers
store an exact frame count.
"""

from __future__ import annotations

import codecs
import re
import struct
from pathlib import Path

from pipeline.video.errors import (
    DecodeError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    UnreadableVideoError,
    VideoError,
    VideoNotFoundError,
)

_SNIFF_BYTES = 1 << 20
_ISO_TOP_ATOMS = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"uuid", b"pnot"}
_ISO_CONTAINER_ATOMS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# Matroska CodecID element (0x86), a one-byte size, then the codec id: V_ video, A_/S_ others.
_MKV_VIDEO_CODEC = re.compile(rb"\x86[\x81-\xff]V_")
_MKV_CLUSTER = b"\x1f\x43\xb6\x75"
_AUDIO_MAGIC = (b"ID3", b"fLaC", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")

# Containers whose header stores the exact number of video frames (sample table, AVI index):
# fewer frames on disk than that means the file was cut short.
EXACT_COUNT_CONTAINERS = {"mp4", "avi"}


def container_kind(head: bytes) -> str:
    """'mp4' (ISO BMFF / QuickTime), 'matroska', 'avi', 'wav', 'audio', 'text' or 'unknown'."""
    if len(head) >= 8 and head[4:8] in _ISO_TOP_ATOMS:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(_AUDIO_MAGIC):
        return "audio"
    if _looks_like_text(head[:4096]):
        return "text"
    return "unknown"


def cut_short(path: Path, kind: str) -> bool | None:
    """True when the container's own size fields say the file is longer than it is on disk,
    False when they say it is whole, None when they cannot tell.

    Walks only the top level: the RIFF chunks of an AVI (OpenDML files chain several), the
    atoms of an MP4/MOV, the Segment of a Matroska/WebM file (None for the unknown size of a
    live-written one). This catches a cut that the frame count cannot, such as an AVI cut inside
    its last frame or a Matroska file, whose header holds no frame count.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        if kind == "avi":
            return _chunks_overrun(handle, size, header=">4sI", little_endian=True)
        if kind == "mp4":
            return _chunks_overrun(handle, size, header=">I4s", little_endian=False)
        if kind == "matroska":
            return _matroska_overrun(handle, size)
    return None


def _chunks_overrun(handle, file_size: int, header: str, little_endian: bool) -> bool | None:
    """Does any top-level RIFF chunk / ISO atom end past the end of the file? None: unsure."""
    pos = 0
    while pos + 8 <= file_size:
        handle.seek(pos)
        raw = handle.read(16)
        if little_endian:  # RIFF: fourcc, little-endian payload size, padded to even
            chunk = 8 + struct.unpack("<I", raw[4:8])[0]
            chunk += chunk & 1
        else:  # ISO BMFF: big-endian size including the header; 1 = 64-bit size; 0 = to EOF
            chunk = struct.unpack(">I", raw[:4])[0]
            if chunk == 1 and len(raw) >= 16:
                chunk = struct.unpack(">Q", raw[8:16])[0]
            elif chunk == 0:
                return False
            if chunk < 8:
                return None  # not a size we can trust: leave it to the frame count
        if pos + chunk > file_size:
            return True
        pos += chunk
    return False


def _matroska_overrun(handle, file_size: int) -> bool | None:
    """Does the Segment element claim more bytes than the file holds? None: it cannot tell."""
    pos = 0
    for expected_id in (b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"):  # EBML header, Segment
        handle.seek(pos)
        raw = handle.read(12)
        if not raw.startswith(expected_id):
            return None
        size, width, unknown = _ebml_size(raw[4:])
        if width == 0:
            return None
        data_start = pos + 4 + width
        if expected_id == b"\x18\x53\x80\x67":
            return None if unknown else data_start + size > file_size
        pos = data_start + size
    return None


def _ebml_size(raw: bytes) -> tuple[int, int, bool]:
    """(value, width, unknown) of an EBML variable-length size; width 0 when unreadable."""
    if not raw or raw[0] == 0:
        return 0, 0, False
    width = 9 - raw[0].bit_length()
    if len(raw) < width:
        return 0, 0, False
    value = raw[0] & (0xFF >> width)
    for byte in raw[1:width]:
        value = (value << 8) | byte
    return value, width, value == (1 << (7 * width)) - 1


def check_path(path: Path) -> None:
    """Raise the error for a path that cannot be a readable video file at all."""
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if path.is_dir():
        raise NotAVideoError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise NotAVideoError(path, "file is empty (0 bytes)")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise UnreadableVideoError(path, f"cannot be read: {exc.strerror or exc}") from exc


def read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(_SNIFF_BYTES)


def unopenable_error(path: Path) -> VideoError:
    """The most specific error for a file the decoder refused to open."""
    head = read_head(path)
    kind = container_kind(head)
    if kind == "mp4":
        return _mp4_error(path)
    if kind == "matroska":
        return _matroska_error(path, head)
    if kind == "avi":
        return DecodeError(
            path, "AVI file whose video stream cannot be opened (codec unsupported?)"
        )
    if kind in ("wav", "audio"):
        return NoVideoStreamError(path, "audio-only file: no video stream")
    if kind == "text":
        return NotAVideoError(path, "looks like a text file, not a video")
    return NotAVideoError(path, "unrecognised format or unreadable header")


def _mp4_error(path: Path) -> VideoError:
    with path.open("rb") as handle:
        data = handle.read()
    atoms = dict(_iter_atoms(data, 0, len(data)))
    if b"moov" not in atoms:
        return NotAVideoError(
            path, "MP4/MOV header ('moov' atom) missing: the file was cut short or never finalised"
        )
    handlers = _track_handlers(data, atoms[b"moov"])
    if b"vide" not in handlers:
        return NoVideoStreamError(path, "MP4/MOV file without a video track")
    if handlers[b"vide"] == 0:
        return EmptyVideoError(path, "the video track holds no frames")
    return DecodeError(path, "MP4/MOV video track cannot be opened (codec unsupported?)")


def _matroska_error(path: Path, head: bytes) -> VideoError:
    if not _MKV_VIDEO_CODEC.search(head):
        return NoVideoStreamError(path, "Matroska/WebM file without a video track")
    if _MKV_CLUSTER not in head:
        return EmptyVideoError(path, "the video track holds no frames")
    return DecodeError(path, "Matroska/WebM video track cannot be opened (codec unsupported?)")


def _iter_atoms(data: bytes, start: int, end: int):
    """(type, (payload_start, payload_end)) for each atom in data[start:end]; stops at damage."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, (pos + header, pos + size)
        pos += size


def _track_handlers(data: bytes, moov: tuple[int, int]) -> dict[bytes, int]:
    """Handler type ('vide', 'soun', ...) of each track -> its sample count (stsz)."""
    handlers: dict[bytes, int] = {}
    for kind, (start, end) in _iter_atoms(data, *moov):
        if kind == b"trak":
            found = _find_in_track(data, start, end)
            if found is not None:
                handler, samples = found
                handlers[handler] = handlers.get(handler, 0) + samples
    return handlers


def _find_in_track(data: bytes, start: int, end: int) -> tuple[bytes, int] | None:
    handler, samples = None, 0
    stack = [(start, end)]
    while stack:
        for kind, (lo, hi) in _iter_atoms(data, *stack.pop()):
            if kind in _ISO_CONTAINER_ATOMS:
                stack.append((lo, hi))
            elif kind == b"hdlr" and hi - lo >= 12:
                handler = data[lo + 8 : lo + 12]
            elif kind == b"stsz" and hi - lo >= 12:
                samples = struct.unpack(">I", data[lo + 8 : lo + 12])[0]
    return None if handler is None else (handler, samples)


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        # Incremental, so that a character cut at the end of the sample does not count.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True
