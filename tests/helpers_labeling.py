"""What the labeling and tracking test modules share: a small video, frame labels, a labels
document, a random model, and a SQLite MLflow registry."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.labeling.outputs import (
    labels_document,
)
from pipeline.labeling.segments import (
    labels_from_frames,
)
from pipeline.video.decode import VideoInfo

CLASSES = ["background", "stir", "pour"]
INFO = VideoInfo("/videos/sub/a.mp4", 20, 10.0, 2.0, 64, 48, 0, "h264", "opencv")


def one_hot(labels: list[int], classes: int = 3, confidence: float = 0.8) -> np.ndarray:
    """(T, C) probabilities with ``confidence`` on each step's label."""
    probs = np.full((len(labels), classes), (1 - confidence) / (classes - 1))
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def frame_labels(min_segment_s: float = 0.0, times: np.ndarray | None = None):
    # 10 samples at 5 fps of a 10 fps video: native frames 0, 2, ..., 18.
    steps = [0, 0, 1, 1, 1, 0, 2, 2, 0, 1]
    indices = np.arange(0, 20, 2)
    return labels_from_frames(
        one_hot(steps), indices, indices / 10.0, times, CLASSES, "background", INFO, min_segment_s
    )


CUE_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue; asserts the WebVTT header."""
    lines = text.splitlines()
    assert lines[0] == "WEBVTT"
    cues = []
    for number, line in enumerate(lines):
        match = CUE_TIME.match(line)
        if match:
            parts = [int(p) for p in match.groups()]
            start = parts[0] * 3600 + parts[1] * 60 + parts[2] + parts[3] / 1000
            end = parts[4] * 3600 + parts[5] * 60 + parts[6] + parts[7] / 1000
            cues.append((start, end, lines[number + 1]))
    return cues


MODEL = {
    "uri": "models:/m@candidate",
    "run_id": "abc",
    "version": "1",
    "task": "frame",
    "classes": CLASSES,
    "background": "background",
    "extractor": {"key": "k" * 20, "backbone": "resnet18", "sample_fps": 5.0},
    "fingerprint": "f" * 64,
}


def document(labels=None, fingerprint: str = "f" * 64) -> dict:
    return labels_document(
        "sub/a.mp4", Path("/videos/sub/a.mp4"), "0" * 64, labels or frame_labels(),
        {**MODEL, "fingerprint": fingerprint}, {"min_segment_s": 0.0},
    )  # fmt: skip


def random_model(task: str = "clip", seed: int = 0):
    import torch

    from models.rnn import build_model
    from pipeline.features import ExtractorSpec
    from pipeline.tracking.model_io import TrainedModel

    torch.manual_seed(seed)
    module = build_model(task, 8, 3, {"hidden": 8, "layers": 1}).eval()
    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", "2")
    return TrainedModel(module, task, CLASSES, spec, "background")


def save_dir(folder: Path, model) -> Path:
    """``model`` as a model folder (the files the pyfunc logs)."""
    from models.rnn import model_config_dict
    from pipeline.tracking.model_io import save_model_dir

    config = model_config_dict(model.module)
    return save_model_dir(folder, model.module, config, model.spec, model.classes, model.background)


def register(folder: Path, model, name: str) -> str:
    """Log ``model`` as a run's pyfunc, register it under ``name``; @candidate moves to it."""
    import mlflow

    from pipeline.tracking.mlflow import log_model

    save_dir(folder, model)
    with mlflow.start_run():
        return log_model(folder, name)[1]


@pytest.fixture
def registry(tmp_path):
    """A SQLite MLflow store in ``tmp_path`` (the previous tracking URI restored after)."""
    import mlflow

    from pipeline.tracking.mlflow import ensure_experiment

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    ensure_experiment(uri, "tests")
    yield uri
    mlflow.set_tracking_uri(previous)
