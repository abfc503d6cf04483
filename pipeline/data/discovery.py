"""Finding the videos of a job: a folder (recursive, by extension) or a manifest file."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import UserError
from pipeline.fileio import read_user_text


class DiscoveryError(UserError):
    """The videos of a job cannot be listed (missing folder, bad manifest line)."""


MANIFEST_SUFFIXES = (".txt", ".csv", ".list")


def discover_videos(source: str | Path, extensions: Iterable[str]) -> list[Path]:
    """Absolute, sorted, de-duplicated video paths under a folder or listed in a manifest.

    A manifest is UTF-8 (a BOM is fine): a text file with one path per line (the whole line,
    spaces included; blank lines and lines starting with ``#`` skipped) or a CSV with a
    ``video`` column (an empty cell is an error); its paths are relative to its folder and may
    not escape it.
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
    lines = _manifest_lines(manifest)
    entries = _csv_entries(manifest, lines) if _is_csv(lines) else _text_entries(lines)
    videos = []
    for line_no, entry in entries:
        path = (root / entry).resolve()
        if not path.is_relative_to(root):
            raise DiscoveryError(f"{manifest}:{line_no}: path {entry!r} escapes {root}")
        videos.append(path)
    return sorted(set(videos))


def _manifest_lines(manifest: Path) -> list[str]:
    """The manifest's lines: UTF-8, a leading BOM (Excel's CSV export) dropped."""
    return read_user_text(manifest, "manifest", DiscoveryError).splitlines()


def _is_csv(lines: list[str]) -> bool:
    header = next(csv.reader(lines[:1]), [])
    return "video" in [column.strip() for column in header]


def _csv_entries(manifest: Path, lines: list[str]) -> list[tuple[int, str]]:
    rows = csv.DictReader(lines, skipinitialspace=True)
    rows.fieldnames = [name.strip() for name in rows.fieldnames or []]
    entries = []
    for row in rows:
        video = (row.get("video") or "").strip()
        if not video:
            raise DiscoveryError(f"{manifest}:{rows.line_num}: empty 'video' cell")
        entries.append((rows.line_num, video))
    return entries


def _text_entries(lines: list[str]) -> list[tuple[int, str]]:
    """One path per line, the whole line (spaces included); blank and ``#`` lines skipped."""
    return [(n + 1, line.strip()) for n, line in enumerate(lines) if _content(line)]


def _content(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")
