"""FeatureStore: entries round-trip, damage is detected, the video key follows content, writes
are atomic and get the umask's mode."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.features.store import HEADER_KEY, FeatureStore, StoreCorruptError, _metadata
from pipeline.video.decode import VideoInfo
from tests.helpers_store import OTHER, X1, put_entry


def test_round_trip_keeps_arrays_and_header(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    put_entry(store)
    stored = store.get("v" * 64, X1)
    assert stored is not None
    assert stored.features.dtype == np.float16 and stored.features.shape == (5, 8)
    assert stored.indices.tolist() == [0, 5, 10, 15, 20]
    assert stored.header["spec"]["backbone"] == "resnet18" and "created_at" in stored.header
    assert stored.frame_times_s is not None and len(stored.frame_times_s) == 25
    assert store.get("w" * 64, X1) is None


def _info(**changes) -> VideoInfo:
    fields = dict(
        path="/videos/a.mp4", frames=25, fps=25.0, duration_s=1.0, width=96, height=64,
        rotation=0, codec="ffv1", backend="opencv", container="matroska",
    )  # fmt: skip
    return VideoInfo(**{**fields, **changes})


@pytest.mark.parametrize(
    "header",
    [{"spec": {"backbone": "resnet18"}, "video_path": "/videos/a.mp4"}, {"video_path": "a"}, {}],
)
def test_video_info_is_typed_in_the_code_and_json_after_spec_in_the_file(tmp_path, header):
    store = FeatureStore(tmp_path)
    info = _info(truncated=True)
    written = store.put("k" * 64, X1, np.ones((2, 3)), [0, 1], [0.0, 0.5], header, info=info)
    read = store.get("k" * 64, X1)
    assert written.info == read.info == info and isinstance(read.info, VideoInfo)
    raw = json.loads(_metadata(store.path_for("k" * 64, X1).read_bytes())[HEADER_KEY])
    assert raw["info"] == info.to_dict()
    # the key order files have always had: info right after spec (else after the caller's)
    expected = [*header]
    expected.insert(expected.index("spec") + 1 if "spec" in header else len(expected), "info")
    assert [name for name in raw if name in {*header, "info"}] == expected


def test_an_entry_without_info_has_none(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    put_entry(store)
    assert store.get("v" * 64, X1).info is None


def test_put_returns_what_a_reader_sees(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    written = store.put("k" * 64, X1, np.ones((2, 3)), [0, 1], [0.0, 0.5], {"info": {}})
    read = store.get("k" * 64, X1)
    assert written.header == read.header and written.frame_times_s is None
    np.testing.assert_array_equal(written.features, read.features)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "header_digit"])
def test_damaged_files_are_detected_and_discarded(tmp_path: Path, damage: str) -> None:
    store = FeatureStore(tmp_path)
    path = put_entry(store)
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


@pytest.mark.parametrize(
    ("damage", "stored"),
    [("none", True), ("missing", False), ("truncate", False), ("extend", False), ("empty", False),
     ("garbage", False), ("header_digit", False), ("renamed", False), ("flip", False)],
)  # fmt: skip
def test_has_is_true_for_a_whole_undamaged_entry_only(tmp_path: Path, damage: str, stored) -> None:
    store = FeatureStore(tmp_path)
    path = put_entry(store)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-1]
    elif damage == "extend":
        data += b"\0"
    elif damage == "empty":
        data = bytearray()
    elif damage == "garbage":
        data = bytearray(os.urandom(200))
    elif damage == "header_digit":
        at = bytes(data).index(b"resnet18") + len("resnet")
        data[at : at + 2] = b"50"
    elif damage == "flip":  # inside the arrays: their checksum notices
        data[-3] ^= 0xFF
    if damage == "missing":
        path.unlink()
    elif damage == "renamed":  # a whole entry, filed under another video's key
        path.rename(store.path_for("w" * 64, X1))
    else:
        path.write_bytes(bytes(data))
    assert store.has("v" * 64, X1) is stored
    assert store.has("v" * 64, OTHER) is False


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
        put_entry(store, video_key=str(n) * 64)
    assert store.temp_files() == []
    assert len(list(store.entries())) == 3


# --- gc only ever removes extractor folders -------------------------------------------------


def test_extractor_key_shape_matches_the_spec_key() -> None:
    from pipeline.features.spec import ExtractorSpec
    from pipeline.features.store import is_extractor_key

    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", "2")
    assert is_extractor_key(spec.key()) and is_extractor_key(X1)
    assert not is_extractor_key(X1[:8]) and not is_extractor_key(".compile_cache")


# --- file modes and read errors -------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_store_files_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    store = FeatureStore(tmp_path / "store")
    video = tmp_path / "a.mp4"
    video.write_bytes(b"0123456789" * 100)
    previous = os.umask(umask)
    try:
        entry = put_entry(store)
        store.write_spec(X1, {"backbone": "resnet18"})
        store.video_key(video)
    finally:
        os.umask(previous)
    written = [entry, tmp_path / "store" / X1 / "spec.json", *(tmp_path / "store").rglob("*.json")]
    assert {path.stat().st_mode & 0o777 for path in written} == {0o666 & ~umask}


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
