from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.features.store import FeatureStore, StoreCorruptError
from pipeline.features.store_admin import StoreAdminError, gc, verify

X1 = "0123456789abcdef0123"  # shaped like ExtractorSpec.key(): 20 hex digits
OTHER = "fedcba9876543210fedc"


def _put(store: FeatureStore, video_key: str = "v" * 64, extractor_key: str = X1) -> Path:
    rng = np.random.default_rng(0)
    store.put(
        video_key,
        extractor_key,
        rng.normal(size=(5, 8)).astype(np.float32),
        np.arange(0, 25, 5),
        np.arange(5) / 5.0,
        {"spec": {"backbone": "resnet18"}},
        frame_times_s=np.arange(25) / 25.0,
    )
    return store.path_for(video_key, extractor_key)


def test_round_trip_keeps_arrays_and_header(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    _put(store)
    stored = store.get("v" * 64, X1)
    assert stored is not None
    assert stored.features.dtype == np.float16 and stored.features.shape == (5, 8)
    assert stored.indices.tolist() == [0, 5, 10, 15, 20]
    assert stored.header["spec"]["backbone"] == "resnet18" and "created_at" in stored.header
    assert stored.frame_times_s is not None and len(stored.frame_times_s) == 25
    assert store.get("w" * 64, X1) is None


def test_put_returns_what_a_reader_sees(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    written = store.put("k" * 64, X1, np.ones((2, 3)), [0, 1], [0.0, 0.5], {"info": {}})
    read = store.get("k" * 64, X1)
    assert written.header == read.header and written.frame_times_s is None
    np.testing.assert_array_equal(written.features, read.features)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "header_digit"])
def test_damaged_files_are_detected_and_discarded(tmp_path: Path, damage: str) -> None:
    store = FeatureStore(tmp_path)
    path = _put(store)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-3] ^= 0xFF  # inside the arrays: only the checksum notices
    elif damage == "header_digit":  # still valid JSON, a different value: only its checksum sees
        at = bytes(data).index(b"resnet18") + len("resnet")
        data[at : at + 2] = b"50"
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(os.urandom(200))
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match=str(path.name)):
        store.get("v" * 64, X1)
    assert store.get_or_discard("v" * 64, X1) is None
    assert not path.exists()


def test_video_key_is_content_hash_and_follows_moves_and_edits(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store")
    video = tmp_path / "a.mp4"
    video.write_bytes(b"0123456789" * 100)
    key = store.video_key(video)
    moved = tmp_path / "sub" / "renamed.mp4"
    moved.parent.mkdir()
    shutil.copy(video, moved)
    assert store.video_key(moved) == key
    time.sleep(0.01)
    video.write_bytes(b"0123456789" * 99 + b"x" * 10)
    assert store.video_key(video) != key


def test_video_key_sees_an_edit_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store")
    video = tmp_path / "a.mp4"
    video.write_bytes(b"a" * 1000)
    stat = video.stat()
    key = store.video_key(video)
    time.sleep(0.01)
    video.write_bytes(b"b" * 1000)  # as `cp -p` over it: same size, mtime set back
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert video.stat().st_mtime_ns == stat.st_mtime_ns
    assert store.video_key(video) != key


def test_no_temp_files_left_after_writes(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    for n in range(3):
        _put(store, video_key=str(n) * 64)
    assert store.temp_files() == []
    assert len(list(store.entries())) == 3


def test_verify_and_gc(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    good = _put(store, "a" * 64)
    bad = _put(store, "b" * 64)
    _put(store, "c" * 64, extractor_key=OTHER)
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
    path = _put(store)
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


# --- gc only ever removes extractor folders -------------------------------------------------


def test_extractor_key_shape_matches_the_spec_key() -> None:
    from pipeline.features.spec import ExtractorSpec
    from pipeline.features.store import is_extractor_key

    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", "2")
    assert is_extractor_key(spec.key()) and is_extractor_key(X1)
    assert not is_extractor_key(X1[:8]) and not is_extractor_key(".compile_cache")


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
    good = _put(store, "a" * 64)
    other = _put(store, "b" * 64, extractor_key=OTHER)
    kept = _project_like_store(tmp_path)
    assert store.extractor_keys() == [X1, OTHER]
    report = gc(store, keep=[X1], min_temp_age_s=0)
    assert report.extractors == [OTHER] and report.temp_files == 0
    assert good.exists() and not other.exists()
    assert all(path.exists() for path in kept.values())


@pytest.mark.parametrize("keep", [X1[:6], X1[:12] + "…", X1[:8] + "...", X1])
def test_gc_keep_accepts_a_unique_prefix(tmp_path: Path, keep: str) -> None:
    store = FeatureStore(tmp_path)
    good = _put(store, "a" * 64)
    other = _put(store, "b" * 64, extractor_key=OTHER)
    (tmp_path / ".compile_cache").mkdir()
    assert gc(store, keep=[keep]).extractors == [OTHER]
    assert good.exists() and not other.exists() and (tmp_path / ".compile_cache").is_dir()


@pytest.mark.parametrize(
    ("keep", "message"),
    [("0123456789", "ambiguous"), ("ffff", "matches no extractor key"), ("", "matches no")],
)
def test_gc_keep_unknown_or_ambiguous_removes_nothing(tmp_path: Path, keep, message) -> None:
    store = FeatureStore(tmp_path)
    entries = [_put(store, "a" * 64), _put(store, "b" * 64, extractor_key=X1[:10] + "f" * 10)]
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
    path = _put(store)
    result = CliRunner().invoke(app, ["store", "gc", "--store", str(tmp_path), "--keep", "9999"])
    assert result.exit_code == 2 and "matches no extractor key" in result.output
    assert path.exists()
    result = CliRunner().invoke(app, ["store", "gc", "--store", str(tmp_path), "--keep", X1[:7]])
    assert result.exit_code == 0 and path.exists()


# --- file modes and read errors -------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_store_files_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    store = FeatureStore(tmp_path / "store")
    video = tmp_path / "a.mp4"
    video.write_bytes(b"0123456789" * 100)
    previous = os.umask(umask)
    try:
        entry = _put(store)
        store.write_spec(X1, {"backbone": "resnet18"})
        store.video_key(video)
    finally:
        os.umask(previous)
    written = [entry, tmp_path / "store" / X1 / "spec.json", *(tmp_path / "store").rglob("*.json")]
    assert {path.stat().st_mode & 0o777 for path in written} == {0o666 & ~umask}


def test_an_unreadable_entry_is_reported_not_deleted(tmp_path: Path, monkeypatch) -> None:
    store = FeatureStore(tmp_path)
    path = _put(store)
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


def test_corrupt_error_names_the_file_once_and_pickles(tmp_path: Path) -> None:
    import pickle

    error = pickle.loads(pickle.dumps(StoreCorruptError(tmp_path / "e.safetensors", "bad")))
    assert str(error) == f"{tmp_path / 'e.safetensors'}: bad" and error.reason == "bad"


def test_video_key_of_a_missing_path_or_folder_is_a_video_error(tmp_path: Path) -> None:
    from pipeline.video.errors import NotAVideoError, VideoNotFoundError

    store = FeatureStore(tmp_path / "store")
    with pytest.raises(VideoNotFoundError, match="missing.mp4: no such file"):
        store.video_key(tmp_path / "missing.mp4")
    with pytest.raises(NotAVideoError, match="is a directory"):
        store.video_key(tmp_path)
    assert not (tmp_path / "store").exists()


# --- the store commands on a missing store ----------------------------------------------------


@pytest.mark.parametrize("command", ["ls", "verify", "gc"])
def test_store_commands_on_a_missing_store_exit_2(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no_store"
    result = CliRunner().invoke(app, ["store", command, "--store", str(missing)])
    assert result.exit_code == 2, result.output
    assert "no feature store at" in result.output and not missing.exists()


def test_store_verify_names_each_corrupt_file_once(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = _put(store)
    path.write_bytes(b"junk")
    result = CliRunner().invoke(app, ["store", "verify", "--store", str(tmp_path)])
    output = result.output.replace("\n", "")
    assert result.exit_code == 1 and output.count(path.name) == 1, result.output
