"""What the watch tests share: a model folder whose input is resnet18's features, and a
video copied into an inbox in chunks with pauses (as a slow copy or a network share does)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers_labeling import CLASSES, save_dir


def resnet18_model_dir(folder: Path, task: str = "frame", seed: int = 0) -> Path:
    """A random (untrained) RNN model over resnet18 features (512-d, 64 px, no weights)."""
    import torch

    from models.rnn import build_model
    from pipeline.features import ExtractorSpec
    from pipeline.tracking.model_io import TrainedModel
    from pipeline.video.decode import DECODER_VERSION

    torch.manual_seed(seed)
    module = build_model(task, 512, len(CLASSES), {"hidden": 8, "layers": 1}).eval()
    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", DECODER_VERSION)
    return save_dir(folder, TrainedModel(module, task, CLASSES, spec, "background"))


def copy_slowly(
    source: Path,
    target: Path,
    chunks: int = 4,
    pause_s: float = 0.5,
    between: Callable[[], None] | None = None,
) -> float:
    """Write ``source`` to ``target`` in ``chunks`` pieces; after each but the last, call
    ``between`` (or sleep ``pause_s``). The time (``time.monotonic``) the copy completed."""
    data = source.read_bytes()
    size = -(-len(data) // chunks)
    with open(target, "wb") as out:
        for start in range(0, len(data), size):
            out.write(data[start : start + size])
            out.flush()
            if start + size < len(data):
                between() if between is not None else time.sleep(pause_s)
    return time.monotonic()
