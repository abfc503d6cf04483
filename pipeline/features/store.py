"""Feature store: one safetensors file per (video content hash, extractor key).

Layout::

    <root>/<extractor_key>/spec.json              the extractor spec, for `vidtag store ls`
    <root>/<extractor_key>/<video_key>.safetensors
    <root>/.hashes/<sha1 of the absolute path>.json   (size, mtime, ctime, inode) -> hash cache
    <root>/.specs/<sha256/32 of settings+machine>.json  a config's resolved extractor spec

Each entry holds ``features`` (float16, (T, D)), ``indices`` (int64 native frame indices) and
``times_s`` (float64 presentation times), plus a JSON header in the safetensors metadata (spec,
VideoInfo, the video path seen, created-at, vidtag version, a checksum of the arrays). Every
write is a temp file in the same folder followed by ``os.replace``, so readers never see a
partial file; a file that fails to parse or whose checksum differs is reported corrupt.

Only folders named like an extractor key (20 lowercase hex digits, see ``ExtractorSpec.key``)
holding a ``spec.json`` or an entry count as extractors: ``.compile_cache``, ``.hashes``,
``.specs`` and anything else in the folder are never listed, and so never removed by
``vidtag store gc``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.fileio import atomic_write_bytes, atomic_write_text, file_sha256
from pipeline.video import check_path

if TYPE_CHECKING:
    from pipeline.video.decode import VideoInfo

SUFFIX = ".safetensors"
HEADER_KEY = "vidtag"
SPEC_FILE = "spec.json"
# ExtractorSpec.key(): the first 20 hex digits of a sha256 (kept here: store must not import torch)
EXTRACTOR_KEY_PATTERN = re.compile(r"[0-9a-f]{20}")


class StoreCorruptError(Exception):
    """A store file exists but cannot be trusted (partial, damaged, or checksum mismatch)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # picklable (Dask workers send errors back)
        return type(self), (self.path, self.reason)


def is_extractor_key(name: str) -> bool:
    return EXTRACTOR_KEY_PATTERN.fullmatch(name) is not None


def is_extractor_folder(path: Path) -> bool:
    """A folder the store wrote for one extractor: key-shaped name, holding its spec or entries."""
    if path.is_symlink() or not path.is_dir() or not is_extractor_key(path.name):
        return False
    return (path / SPEC_FILE).is_file() or any(path.glob(f"*{SUFFIX}"))


@dataclass
class StoredFeatures:
    features: np.ndarray  # (T, D) float16
    indices: np.ndarray  # (T,) int64 native frame indices
    times_s: np.ndarray  # (T,) float64 presentation times
    header: dict[str, Any]
    frame_times_s: np.ndarray | None = None  # (frames,) every native frame's time, if stored

    @property
    def info(self) -> VideoInfo | None:
        """The header's ``info`` as the VideoInfo written (None when the header has none)."""
        from pipeline.video.decode import VideoInfo  # not at import: it brings OpenCV

        raw = self.header.get("info")
        return None if raw is None else VideoInfo.from_dict(raw)


@dataclass
class StoreEntry:
    extractor_key: str
    video_key: str
    path: Path
    size: int


def _header_checksum(header: dict[str, Any]) -> str:
    """sha256 of the header's canonical JSON, less the checksums themselves."""
    body = {k: v for k, v in header.items() if k not in ("checksum", "header_checksum")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _array_checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in ("features", "indices", "times_s", "frame_times_s"):  # a fixed order
        if name in arrays:
            digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


class FeatureStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- video keys -----------------------------------------------------------------------

    def video_key(self, video: str | Path) -> str:
        """The sha256 of the file's content; cached by (path, size, mtime, ctime, inode) so
        re-runs are quick. ctime is in the stamp because a copy that keeps size and mtime
        (``cp -p``, ``rsync -t``) still changes it, and it cannot be set back.

        Raises VideoNotFoundError / NotAVideoError (one-line user errors) for a missing path, a
        directory or an empty file, before anything is hashed.
        """
        video = Path(video).resolve()
        check_path(video)
        stat = video.stat()
        cache = self.root / ".hashes" / (hashlib.sha1(str(video).encode()).hexdigest() + ".json")
        stamp = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino,
        }
        try:
            cached = json.loads(cache.read_text())
            if cached.get("stamp") == stamp:
                return cached["sha256"]
        except (OSError, ValueError, KeyError):
            pass
        sha = file_sha256(video)
        try:
            atomic_write_text(
                cache, json.dumps({"path": str(video), "stamp": stamp, "sha256": sha})
            )
        except OSError:
            pass  # a read-only store still works, it just hashes again next time
        return sha

    # --- entries --------------------------------------------------------------------------

    def path_for(self, video_key: str, extractor_key: str) -> Path:
        return self.root / extractor_key / f"{video_key}{SUFFIX}"

    def put(
        self,
        video_key: str,
        extractor_key: str,
        features: np.ndarray,
        indices: np.ndarray,
        times_s: np.ndarray,
        header: dict[str, Any],
        frame_times_s: np.ndarray | None = None,
        info: VideoInfo | None = None,
    ) -> StoredFeatures:
        """Write one entry atomically; returns it as a reader would see it.

        ``info`` goes into the JSON header as ``info``, right after ``spec`` (where it has always
        been); the returned entry, like a read one, carries it typed as ``entry.info``.
        """
        from safetensors.numpy import save

        arrays = {
            "features": np.ascontiguousarray(features, dtype=np.float16),
            "indices": np.ascontiguousarray(indices, dtype=np.int64),
            "times_s": np.ascontiguousarray(times_s, dtype=np.float64),
        }
        if frame_times_s is not None:
            arrays["frame_times_s"] = np.ascontiguousarray(frame_times_s, dtype=np.float64)
        if not (len(arrays["features"]) == len(arrays["indices"]) == len(arrays["times_s"])):
            raise ValueError("features, indices and times_s must have the same length")
        full_header = {
            **_with_info(header, info),
            "video_key": video_key,
            "extractor_key": extractor_key,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "vidtag_version": _version(),
            "shape": list(arrays["features"].shape),
            "checksum": _array_checksum(arrays),
        }
        full_header["header_checksum"] = _header_checksum(full_header)
        data = save(arrays, metadata={HEADER_KEY: json.dumps(full_header)})
        atomic_write_bytes(self.path_for(video_key, extractor_key), data)
        return _entry(arrays, full_header)

    def get(self, video_key: str, extractor_key: str) -> StoredFeatures | None:
        """The stored features, or None when absent. Raises StoreCorruptError when damaged."""
        path = self.path_for(video_key, extractor_key)
        if not path.is_file():
            return None
        return read_entry(path)

    def has(self, video_key: str, extractor_key: str) -> bool:
        """Whether a whole, undamaged entry of this video and extractor is stored.

        Read and checked as :meth:`get` does (an entry is small next to what a task run costs),
        so a damaged or unreadable entry is not "stored": its video's task extracts it again or
        reports why it cannot.
        """
        try:
            entry = self.get(video_key, extractor_key)
        except (StoreCorruptError, OSError):
            return False
        named = (entry.header.get("video_key"), entry.header.get("extractor_key")) if entry else ()
        return named == (video_key, extractor_key)

    def get_or_discard(self, video_key: str, extractor_key: str) -> StoredFeatures | None:
        """Like :meth:`get`, but a corrupt file is deleted (so it gets recomputed) -> None."""
        try:
            return self.get(video_key, extractor_key)
        except StoreCorruptError:
            self.path_for(video_key, extractor_key).unlink(missing_ok=True)
            return None

    def write_spec(self, extractor_key: str, spec: dict[str, Any]) -> None:
        path = self.root / extractor_key / SPEC_FILE
        if not path.is_file():
            atomic_write_text(path, json.dumps(spec, indent=2, sort_keys=True))

    def read_spec(self, extractor_key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / extractor_key / SPEC_FILE).read_text())
        except (OSError, ValueError):
            return None

    def exists(self) -> bool:
        return self.root.is_dir()

    def extractor_keys(self) -> list[str]:
        """The extractor folders (see :func:`is_extractor_folder`); nothing else is ever listed."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if is_extractor_folder(p))

    def entries(self, extractor_key: str | None = None) -> Iterator[StoreEntry]:
        keys = [extractor_key] if extractor_key else self.extractor_keys()
        for key in keys:
            folder = self.root / key
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                yield StoreEntry(key, path.name[: -len(SUFFIX)], path, path.stat().st_size)

    def temp_files(self, older_than_s: float = 0.0) -> list[Path]:
        """Leftover temp files of interrupted writes (older than ``older_than_s``), only in the
        folders the store writes to: the extractor folders and the hash cache."""
        folders = [self.root / key for key in self.extractor_keys()] + [self.root / ".hashes"]
        now = time.time()
        return [
            p
            for folder in folders
            if folder.is_dir() and not folder.is_symlink()
            for p in sorted(folder.glob(".*.tmp"))
            if p.is_file() and now - p.stat().st_mtime >= older_than_s
        ]


def read_entry(path: Path) -> StoredFeatures:
    """One entry. Raises StoreCorruptError for a damaged file (bad header, truncated, checksum
    mismatch); an OSError while reading (permissions, I/O) propagates: the file may be fine."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = path.read_bytes()
    try:
        arrays = load(data)
        header = json.loads(_metadata(data)[HEADER_KEY])
        entry = _entry(arrays, header)
        checksum = header.get("checksum")
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreCorruptError(path, f"unreadable store file ({exc})") from None
    if _array_checksum(arrays) != checksum:
        raise StoreCorruptError(path, "checksum mismatch (file damaged)")
    # Files written before the header had its own checksum carry none: they stay valid.
    if "header_checksum" in header and _header_checksum(header) != header["header_checksum"]:
        raise StoreCorruptError(path, "header checksum mismatch (file damaged)")
    return entry


def _with_info(header: dict[str, Any], info: VideoInfo | None) -> dict[str, Any]:
    """``header`` with ``info`` as JSON placed after ``spec``: the key order files have had."""
    if info is None:
        return dict(header)
    fields: dict[str, Any] = {}
    for name, value in header.items():
        fields[name] = value
        if name == "spec":
            fields["info"] = info.to_dict()
    fields.setdefault("info", info.to_dict())
    return fields


def _entry(arrays: dict[str, np.ndarray], header: dict[str, Any]) -> StoredFeatures:
    return StoredFeatures(
        arrays["features"], arrays["indices"], arrays["times_s"], header,
        arrays.get("frame_times_s"),
    )  # fmt: skip


def _metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then the JSON header.
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length])["__metadata__"]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vidtag")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+unknown"
