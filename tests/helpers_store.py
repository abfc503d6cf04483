"""Store entries for the store tests: a small entry under a key shaped like an extractor key."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.features.store import FeatureStore

X1 = "0123456789abcdef0123"  # shaped like ExtractorSpec.key(): 20 hex digits
OTHER = "fedcba9876543210fedc"


def put_entry(store: FeatureStore, video_key: str = "v" * 64, extractor_key: str = X1) -> Path:
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
