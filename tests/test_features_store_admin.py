"""What `vidtag store` runs: verify reports corrupt and unreadable entries, gc removes only
other extractors' folders, temp files and corrupt entries, and the store commands' exit codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.features.store import FeatureStore
from pipeline.features.store_admin import StoreAdminError, gc, verify
from tests.helpers_store import OTHER, X1, put_entry


def test_verify_and_gc(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    good = put_entry(store, "a" * 64)
    bad = put_entry(store, "b" * 64)
    put_entry(store, "c" * 64, extractor_key=OTHER)
    bad.write_bytes(bad.read_bytes()[:50])
    (tmp_path / X1 / ".leftover.safetensors.1.tmp").write_bytes(b"partial")
    report = verify(store)
    assert report.checked == 3 and [p for p, _ in report.corrupt] == [bad]
    dry = gc(store, keep=[X1], min_temp_age_s=0, dry_run=True)
    assert (dry.temp_files, dry.corrupt, dry.extractors) == (1, 1, [OTHER])
    assert bad.exists()
    gc(store, keep=[X1], min_temp_age_s=0)
    assert [e.path for e in store.entries()] == [good]
    assert store.temp_files() == []


def test_store_cli(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = put_entry(store)
    store.write_spec(X1, {"backbone": "resnet18", "weights": "none:seed0"})
    runner = CliRunner()
    listing = runner.invoke(app, ["store", "ls", "--store", str(tmp_path)])
    assert listing.exit_code == 0 and "resnet18" in listing.output
    assert runner.invoke(app, ["store", "verify", "--store", str(tmp_path)]).exit_code == 0
    path.write_bytes(b"junk")
    failed = runner.invoke(app, ["store", "verify", "--store", str(tmp_path)])
    assert failed.exit_code == 1 and "corrupt" in failed.output
    fixed = runner.invoke(app, ["store", "verify", "--store", str(tmp_path), "--fix"])
    assert fixed.exit_code == 0 and not path.exists()


def _project_like_store(root: Path) -> dict[str, Path]:
    """A store beside things that are not extractors: gc must leave every one of them."""
    kept = {
        "compile_cache": root / ".compile_cache" / "fxgraph" / "cached.bin",
        "git": root / ".git" / "HEAD",
        "src": root / "src" / "main.py",
        "src_tmp": root / "src" / ".main.py.123.tmp",
        "bare_key_folder": root / "abcdefabcdefabcdef00" / "notes.txt",
    }
    for path in kept.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("keep me")
    os.utime(kept["src_tmp"], (0, 0))
    return kept


def test_gc_keep_removes_only_other_extractor_folders(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    good = put_entry(store, "a" * 64)
    other = put_entry(store, "b" * 64, extractor_key=OTHER)
    kept = _project_like_store(tmp_path)
    assert store.extractor_keys() == [X1, OTHER]
    report = gc(store, keep=[X1], min_temp_age_s=0)
    assert report.extractors == [OTHER] and report.temp_files == 0
    assert good.exists() and not other.exists()
    assert all(path.exists() for path in kept.values())


@pytest.mark.parametrize("keep", [X1[:6], X1[:12] + "…", X1[:8] + "...", X1])
def test_gc_keep_accepts_a_unique_prefix(tmp_path: Path, keep: str) -> None:
    store = FeatureStore(tmp_path)
    good = put_entry(store, "a" * 64)
    other = put_entry(store, "b" * 64, extractor_key=OTHER)
    (tmp_path / ".compile_cache").mkdir()
    assert gc(store, keep=[keep]).extractors == [OTHER]
    assert good.exists() and not other.exists() and (tmp_path / ".compile_cache").is_dir()


@pytest.mark.parametrize(
    ("keep", "message"),
    [("0123456789", "ambiguous"), ("ffff", "matches no extractor key"), ("", "matches no")],
)
def test_gc_keep_unknown_or_ambiguous_removes_nothing(tmp_path: Path, keep, message) -> None:
    store = FeatureStore(tmp_path)
    entries = [
        put_entry(store, "a" * 64),
        put_entry(store, "b" * 64, extractor_key=X1[:10] + "f" * 10),
    ]
    temp = tmp_path / X1 / ".leftover.safetensors.1.tmp"
    temp.write_bytes(b"partial")
    with pytest.raises(StoreAdminError, match=message):
        gc(store, keep=[keep], min_temp_age_s=0)
    assert temp.exists() and all(path.exists() for path in entries)


def test_gc_keep_on_a_folder_without_extractors_deletes_nothing(tmp_path: Path) -> None:
    kept = _project_like_store(tmp_path)
    store = FeatureStore(tmp_path)
    with pytest.raises(StoreAdminError, match="keys: none"):
        gc(store, keep=["3f2a9c"], min_temp_age_s=0)
    report = gc(store, min_temp_age_s=0)
    assert (report.temp_files, report.extractors) == (0, [])
    assert all(path.exists() for path in kept.values())


def test_store_gc_cli_refuses_an_unknown_key_with_exit_2(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = put_entry(store)
    result = CliRunner().invoke(app, ["store", "gc", "--store", str(tmp_path), "--keep", "9999"])
    assert result.exit_code == 2 and "matches no extractor key" in result.output
    assert path.exists()
    result = CliRunner().invoke(app, ["store", "gc", "--store", str(tmp_path), "--keep", X1[:7]])
    assert result.exit_code == 0 and path.exists()


def test_an_unreadable_entry_is_reported_not_deleted(tmp_path: Path, monkeypatch) -> None:
    store = FeatureStore(tmp_path)
    path = put_entry(store)
    real_read = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PermissionError):
        store.get_or_discard("v" * 64, X1)
    report = verify(store, fix=True)
    assert report.corrupt == [] and [p for p, _ in report.unreadable] == [path]
    assert gc(store).corrupt == 0 and path.exists()


# --- the store commands on a missing store ----------------------------------------------------


@pytest.mark.parametrize("command", ["ls", "verify", "gc"])
def test_store_commands_on_a_missing_store_exit_2(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no_store"
    result = CliRunner().invoke(app, ["store", command, "--store", str(missing)])
    assert result.exit_code == 2, result.output
    assert "no feature store at" in result.output and not missing.exists()


def test_store_verify_names_each_corrupt_file_once(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = put_entry(store)
    path.write_bytes(b"junk")
    result = CliRunner().invoke(app, ["store", "verify", "--store", str(tmp_path)])
    output = result.output.replace("\n", "")
    assert result.exit_code == 1 and output.count(path.name) == 1, result.output
