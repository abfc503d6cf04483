"""Finding the videos of a job: a folder (recursive, by extension) or a manifest file."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import UserError


class DiscoveryError(UserError):
    """The videos of a job cannot be listed (missing folder, bad manifest line)."""


MANIFEST_SUFFIXES = (".txt", ".csv", ".list")


def discover_videos(source: str | Path, extensions: Iterable[str]) -> list[Path]:
    """Absolute, sorted, de-duplicated video paths under a folder or listed in a manifest.

    A manifest is a text file with one path per line (``#`` comments allowed) or a CSV with a
    ``video`` column; its paths are relative to its folder and may not escape it.
    """
    source = Path(source).expanduser()
    if source.is_dir():
        wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        found = (p for p in source.rglob("*") if p.suffix.lower() in wanted and p.is_file())
        return sorted({p.resolve() for p in found if not _hidden(p, source)})
    if source.is_file() and source.suffix.lower() in MANIFEST_SUFFIXES:
        return _read_manifest(source)
    if source.is_file():
        return [source.resolve()]
    raise DiscoveryError(f"videos folder or manifest not found: {source}")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_manifest(manifest: Path) -> list[Path]:
    root = manifest.parent.resolve()
    lines = manifest.read_text(encoding="utf-8").splitlines()
    if lines and "video" in [c.strip() for c in lines[0].split(",")]:
        rows = csv.DictReader(lines)
        entries = [(n + 2, row["video"]) for n, row in enumerate(rows)]
    else:
        entries = [(n + 1, line.split()[0]) for n, line in enumerate(lines) if _content(line)]
    videos = []
    for line_no, entry in entries:
        path = (root / entry).resolve()
        if not path.is_relative_to(root):
            raise DiscoveryError(f"{manifest}:{line_no}: path {entry!r} escapes {root}")
        videos.append(path)
    return sorted(set(videos))


def _content(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")
