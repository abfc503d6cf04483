"""Helpers of the promotion, served-contract and store-path tests: a temp MLflow store and small
real models registered in it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLASSES = ["background", "a", "b"]


def random_model(task: str = "clip", seed: int = 0):
    """A small untrained vidtag model (8-dim features, 3 classes)."""
    import torch

    from models.rnn import build_model
    from pipeline.features import ExtractorSpec
    from pipeline.tracking.model_io import TrainedModel

    torch.manual_seed(seed)
    module = build_model(task, 8, 3, {"hidden": 8, "layers": 1}).eval()
    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", "2")
    return TrainedModel(module, task, CLASSES, spec, "background")


def register(folder: Path, name: str, seed: int, alias: str = "challenger", **metrics) -> str:
    """Log a random model in a new run with ``metrics``, register it under ``name`` with
    ``alias``; its version."""
    import mlflow

    from models.rnn import model_config_dict
    from pipeline.tracking.mlflow import log_model
    from pipeline.tracking.model_io import save_model_dir

    model = random_model(seed=seed)
    config = model_config_dict(model.module)
    save_model_dir(folder, model.module, config, model.spec, model.classes, model.background)
    with mlflow.start_run():
        mlflow.log_metrics(metrics)
        return log_model(folder, name, alias=alias)[1]


@contextmanager
def temp_registry(root: Path) -> Iterator[str]:
    """A SQLite MLflow store in ``root`` (the previous tracking URI restored after)."""
    import mlflow

    from pipeline.tracking.mlflow import ensure_experiment

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        ensure_experiment(uri, "tests")
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)
