"""Inspect and clean a feature store: what `vidtag store ls|verify|gc` do."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UserError
from pipeline.features.store import FeatureStore, StoreCorruptError, read_entry


class StoreAdminError(UserError):
    """A store command cannot run as asked (no store there, an unknown or ambiguous key)."""


@dataclass
class ExtractorUsage:
    key: str
    spec: dict | None
    videos: int
    bytes: int


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # I/O errors: kept
    removed: int = 0


@dataclass
class GcReport:
    temp_files: int = 0
    corrupt: int = 0
    stale_hashes: int = 0
    extractors: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def open_store(root: str | Path) -> FeatureStore:
    """The store at ``root``; a UserError when there is no folder there."""
    store = FeatureStore(root)
    if not store.exists():
        raise StoreAdminError(f"no feature store at {store.root}")
    return store


def resolve_keys(store: FeatureStore, wanted: list[str]) -> list[str]:
    """Full extractor keys for ``wanted`` (full keys or unique prefixes, as `store ls` shows).

    Raises StoreAdminError for a value that matches no key or several.
    """
    keys = store.extractor_keys()
    return [_resolve_key(store, keys, value) for value in wanted]


def _resolve_key(store: FeatureStore, keys: list[str], value: str) -> str:
    prefix = value.strip().rstrip(".…").lower()  # `store ls` may shorten a key to "3f2a9c…"
    if prefix in keys:
        return prefix
    matches = [key for key in keys if prefix and key.startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise StoreAdminError(
            f"--keep {value!r} is ambiguous in {store.root}: matches {', '.join(matches)}"
        )
    known = ", ".join(keys) or "none"
    raise StoreAdminError(
        f"--keep {value!r} matches no extractor key in {store.root} (keys: {known})"
    )


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
                raise StoreCorruptError(entry.path, "header names another video")
        except OSError as exc:  # permissions, I/O: the file may be fine, never deleted
            report.unreadable.append((entry.path, f"cannot read: {exc.strerror or exc}"))
        except StoreCorruptError as exc:
            report.corrupt.append((entry.path, exc.reason))
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
    when ``keep`` is given, every extractor key not in it.

    ``keep`` values may be unique key prefixes; an unknown or ambiguous one raises
    StoreAdminError before anything is removed. Only extractor folders are ever removed.
    """
    keep = resolve_keys(store, keep) if keep else None
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
        except (OSError, ValueError, KeyError, TypeError):
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
