"""One training job: annotations + stored features -> fitted model -> one MLflow run.

Features must already be in the store (the train flow runs extraction first).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.config import Config, DataConfig
from pipeline.data.annotations import Annotations, load_annotations
from pipeline.data.datasets import (
    BucketBatchSampler,
    SequenceDataset,
    assign_splits,
    build_samples,
    class_weights,
    collate,
    dataset_fingerprint,
    stratum_of,
)
from pipeline.errors import UserError
from pipeline.features.extractor import ExtractorSpec, resolve_device, spec_from_config
from pipeline.features.store import FeatureStore

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


def require_test_checkpoint(cfg: Config) -> Path:
    """The checkpoint ``--test-only`` evaluates; a UserError when there is none. Needs only the
    annotations, so callers check it before any extraction."""
    annotations = assign_splits(
        load_annotations(cfg.data), cfg.data.val_fraction, cfg.data.test_fraction,
        cfg.data.split_seed,
    )  # fmt: skip
    checkpoint = checkpoint_path(cfg, dataset_fingerprint(annotations))
    if not checkpoint.is_file():
        raise UserError(f"--test-only: no checkpoint at {checkpoint}; train first")
    return checkpoint


def _loader(samples, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    dataset = SequenceDataset(samples)
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


class EmptySplit(UserError):
    """The training or validation split has no videos at all (before features are read)."""


def check_splits(annotations: Annotations, given: bool, cfg: DataConfig) -> None:
    """Training needs videos in train and val: say which split is empty, why and what to do."""
    counts = Counter(item.split for item in annotations.items)
    for split, name in (("train", "training"), ("val", "validation")):
        if counts[split] == 0:
            why = _given_split_reason(split) if given else _assigned_split_reason(annotations, cfg)
            raise EmptySplit(f"the {name} split is empty: {why}")


def _given_split_reason(split: str) -> str:
    return (
        f"the annotations' `split` column marks no video `{split}`; mark at least one video "
        f"`{split}`"
    )


def _assigned_split_reason(annotations: Annotations, cfg: DataConfig) -> str:
    per_class = Counter(stratum_of(item) for item in annotations.items)
    single = sum(count == 1 for count in per_class.values())
    how = (
        f"with no `split` column, splits were assigned automatically (data.val_fraction="
        f"{cfg.val_fraction}, data.test_fraction={cfg.test_fraction}, data.split_seed="
        f"{cfg.split_seed}), stratified by label with every label keeping one video in train; "
        f"{len(annotations.items)} videos in {len(per_class)} labels, {single} of them with a "
        f"single video (which can only be in train)"
    )
    if cfg.val_fraction == 0:
        return f"{how}. Set data.val_fraction above 0, or give every video a split"
    return (
        f"{how}. Add videos (more than one per label), or give every video a split: a `split` "
        f"column (train/val/test) in the annotations CSV"
    )


def prepare(cfg: Config) -> tuple[Annotations, dict[str, list], ExtractorSpec, list[str]]:
    loaded = load_annotations(cfg.data)
    given = all(item.split is not None for item in loaded.items)
    annotations = assign_splits(
        loaded, cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.split_seed
    )
    check_splits(annotations, given, cfg.data)
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
    from pipeline.tracking.model_io import save_model_dir
    from pipeline.training.loop import evaluate, fit, load_checkpoint, loss_function

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
            state = load_checkpoint(require_test_checkpoint(cfg), model)
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
        model_uri, version = None, None  # --test-only: no model logged, no alias moved
        if not test_only:
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
