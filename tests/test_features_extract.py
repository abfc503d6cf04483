"""One video into the store: extracted once, then skipped; a damaged entry is recomputed; the
stored header keeps the spec and the video's info (typed in the code, JSON in the file); the
extractor is built once per process and the progress reporter hears every frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.features.extract import already_stored, extract_one, get_extractor, stored_features
from pipeline.features.spec import spec_from_config
from pipeline.features.store import HEADER_KEY, FeatureStore, _metadata
from pipeline.progress import reporting
from pipeline.video.decode import VideoInfo, probe
from tests.conftest import tiny_config
from tests.helpers_video import FRAMES

# 90 frames at 30 fps sampled at 5 fps: 15 samples
SAMPLES = 15


@pytest.fixture
def cfg(tmp_path: Path, index_videos):
    return tiny_config(tmp_path, index_videos["lossless"].parent, None, "clip")


def test_extracted_once_then_skipped(cfg, index_videos) -> None:
    video = index_videos["lossless"]
    first = extract_one(video, cfg)
    second = extract_one(video, cfg)
    assert (first.status, first.frames, second.status) == ("ok", SAMPLES, "skipped")
    assert first.video_key == second.video_key and first.error is None
    entry = FeatureStore(cfg.features.store).get(first.video_key, spec_from_config(cfg).key())
    assert entry.features.shape == (SAMPLES, 512) and entry.indices.tolist() == list(
        range(0, FRAMES, 6)
    )


def test_the_entry_keeps_the_videos_info_typed_and_the_header_layout(cfg, index_videos) -> None:
    video = index_videos["lossless"]
    record, written = stored_features(video, cfg)
    _, read = stored_features(video, cfg)  # the second time from the file
    info = probe(video)
    assert written.info == read.info == info and isinstance(read.info, VideoInfo)
    spec = spec_from_config(cfg)
    path = FeatureStore(cfg.features.store).path_for(record.video_key, spec.key())
    header = json.loads(_metadata(path.read_bytes())[HEADER_KEY])
    assert list(header)[:6] == ["spec", "info", "video_path", "backend", "warnings", "seconds"]
    assert header["info"] == info.to_dict() and header["spec"] == spec.to_dict()
    assert len(read.frame_times_s) == FRAMES


def test_a_damaged_entry_is_extracted_again(cfg, index_videos) -> None:
    video = index_videos["lossless"]
    record = extract_one(video, cfg)
    path = FeatureStore(cfg.features.store).path_for(record.video_key, spec_from_config(cfg).key())
    path.write_bytes(path.read_bytes()[:100])
    again = extract_one(video, cfg)
    assert again.status == "ok" and again.frames == SAMPLES


def test_already_stored_is_the_skipped_record_extract_one_gives(cfg, index_videos, tmp_path):
    video = index_videos["lossless"]
    store, key = FeatureStore(cfg.features.store), spec_from_config(cfg).key()
    assert already_stored(video, store, key) is None
    extract_one(video, cfg)
    assert already_stored(video, store, key) == extract_one(video, cfg)
    assert already_stored(tmp_path / "missing.mp4", store, key) is None  # its task will say why
    path = store.path_for(store.video_key(video), key)
    path.write_bytes(path.read_bytes()[:100])
    assert already_stored(video, store, key) is None


def test_the_extractor_is_built_once_per_spec_and_settings(cfg) -> None:
    spec = spec_from_config(cfg)
    assert get_extractor(spec, cfg) is get_extractor(spec, cfg)
    other = spec_from_config(cfg.model_copy(update={"decode": cfg.decode.model_copy(
        update={"sample_fps": 2.0})}))  # fmt: skip
    assert get_extractor(other, cfg) is not get_extractor(spec, cfg)


def test_the_reporter_hears_every_embedded_frame(cfg, index_videos) -> None:
    class Frames:
        def __init__(self) -> None:
            self.counts: list[int] = []

        def frames(self, count: int) -> None:
            self.counts.append(count)

    heard = Frames()
    with reporting(heard):  # type: ignore[arg-type]
        extract_one(index_videos["mp4v"], cfg)
    assert sum(heard.counts) == SAMPLES and all(np.asarray(heard.counts) > 0)
