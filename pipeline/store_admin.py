"""Inspect and clean a feature store: what `vidtag store ls|verify|gc` do."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.store import FeatureStore, StoreCorruptError, read_entry


@dataclass
class ExtractorUsage:
    key: str
    spec: dict | None
    videos: int
    bytes: int


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    removed: int = 0


@dataclass
class GcReport:
    temp_files: int = 0
    corrupt: int = 0
    stale_hashes: int = 0
    extractors: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def usage(store: FeatureStore) -> list[ExtractorUsage]:
    rows = []
    for key in store.extractor_keys():
        entries = list(store.entries(key))
        rows.append(
            ExtractorUsage(key, store.read_spec(key), len(entries), sum(e.size for e in entries))
        )
    return rows


def verify(
    store: FeatureStore, fix: bool = False, on_entry: Callable[[], None] | None = None
) -> VerifyReport:
    report = VerifyReport()
    for entry in store.entries():
        report.checked += 1
        try:
            stored = read_entry(entry.path)
            if stored.header.get("video_key") != entry.video_key:
                raise StoreCorruptError(f"{entry.path}: header names another video")
        except StoreCorruptError as exc:
            report.corrupt.append((entry.path, str(exc)))
            if fix:
                entry.path.unlink(missing_ok=True)
                report.removed += 1
        if on_entry:
            on_entry()
    return report


def gc(
    store: FeatureStore,
    keep: list[str] | None = None,
    min_temp_age_s: float = 3600.0,
    dry_run: bool = False,
) -> GcReport:
    """Remove leftover temp files, corrupt entries, hash-cache lines for vanished videos and,
    when ``keep`` is given, every extractor key not in it."""
    report = GcReport()
    for tmp in store.temp_files(older_than_s=min_temp_age_s):
        report.temp_files += 1
        report.bytes_freed += _remove(tmp, dry_run)
    for path, _ in verify(store).corrupt:
        report.corrupt += 1
        report.bytes_freed += _remove(path, dry_run)
    for cache in sorted((store.root / ".hashes").glob("*.json")):
        try:
            exists = Path(json.loads(cache.read_text())["path"]).exists()
        except (OSError, ValueError, KeyError):
            exists = False
        if not exists:
            report.stale_hashes += 1
            report.bytes_freed += _remove(cache, dry_run)
    for key in store.extractor_keys():
        if keep and key not in keep:
            report.extractors.append(key)
            report.bytes_freed += _remove(store.root / key, dry_run)
    return report


def _remove(path: Path, dry_run: bool) -> int:
    size = (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else (path.stat().st_size if path.exists() else 0)
    )
    if not dry_run:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return size
