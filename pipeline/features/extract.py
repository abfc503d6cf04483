"""One video into the feature store: look it up, else decode + embed and write it atomically.

What the extract flow's per-video task runs (and labelling, with the model's own spec); the
extractor is built once per process and reused for every video.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.claims import claim, lock_path_for
from pipeline.config import Config
from pipeline.features.spec import ExtractorSpec, spec_from_config
from pipeline.features.store import FeatureStore, StoredFeatures
from pipeline.jobs import VideoRecord
from pipeline.progress import reporter

if TYPE_CHECKING:  # torch loads with the extractor: a run with every video stored needs neither
    from pipeline.features.extractor import FeatureExtractor

_extractors: dict[tuple, FeatureExtractor] = {}
_extractors_lock = threading.Lock()


def get_extractor(spec: ExtractorSpec, cfg: Config) -> FeatureExtractor:
    """One extractor per (spec, device, batch, compile) per process: the model loads once."""
    feats = cfg.features
    key = (spec.key(), feats.device, feats.batch_size, feats.compile)
    with _extractors_lock:
        if key not in _extractors:
            _set_threads(feats.threads)
            from pipeline.features.extractor import FeatureExtractor

            _extractors[key] = FeatureExtractor(
                spec,
                device=feats.device,
                batch_size=feats.batch_size,
                compile_mode=feats.compile,
                cache_dir=Path(feats.store) / ".compile_cache",
            )
        return _extractors[key]


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def extract_one(video: str | Path, cfg: Config, spec: ExtractorSpec | None = None) -> VideoRecord:
    """Features of ``video`` in the store: ``skipped`` when already there, else extracted.

    Raises the decoder's VideoError for a bad video and OSError for I/O trouble; callers decide
    what to retry.
    """
    return stored_features(video, cfg, spec)[0]


def already_stored(
    video: str | Path, store: FeatureStore, extractor_key: str
) -> VideoRecord | None:
    """The ``skipped`` record of ``video`` when its features are stored, else None (cheap:
    the content hash from the store's hash cache, the entry read and checked; no lock).

    What a flow asks before mapping its tasks, so that stored videos cost no task run; a
    video it cannot decide on (missing, unreadable) is None, and its task says why.
    """
    if not Path(video).is_file():
        return None  # missing, a folder: its task fails with the reason
    try:
        video_key = store.video_key(video)
    except Exception:  # noqa: BLE001 - unreadable, empty: the task raises it again, reports it
        return None
    return _skipped(video, video_key) if store.has(video_key, extractor_key) else None


def _skipped(video: str | Path, video_key: str) -> VideoRecord:
    return VideoRecord(str(video), "skipped", video_key=video_key)


def stored_features(
    video: str | Path, cfg: Config, spec: ExtractorSpec | None = None
) -> tuple[VideoRecord, StoredFeatures]:
    """:func:`extract_one` plus the stored entry itself (read once, or kept from the write)."""
    spec = spec or spec_from_config(cfg)
    store = FeatureStore(cfg.features.store)
    video = Path(video)
    video_key = store.video_key(video)
    if (entry := store.get_or_discard(video_key, spec.key())) is not None:
        return _skipped(video, video_key), entry
    # Another run may be extracting this video right now: wait for it, then reuse its file.
    with claim(lock_path_for(store.path_for(video_key, spec.key()))):
        if (entry := store.get_or_discard(video_key, spec.key())) is not None:
            return _skipped(video, video_key), entry
        return _extract_and_store(video, video_key, cfg, spec, store)


def _extract_and_store(
    video: Path, video_key: str, cfg: Config, spec: ExtractorSpec, store: FeatureStore
) -> tuple[VideoRecord, StoredFeatures]:
    from pipeline.features.extractor import extract_video

    started = time.perf_counter()
    result = extract_video(
        video,
        get_extractor(spec, cfg),
        backend=cfg.decode.backend,
        chunk_frames=cfg.decode.chunk_frames,
        on_frames=reporter().frames,
    )
    header = {
        "spec": spec.to_dict(),
        "video_path": str(video.resolve()),
        "backend": result.backend,
        "warnings": result.warnings,
        "seconds": round(result.seconds, 3),
    }
    store.write_spec(spec.key(), spec.to_dict())
    entry = store.put(
        video_key, spec.key(), result.features, result.indices, result.times_s, header,
        frame_times_s=result.frame_times_s, info=result.info,
    )  # fmt: skip
    record = VideoRecord(
        str(video),
        "ok",
        video_key=video_key,
        frames=len(result.indices),
        seconds=time.perf_counter() - started,
        warnings=result.warnings,
    )
    return record, entry
