"""One training job: annotations + stored features -> fitted model -> one MLflow run.

Five steps, each on its own: :func:`build` (annotations, splits, features, model, loaders),
:func:`fit_or_restore` (train, resume, or load the checkpoint for ``--test-only``),
:func:`choose_merge_length` (the ``label.min_segment_s`` stored with the model; ``auto``: chosen
on the validation videos), :func:`evaluate_and_log` (final metrics, raw and as labelled,
confusion matrix, per-class report, the review figures of :mod:`pipeline.training.review`) and
:func:`register` (the model folder logged and registered @challenger, then the promotion gate
of :mod:`pipeline.training.promotion` decides whether it becomes @candidate);
:func:`run_training` runs them in one MLflow run. Every MLflow call goes through
``pipeline.tracking``.
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
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from models.rnn import RNNConfig, model_config_dict
from pipeline import tracking
from pipeline.config import AUTO, AUTO_MIN_SEGMENT_FALLBACK_S, Config, DataConfig
from pipeline.data.annotations import Annotations, load_annotations
from pipeline.data.bundles import bundle_pair
from pipeline.data.datasets import (
    BucketBatchSampler,
    Sample,
    SequenceDataset,
    assign_splits,
    build_samples,
    class_weights,
    collate,
    dataset_fingerprint,
    stratum_of,
)
from pipeline.data.frames import NativeFrames, frame_bounds
from pipeline.errors import UserError
from pipeline.features.spec import ExtractorSpec, resolve_device, spec_from_config
from pipeline.features.store import FeatureStore
from pipeline.tracking.model_io import save_model_dir
from pipeline.training.figures import confusion_figure
from pipeline.training.loop import EvalResult, FitSpec, evaluate, fit, load_checkpoint
from pipeline.training.metrics import (
    confusion_matrix,
    per_class_report,
    report_text,
)
from pipeline.training.promotion import gate
from pipeline.training.review import log_review
from pipeline.training.smoothing import (
    NativeVideo,
    Selection,
    native_videos,
    select_min_segment,
    split_smoothed_metrics,
)
from pipeline.training.task import Task, task_named

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
    promotion: str | None = None  # promoted | kept (None: nothing registered)
    promotion_reason: str | None = None
    early_stopping: bool = True  # False: no validation videos, train.epochs run, last kept
    min_segment_s: float | None = None  # the merge length stored with the model
    min_segment_s_source: str | None = None  # validation | config | fallback | clip


class MissingFeatures(UserError):
    """No stored features for the videos of a split (extraction failed or was not run)."""


@dataclass
class NativeIndex:
    """The native frames of the videos whose labelling is scored (a frame task's val and test
    videos), noted while their features are read: ``{str(path): NativeFrames}``. Entries
    without video info (written by hand, never by extraction) are left out."""

    wanted: set[str]
    frames: dict[str, NativeFrames] = field(default_factory=dict)

    def note(self, path: Path, stored) -> None:
        info = stored.info
        if str(path) not in self.wanted or info is None or info.frames < 1:
            return
        times = stored.frame_times_s
        bounds = frame_bounds(
            times if times is not None and len(times) == info.frames else None,
            int(info.frames), info.fps, info.duration_s,
        )  # fmt: skip
        indices = np.asarray(stored.indices, dtype=np.int64)
        self.frames[str(path)] = NativeFrames(indices, bounds)


def feature_loader(
    store: FeatureStore, spec: ExtractorSpec, missing: list[str], native: NativeIndex | None = None
):
    """``load_features(path)`` for :func:`build_samples`; videos with no features are noted,
    and (``native``) the native frames of the videos it wants."""
    key = spec.key()

    def load(path: Path):
        stored = store.get_or_discard(store.video_key(path), key)
        if stored is None:
            missing.append(str(path))
            empty = np.zeros((0, 1), np.float32)
            return empty, np.zeros(0, np.int64), np.zeros(0, np.float64)
        if native is not None:
            native.note(path, stored)
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
    """Training needs videos in train, and in val unless ``data.val_fraction`` is 0 (then it
    trains a fixed number of epochs and needs test videos to evaluate on): say which split is
    empty, why and what to do."""
    counts = Counter(item.split for item in annotations.items)
    if counts["train"] == 0:
        why = _given_split_reason("train") if given else _assigned_split_reason(annotations, cfg)
        raise EmptySplit(f"the training split is empty: {why}")
    if counts["val"] == 0 and cfg.val_fraction > 0:
        why = (
            _given_val_reason(counts["train"], cfg)
            if given
            else _assigned_split_reason(annotations, cfg)
        )
        raise EmptySplit(f"the validation split is empty: {why}")
    if counts["val"] == 0 and counts["test"] == 0:
        raise EmptySplit(
            "no validation or test videos to evaluate on: with data.val_fraction=0 there is no "
            "validation split, so give test videos (data.test_fraction above 0, or `test` in "
            "the `split` column)"
        )


def _given_split_reason(split: str) -> str:
    return (
        f"the annotations' `split` column marks no video `{split}`; mark at least one video "
        f"`{split}`"
    )


def _given_val_reason(train_videos: int, cfg: DataConfig) -> str:
    source = (
        f"the split bundles of data.split_file ({cfg.split_file}) mark"
        if cfg.split_file is not None
        else "the annotations' `split` column marks"
    )
    return (
        f"{source} no video `val`, and data.val_fraction="
        f"{cfg.val_fraction} carved none out of the {train_videos} training videos (stratified "
        f"by label, every label keeping one video in train); mark at least one video `val`, "
        f"add training videos, or set data.val_fraction: 0 to train train.epochs epochs "
        f"without early stopping"
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
    if cfg.val_fraction == 0:  # only reached for an empty training split
        return f"{how}. Give every video a split"
    return (
        f"{how}. Add videos (more than one per label), or give every video a split: a `split` "
        f"column (train/val/test) in the annotations CSV"
    )


class Prepared(NamedTuple):
    annotations: Annotations
    splits: dict[str, list[Sample]]  # train, val, test
    spec: ExtractorSpec
    missing: list[str]  # videos without stored features
    native: dict[str, NativeFrames]  # frame task: val/test video key -> its native frames


def prepare(cfg: Config) -> Prepared:
    loaded = load_annotations(cfg.data)
    given = all(item.split is not None for item in loaded.items)
    annotations = assign_splits(
        loaded, cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.split_seed
    )
    check_splits(annotations, given, cfg.data)
    _log_validation(loaded, annotations, given, cfg)
    spec = spec_from_config(cfg)
    missing: list[str] = []
    per_step = task_named(cfg.data.task).per_step  # only frame labelling merges runs
    scored = [i for i in annotations.items if i.split in ("val", "test") and per_step]
    native = NativeIndex({str(item.path) for item in scored})
    load = feature_loader(FeatureStore(cfg.features.store), spec, missing, native)
    splits = {name: build_samples(annotations, name, load) for name in ("train", "val", "test")}
    has_val = any(item.split == "val" for item in annotations.items)
    if (
        not splits["train"]
        or (has_val and not splits["val"])
        or not (splits["val"] or splits["test"])
    ):
        raise MissingFeatures(
            f"no usable training or validation videos ({len(missing)} without features); "
            f"run `vidtag extract` with the same config first"
        )
    by_video = {
        item.video: native.frames[str(item.path)]
        for item in scored
        if str(item.path) in native.frames
    }
    return Prepared(annotations, splits, spec, missing, by_video)


def _log_validation(
    loaded: Annotations, annotations: Annotations, given: bool, cfg: Config
) -> None:
    """Say where the validation videos came from and whether early stopping is on."""
    val = sum(item.split == "val" for item in annotations.items)
    if not val:
        log.info(
            "no validation videos (data.val_fraction=0): training %d epochs without early "
            "stopping and keeping the last epoch's weights",
            cfg.train.epochs,
        )
        return
    carved = given and not any(item.split == "val" for item in loaded.items)
    source = (
        f"carved out of the training videos by data.val_fraction={cfg.data.val_fraction}"
        if carved
        else "from the annotations' `split` column"
        if given
        else f"assigned by data.val_fraction={cfg.data.val_fraction}"
    )
    log.info("validation: %d videos %s; early stopping on", val, source)


@dataclass
class TrainingSetup:
    """What the steps of one job share (made by :func:`build`)."""

    cfg: Config
    task: Task
    annotations: Annotations
    splits: dict[str, list[Sample]]  # train, val, test (test may be empty)
    spec: ExtractorSpec
    missing: list[str]  # videos without stored features, skipped
    model: nn.Module
    device: torch.device
    loaders: dict[str, DataLoader]  # the non-empty splits
    fingerprint: str
    native: dict[str, NativeFrames] = field(default_factory=dict)  # frame: val/test videos

    @property
    def classes(self) -> list[str]:
        return self.annotations.classes

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.cfg, self.fingerprint)

    @property
    def early_stopping(self) -> bool:
        """Early stopping on the validation videos; off when there are none
        (``data.val_fraction: 0``): a fixed number of epochs, the last one kept."""
        return bool(self.splits["val"])

    def tags(self) -> dict[str, str]:
        tags = {
            "task": self.task.name,
            "extractor_key": self.spec.key(),
            "dataset_fingerprint": self.fingerprint,
            "early_stopping": "on" if self.early_stopping else "off",
        }
        data = self.cfg.data
        if data.split_file is not None:  # which fold: the bundles' names (params hold the path)
            train, test = bundle_pair(data.split_file, data.fold)
            tags["split_bundles"] = f"{train.name} {test.name}"
        return tags


@dataclass
class Fitted:
    best_epoch: int
    epochs_run: int


def build(cfg: Config) -> TrainingSetup:
    """Annotations, splits and stored features -> the model (seeded) and the loaders."""
    annotations, splits, spec, missing, native = prepare(cfg)
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    task = task_named(cfg.data.task)
    input_dim = int(splits["train"][0].features.shape[1])
    rnn_config = RNNConfig(**cfg.model.model_dump())
    model = task.build_model(input_dim, len(annotations.classes), rnn_config).to(device)
    loaders = {
        name: _loader(samples, cfg.train.batch_size, name == "train", cfg.train.seed)
        for name, samples in splits.items()
        if samples
    }
    return TrainingSetup(
        cfg, task, annotations, splits, spec, missing, model, device, loaders,
        dataset_fingerprint(annotations), native,
    )  # fmt: skip


def fit_or_restore(
    setup: TrainingSetup,
    resume: bool = False,
    test_only: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> Fitted:
    """Train (or resume) with every epoch logged; ``test_only``: the checkpoint's best weights."""
    if test_only:
        state = load_checkpoint(require_test_checkpoint(setup.cfg), setup.model)
        setup.model.load_state_dict(state["best_model"])
        return Fitted(state["best_epoch"], state["epoch"])

    def report(epoch: int, row: dict[str, float]) -> None:
        tracking.log_metrics(row, step=epoch)  # one batched call per epoch
        if on_epoch is not None:
            on_epoch(epoch, row)

    cfg, classes = setup.cfg, setup.classes
    weights = (
        class_weights(setup.splits["train"], len(classes)) if cfg.train.class_weights else None
    )
    spec = FitSpec(
        model=setup.model, task=setup.task, train_loader=setup.loaders["train"],
        val_loader=setup.loaders.get("val"), cfg=cfg.train, num_classes=len(classes),
        device=setup.device, class_weights=weights, checkpoint=setup.checkpoint, resume=resume,
        on_epoch=report, run_config=cfg.flat(),
    )  # fmt: skip
    result = fit(spec)
    return Fitted(result.best_epoch, result.epochs_run)


def choose_merge_length(setup: TrainingSetup) -> Selection:
    """The ``label.min_segment_s`` stored with the model: the config's number as it is; for
    ``auto``, the grid value that labels the validation videos best (by F1@50, then edit;
    :func:`~pipeline.training.smoothing.select_min_segment`), else the documented fallback.
    Logged: param ``labeling.min_segment_s``, metric ``min_segment_s``, tag
    ``min_segment_s_source``, and for a choice the grid's scores and ``val_smoothed_*``."""
    setting = setup.cfg.label.min_segment_s
    videos: list[NativeVideo] = []
    if setting != AUTO:
        selection = Selection(float(setting), "config", {})
    elif not setup.task.per_step:
        selection = Selection(0.0, "clip", {})
    else:
        if "val" in setup.loaders:
            evaluation = evaluate(
                setup.model, setup.loaders["val"], setup.task, len(setup.classes), setup.device
            )
            videos = native_videos(setup.annotations, setup.native, evaluation)
        selection = (
            select_min_segment(videos, background_ids=setup.task.background_ids)
            if videos
            else Selection(AUTO_MIN_SEGMENT_FALLBACK_S, "fallback", {})
        )
    log.info("%s", selection.describe(len(videos)))
    tracking.log_params({"labeling.min_segment_s": selection.min_segment_s})
    tracking.set_tags({"min_segment_s_source": selection.source})
    tracking.log_metrics({"min_segment_s": selection.min_segment_s})
    if selection.scores:
        chosen = selection.scores[selection.min_segment_s]
        tracking.log_metrics({f"val_smoothed_{name}": value for name, value in chosen.items()})
        grid = {"by": "f1_50, then edit, then the shorter length", "videos": len(videos)}
        rows = [{"min_segment_s": k, **v} for k, v in selection.scores.items()]
        tracking.log_dict({**grid, "chosen": selection.min_segment_s, "grid": rows},
                          "min_segment_s_selection.json")  # fmt: skip
    return selection


def evaluate_and_log(setup: TrainingSetup, min_segment_s: float | None = None) -> dict[str, float]:
    """The final split (test, else val): metrics, confusion matrix and per-class report logged;
    returns the metrics named ``<split>_<metric>``. A frame model's metrics also come as
    ``<split>_smoothed_<metric>``: its predictions labelled at merge length ``min_segment_s``
    exactly as ``vidtag label`` does, scored at every native frame."""
    split = "test" if "test" in setup.loaders else "val"
    evaluation = evaluate(
        setup.model, setup.loaders[split], setup.task, len(setup.classes), setup.device
    )
    metrics = {f"{split}_{name}": value for name, value in evaluation.metrics.items()}
    if setup.task.per_step and min_segment_s is not None:
        metrics.update(
            split_smoothed_metrics(
                setup.annotations,
                setup.native,
                evaluation,
                split,
                min_segment_s,
                setup.task.background_ids,
            )
        )
    tracking.log_metrics(metrics)
    log_confusion(split, evaluation, setup.classes)
    log_review(setup, split, evaluation)
    return metrics


def log_confusion(prefix: str, evaluation: EvalResult, classes: list[str]) -> None:
    """Confusion matrix PNG and per-class report (text and JSON) over every video's labels."""
    true = np.concatenate([np.atleast_1d(y) for y in evaluation.y_true])
    pred = np.concatenate([np.atleast_1d(y) for y in evaluation.y_pred])
    figure = confusion_figure(confusion_matrix(true, pred, len(classes)), classes)
    tracking.log_figure(figure, f"{prefix}_confusion_matrix.png")
    report = per_class_report(true, pred, classes)
    tracking.log_text(report_text(report), f"{prefix}_per_class_report.txt")
    tracking.log_dict(report, f"{prefix}_per_class_report.json")


def register(setup: TrainingSetup, min_segment_s: float | None = None) -> tuple[str, str | None]:
    """The model folder logged to the run and registered @challenger, with its labelling
    options (``min_segment_s``: the merge length :func:`choose_merge_length` chose; None: the
    config's number, or the fallback for ``auto``); (model URI, version or None)."""
    if min_segment_s is None:
        setting = setup.cfg.label.min_segment_s
        min_segment_s = AUTO_MIN_SEGMENT_FALLBACK_S if setting == AUTO else float(setting)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model_dir(
            Path(tmp) / "model", setup.model.cpu(), model_config_dict(setup.model), setup.spec,
            setup.classes, setup.annotations.background,
            options={"min_segment_s": min_segment_s},
        )  # fmt: skip
        return tracking.log_model(
            model_dir, setup.cfg.tracking.registered_model, alias=tracking.CHALLENGER_ALIAS
        )


def run_training(
    cfg: Config,
    resume: bool = False,
    test_only: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    promote: bool = False,
) -> TrainingOutcome:
    """The whole job in one MLflow run; ``test_only`` logs metrics and registers nothing.
    ``promote``: the new version becomes @candidate whatever the gate says."""
    setup = build(cfg)
    with tracking.tracked_run(cfg, setup.tags()) as run:
        tracking.log_config(cfg, setup.classes)
        fitted = fit_or_restore(setup, resume, test_only, on_epoch)
        selection = choose_merge_length(setup)
        test_metrics = evaluate_and_log(setup, selection.min_segment_s)
        tracking.log_metrics({"best_epoch": fitted.best_epoch, "epochs_run": fitted.epochs_run})
        model_uri, version = (None, None) if test_only else register(setup, selection.min_segment_s)
        decision = None if version is None else gate(setup, test_metrics, version, promote)
    return TrainingOutcome(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        tracking_uri=tracking.resolve_uri(cfg),
        model_uri=model_uri,
        registered_version=version,
        test_metrics=test_metrics,
        best_epoch=fitted.best_epoch,
        epochs_run=fitted.epochs_run,
        classes=setup.classes,
        skipped_videos=setup.missing,
        promotion=decision.decision if decision else None,
        promotion_reason=decision.reason if decision else None,
        early_stopping=setup.early_stopping,
        min_segment_s=selection.min_segment_s,
        min_segment_s_source=selection.source,
    )
