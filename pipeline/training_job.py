"""One training job: annotations + stored features -> fitted model -> one MLflow run.

Features must already be in the store (the train flow runs extraction first).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.annotations import Annotations, load_annotations
from pipeline.config import Config
from pipeline.data import (
    BucketBatchSampler,
    SequenceDataset,
    assign_splits,
    build_samples,
    class_weights,
    collate,
    dataset_fingerprint,
)
from pipeline.errors import UserError
from pipeline.features import ExtractorSpec, resolve_device, spec_from_config
from pipeline.store import FeatureStore

log = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    run_id: str
    experiment_id: str
    tracking_uri: str
    model_uri: str | None
    registered_version: str | None
    test_metrics: dict[str, float]
    best_epoch: int
    epochs_run: int
    classes: list[str]
    skipped_videos: list[str] = field(default_factory=list)


class MissingFeatures(UserError):
    """No stored features for the videos of a split (extraction failed or was not run)."""


def feature_loader(store: FeatureStore, spec: ExtractorSpec, missing: list[str]):
    """``load_features(path)`` for :func:`build_samples`; videos with no features are noted."""
    key = spec.key()

    def load(path: Path):
        stored = store.get_or_discard(store.video_key(path), key)
        if stored is None:
            missing.append(str(path))
            empty = np.zeros((0, 1), np.float32)
            return empty, np.zeros(0, np.int64), np.zeros(0, np.float64)
        return stored.features, stored.indices, stored.times_s

    return load


def checkpoint_path(cfg: Config, fingerprint: str) -> Path:
    """One checkpoint per (dataset, config): a re-run with --resume finds it."""
    config_hash = hashlib.sha256(cfg.to_yaml().encode()).hexdigest()[:12]
    return Path(cfg.train.checkpoint_dir) / f"{fingerprint}-{config_hash}" / "last.pt"


def _loader(samples, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    dataset = SequenceDataset(samples)
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


def prepare(cfg: Config) -> tuple[Annotations, dict[str, list], ExtractorSpec, list[str]]:
    annotations = assign_splits(
        load_annotations(cfg.data),
        cfg.data.val_fraction,
        cfg.data.test_fraction,
        cfg.data.split_seed,
    )
    spec = spec_from_config(cfg)
    missing: list[str] = []
    load = feature_loader(FeatureStore(cfg.features.store), spec, missing)
    splits = {name: build_samples(annotations, name, load) for name in ("train", "val", "test")}
    if not splits["train"] or not splits["val"]:
        raise MissingFeatures(
            f"no usable training or validation videos ({len(missing)} without features); "
            f"run `vidtag extract` with the same config first"
        )
    return annotations, splits, spec, missing


def run_training(
    cfg: Config,
    resume: bool = False,
    test_only: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainingOutcome:
    from models.rnn import build_model, model_config_dict
    from pipeline import tracking
    from pipeline.model_io import save_model_dir
    from pipeline.train import evaluate, fit, load_checkpoint, loss_function

    annotations, splits, spec, missing = prepare(cfg)
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    classes = annotations.classes
    background_id = 0 if cfg.data.task == "frame" else None
    input_dim = int(splits["train"][0].features.shape[1])
    model = build_model(cfg.data.task, input_dim, len(classes), cfg.model).to(device)
    fingerprint = dataset_fingerprint(annotations)
    checkpoint = checkpoint_path(cfg, fingerprint)
    tags = {"task": cfg.data.task, "extractor_key": spec.key(), "dataset_fingerprint": fingerprint}
    loaders = {
        name: _loader(samples, cfg.train.batch_size, name == "train", cfg.train.seed)
        for name, samples in splits.items()
        if samples
    }
    with tracking.tracked_run(cfg, tags) as run:
        tracking.log_config(cfg, classes)
        if test_only:
            if not checkpoint.is_file():
                raise UserError(f"--test-only: no checkpoint at {checkpoint}; train first")
            state = load_checkpoint(checkpoint, model)
            model.load_state_dict(state["best_model"])
            best_epoch, epochs_run = state["best_epoch"], state["epoch"]
        else:
            weights = (
                class_weights(splits["train"], len(classes)) if cfg.train.class_weights else None
            )

            def report(epoch: int, row: dict[str, float]) -> None:
                tracking.log_epoch(row, epoch)
                if on_epoch is not None:
                    on_epoch(epoch, row)

            result = fit(
                model, loaders["train"], loaders["val"], cfg.train, cfg.data.task, len(classes),
                device, class_weights=weights, background_id=background_id,
                checkpoint=checkpoint, resume=resume, on_epoch=report,
            )  # fmt: skip
            best_epoch, epochs_run = result.best_epoch, result.epochs_run
        final_split = "test" if "test" in loaders else "val"
        evaluation = evaluate(
            model, loaders[final_split], loss_function(cfg.data.task), device, cfg.data.task,
            len(classes), background_id,
        )  # fmt: skip
        tracking.log_evaluation(
            final_split, evaluation.metrics, classes, evaluation.y_true, evaluation.y_pred
        )
        import mlflow

        mlflow.log_metrics({"best_epoch": best_epoch, "epochs_run": epochs_run})
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = save_model_dir(
                Path(tmp) / "model", model.cpu(), model_config_dict(model), spec, classes,
                annotations.background,
            )  # fmt: skip
            model_uri, version = tracking.log_model(model_dir, cfg.tracking.registered_model)
    return TrainingOutcome(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        tracking_uri=tracking.resolve_uri(cfg),
        model_uri=model_uri,
        registered_version=version,
        test_metrics={f"{final_split}_{k}": v for k, v in evaluation.metrics.items()},
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        classes=classes,
        skipped_videos=missing,
    )
