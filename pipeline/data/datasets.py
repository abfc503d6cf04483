"""Splits, the variable-length sequence dataset, padding collate and a length-bucketed sampler.

Splits are by video, never by frame, so no video's frames leak between train and evaluation.
Features come from a caller-supplied ``load_features`` (the feature store), which keeps this
module free of storage details and easy to test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pipeline.data.annotations import SPLITS, Annotations, VideoAnnotation

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # torch.nn.CrossEntropyLoss's default ignore_index

# (features (T, D) float16/32, native frame indices (T,) int64, times in seconds (T,) float64)
LoadFeatures = Callable[[Path], tuple[np.ndarray, np.ndarray, np.ndarray]]


# --- splits --------------------------------------------------------------------------------


def assign_splits(
    annotations: Annotations, val_fraction: float, test_fraction: float, seed: int
) -> Annotations:
    """Every video with a split: the annotations' own when given, else seeded and stratified.

    Stratum = the clip label, or for the frame task the label covering most of the video
    (background when nothing else is labelled). Each split's size is ``round(N * fraction)``
    (at least one video when the fraction is > 0 and there are >= 3 videos), shared out over
    the strata in proportion to their size by largest remainder. Every stratum keeps at least
    one video in train. The result depends only on the videos and the seed, not their order.


    Given splits that mark no ``val`` video (the layout of the standard action-segmentation
    splits: train and test only) get their validation videos carved out of the training
    videos by ``val_fraction``, the same way (:func:`carve_validation`); ``val_fraction`` 0
    leaves them without any.
    """
    given = [item.split is not None for item in annotations.items]
    if all(given):
        return carve_validation(annotations, val_fraction, seed)
    if any(given):
        raise ValueError("some videos have a split and others do not: give all or none")
    by_video = split_videos(annotations.items, val_fraction, test_fraction, seed)
    items = [replace(item, split=by_video[item.video]) for item in annotations.items]
    return replace(annotations, items=items)


def carve_validation(annotations: Annotations, val_fraction: float, seed: int) -> Annotations:
    """Annotations whose every video has a split but none ``val``: ``val_fraction`` of the
    ``train`` videos become ``val`` (grouped by video, stratified, seeded: :func:`split_videos`
    over the training videos with no test share). Returned unchanged when some video is
    already ``val`` or ``val_fraction`` is 0."""
    if val_fraction == 0 or any(item.split == "val" for item in annotations.items):
        return annotations
    train = [item for item in annotations.items if item.split == "train"]
    by_video = split_videos(train, val_fraction, 0.0, seed)
    if "val" not in by_video.values():
        return annotations
    items = [
        replace(item, split=by_video[item.video]) if item.split == "train" else item
        for item in annotations.items
    ]
    return replace(annotations, items=items)


def split_videos(
    items: Sequence[VideoAnnotation], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """``{video: "train" | "val" | "test"}``; see :func:`assign_splits`."""
    rng = _rng(seed)
    strata: dict[str, list[str]] = {}
    for item in sorted(items, key=lambda i: i.video):
        strata.setdefault(stratum_of(item), []).append(item.video)
    groups = {
        name: [videos[i] for i in rng.permutation(len(videos))]
        for name, videos in sorted(strata.items())
    }
    sizes = {name: len(videos) for name, videos in groups.items()}
    total = sum(sizes.values())
    # One video per stratum stays in train; test must leave val its floor share.
    spare = {name: size - 1 for name, size in sizes.items()}
    test_room = {
        name: max(0, spare[name] - math.floor(sizes[name] * val_fraction)) for name in sizes
    }
    n_test = _allocate(sizes, test_fraction, _split_size(total, test_fraction), test_room, rng)
    val_room = {name: spare[name] - n_test[name] for name in sizes}
    n_val = _allocate(sizes, val_fraction, _split_size(total, val_fraction), val_room, rng)
    assignment = {}
    for name, videos in groups.items():
        test_end, val_end = n_test[name], n_test[name] + n_val[name]
        for position, video in enumerate(videos):
            split = "test" if position < test_end else "val" if position < val_end else "train"
            assignment[video] = split
    return assignment


def _rng(*keys: int) -> np.random.Generator:
    # SeedSequence takes non-negative ints only; wrap so any Python int is a valid seed.
    return np.random.default_rng([key % 2**63 for key in keys])


def stratum_of(item: VideoAnnotation) -> str:
    if item.label is not None:
        return item.label
    covered = Counter[str]()
    for segment in item.segments:
        covered[segment.label] += segment.end - segment.start
    # Ties go to the alphabetically first label so the stratum is stable.
    best = sorted(covered.items(), key=lambda pair: (-pair[1], pair[0]))
    return best[0][0] if best else item.background


def _split_size(total: int, fraction: float) -> int:
    size = round(total * fraction)
    return max(size, 1) if fraction > 0 and total >= 3 else size


def _allocate(
    sizes: dict[str, int],
    fraction: float,
    wanted: int,
    capacity: dict[str, int],
    rng: np.random.Generator,
) -> dict[str, int]:
    """Share ``wanted`` videos over strata ~ proportionally (largest remainder, seeded ties).

    The floors sum to at most ``N * fraction`` <= ``wanted``, so counts only ever grow.
    """
    quotas = {name: size * fraction for name, size in sizes.items()}
    counts = {name: min(math.floor(quotas[name]), capacity[name]) for name in sizes}
    tie_break = dict(zip(sizes, rng.permutation(len(sizes)), strict=True))
    order = sorted(sizes, key=lambda name: (-(quotas[name] - counts[name]), tie_break[name]))
    while sum(counts.values()) < wanted:
        open_strata = [name for name in order if counts[name] < capacity[name]]
        if not open_strata:
            break
        for name in open_strata[: wanted - sum(counts.values())]:
            counts[name] += 1
    return counts


# --- samples and dataset -------------------------------------------------------------------


class Sample(NamedTuple):
    video: str
    features: np.ndarray  # (T, D) float16 or float32, as stored (halves memory for fp16)
    target: int | np.ndarray  # clip: class id; frame: (T,) int64 class ids


def build_samples(
    annotations: Annotations, split: str | None, load_features: LoadFeatures
) -> list[Sample]:
    """One sample per video of ``split`` (None: every video), in video order.

    Frame targets are the label at each sampled frame's time or native index. Videos with no
    features (T = 0) are logged and skipped, since an empty sequence cannot be encoded.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    if split is not None and any(item.split is None for item in annotations.items):
        raise ValueError("videos without a split: call assign_splits first")
    class_to_id = annotations.class_to_id
    samples = []
    for item in sorted(annotations.items, key=lambda i: i.video):
        if split is not None and item.split != split:
            continue
        features, indices, times_s = load_features(item.path)
        _check_shapes(item.video, features, indices, times_s)
        if len(features) == 0:
            log.warning("skipping %s: no features", item.video)
            continue
        samples.append(Sample(item.video, features, _target(item, indices, times_s, class_to_id)))
    return samples


def _target(
    item: VideoAnnotation, indices: np.ndarray, times_s: np.ndarray, class_to_id: dict[str, int]
) -> int | np.ndarray:
    if item.label is not None:
        return class_to_id[item.label]
    labels = item.labels_at(indices, times_s)
    return np.array([class_to_id[label] for label in labels], dtype=np.int64)


def _check_shapes(
    video: str, features: np.ndarray, indices: np.ndarray, times_s: np.ndarray
) -> None:
    if features.ndim != 2 or indices.shape != (len(features),) or times_s.shape != indices.shape:
        raise ValueError(
            f"{video}: features must be (T, D) with indices and times (T,), got "
            f"{features.shape}, {indices.shape}, {times_s.shape}"
        )


class SequenceDataset(Dataset[Sample]):
    """Variable-length samples; features come out as float32."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        sample = self.samples[index]
        return sample._replace(features=np.asarray(sample.features, dtype=np.float32))

    @property
    def lengths(self) -> list[int]:
        return [len(sample.features) for sample in self.samples]


# --- batching ------------------------------------------------------------------------------


class Batch(NamedTuple):
    x: torch.Tensor  # (B, T, D) float32, zeros after each length
    lengths: torch.Tensor  # (B,) int64
    mask: torch.Tensor  # (B, T) bool, True on valid steps
    y: torch.Tensor  # (B,) or (B, T) int64; padded steps = IGNORE_INDEX
    videos: list[str]

    def to(self, device: torch.device | str) -> Batch:
        moved = (t.to(device) for t in (self.x, self.lengths, self.mask, self.y))
        return Batch(*moved, self.videos)


def collate(samples: Sequence[Sample]) -> Batch:
    """Pad to the longest sample in the batch; the mask and ``IGNORE_INDEX`` mark padding."""
    lengths = torch.tensor([len(s.features) for s in samples], dtype=torch.int64)
    steps, dim = int(lengths.max()), samples[0].features.shape[1]
    x = torch.zeros(len(samples), steps, dim, dtype=torch.float32)  # (B, T, D)
    for row, sample in enumerate(samples):
        x[row, : len(sample.features)] = torch.from_numpy(np.asarray(sample.features, np.float32))
    mask = torch.arange(steps)[None, :] < lengths[:, None]  # (B, T)
    if isinstance(samples[0].target, np.ndarray):
        y = torch.full((len(samples), steps), IGNORE_INDEX, dtype=torch.int64)  # (B, T)
        for row, sample in enumerate(samples):
            y[row, : len(sample.target)] = torch.from_numpy(np.asarray(sample.target, np.int64))
    else:
        y = torch.tensor([int(s.target) for s in samples], dtype=torch.int64)  # (B,)
    return Batch(x, lengths, mask, y, [s.video for s in samples])


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so little time is spent on padding.

    Each epoch: shuffle all indices, cut them into buckets of ``bucket_batches`` batches, sort
    each bucket by length, cut it into batches, and shuffle the batch order. The generator is
    seeded with ``(seed, epoch)``; the epoch advances after each pass and :meth:`set_epoch`
    sets it (to resume). ``shuffle=False`` gives batches in length order (for evaluation).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket_batches: int = 32,
    ) -> None:
        if batch_size < 1 or bucket_batches < 1:
            raise ValueError("batch_size and bucket_batches must be >= 1")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_size = batch_size * bucket_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        # bucket_size is a multiple of batch_size, so only the last bucket has a short batch.
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (b.tolist() for b in self._cut(order))
            return
        rng = _rng(self.seed, self.epoch)
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.bucket_size):
            bucket = order[start : start + self.bucket_size]
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
            batches.extend(self._cut(bucket))
        for position in rng.permutation(len(batches)):
            yield batches[position].tolist()

    def _cut(self, indices: np.ndarray) -> list[np.ndarray]:
        return [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]


# --- weights and identity ------------------------------------------------------------------


def class_weights(samples: Sequence[Sample], num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_c)`` over the K classes present (mean 1 there).

    Counts are videos (clip) or sampled frames (frame). Absent classes get 1.0, a neutral
    weight that keeps the loss finite should one appear at evaluation.
    """
    counts = np.zeros(num_classes, dtype=np.float64)
    for sample in samples:
        targets = np.atleast_1d(np.asarray(sample.target, dtype=np.int64))
        counts += np.bincount(targets[targets >= 0], minlength=num_classes)[:num_classes]
    present = counts > 0
    weights = np.ones(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def dataset_fingerprint(annotations: Annotations) -> str:
    """Stable 16-hex-digit hash of task, classes, and each video's key, split and labels.

    Videos are identified by their path relative to the dataset root, so the same dataset
    copied to another machine (or listed in another order) has the same fingerprint.
    """
    videos = [
        [item.video, item.split, item.label, item.unit, [list(s) for s in item.segments]]
        for item in sorted(annotations.items, key=lambda i: i.video)
    ]
    record = [annotations.task, annotations.classes, annotations.background, videos]
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = [
    "IGNORE_INDEX",
    "Batch",
    "BucketBatchSampler",
    "LoadFeatures",
    "Sample",
    "SequenceDataset",
    "assign_splits",
    "build_samples",
    "carve_validation",
    "class_weights",
    "collate",
    "dataset_fingerprint",
    "split_videos",
    "stratum_of",
]
