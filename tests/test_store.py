from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import FeatureStore, StoreCorruptError
from pipeline.store_admin import gc, verify


def _put(store: FeatureStore, video_key: str = "v" * 64, extractor_key: str = "x1") -> Path:
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
    stored = store.get("v" * 64, "x1")
    assert stored is not None
    assert stored.features.dtype == np.float16 and stored.features.shape == (5, 8)
    assert stored.indices.tolist() == [0, 5, 10, 15, 20]
    assert stored.header["spec"]["backbone"] == "resnet18" and "created_at" in stored.header
    assert stored.frame_times_s is not None and len(stored.frame_times_s) == 25
    assert store.get("w" * 64, "x1") is None


def test_put_returns_what_a_reader_sees(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    written = store.put("k" * 64, "x1", np.ones((2, 3)), [0, 1], [0.0, 0.5], {"info": {}})
    read = store.get("k" * 64, "x1")
    assert written.header == read.header and written.frame_times_s is None
    np.testing.assert_array_equal(written.features, read.features)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_files_are_detected_and_discarded(tmp_path: Path, damage: str) -> None:
    store = FeatureStore(tmp_path)
    path = _put(store)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-3] ^= 0xFF  # inside the arrays: only the checksum notices
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(os.urandom(200))
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match=str(path.name)):
        store.get("v" * 64, "x1")
    assert store.get_or_discard("v" * 64, "x1") is None
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
    _put(store, "c" * 64, extractor_key="other")
    bad.write_bytes(bad.read_bytes()[:50])
    (tmp_path / "x1" / ".leftover.safetensors.1.tmp").write_bytes(b"partial")
    report = verify(store)
    assert report.checked == 3 and [p for p, _ in report.corrupt] == [bad]
    dry = gc(store, keep=["x1"], min_temp_age_s=0, dry_run=True)
    assert (dry.temp_files, dry.corrupt, dry.extractors) == (1, 1, ["other"])
    assert bad.exists()
    gc(store, keep=["x1"], min_temp_age_s=0)
    assert [e.path for e in store.entries()] == [good]
    assert store.temp_files() == []


def test_store_cli(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = _put(store)
    store.write_spec("x1", {"backbone": "resnet18", "weights": "none:seed0"})
    runner = CliRunner()
    listing = runner.invoke(app, ["store", "ls", "--store", str(tmp_path)])
    assert listing.exit_code == 0 and "resnet18" in listing.output
    assert runner.invoke(app, ["store", "verify", "--store", str(tmp_path)]).exit_code == 0
    path.write_bytes(b"junk")
    failed = runner.invoke(app, ["store", "verify", "--store", str(tmp_path)])
    assert failed.exit_code == 1 and "corrupt" in failed.output
    fixed = runner.invoke(app, ["store", "verify", "--store", str(tmp_path), "--fix"])
    assert fixed.exit_code == 0 and not path.exists()
