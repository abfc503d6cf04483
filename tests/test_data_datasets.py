"""Splits, samples, collate, the bucket sampler, class weights and the dataset fingerprint."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.data.annotations import Annotations, Segment, VideoAnnotation
from pipeline.data.datasets import (
    IGNORE_INDEX,
    BucketBatchSampler,
    Sample,
    SequenceDataset,
    assign_splits,
    build_samples,
    carve_validation,
    class_weights,
    collate,
    dataset_fingerprint,
    stratum_of,
)


def clip_annotations(sizes: dict[str, int], root: Path = Path("/data")) -> Annotations:
    items = [
        VideoAnnotation(f"{label}/{i}.mp4", root / label / f"{i}.mp4", label=label)
        for label, size in sizes.items()
        for i in range(size)
    ]
    return Annotations("clip", sorted(sizes), items)


def frame_annotations() -> Annotations:
    def video(name: str, *segments: Segment, unit: str = "seconds") -> VideoAnnotation:
        return VideoAnnotation(name, Path("/d") / name, segments=segments, unit=unit)  # type: ignore[arg-type]

    items = [
        video("s.mp4", Segment(0.5, 1.0, "pour"), Segment(1.0, 1.5, "stir")),
        video("f.mp4", Segment(2, 4, "stir"), unit="frames"),
        video("empty.mp4"),
    ]
    return Annotations("frame", ["background", "pour", "stir"], items, background="background")


def splits_of(annotations: Annotations) -> dict[str, str]:
    return {item.video: item.split for item in annotations.items}  # type: ignore[misc]


# --- splits --------------------------------------------------------------------------------


class SplitCase(NamedTuple):
    name: str
    sizes: dict[str, int]
    val: float
    test: float
    expected: dict[str, tuple[int, int, int]]  # class -> (train, val, test)


SPLIT_CASES = [
    SplitCase("exact quotas", {"a": 10, "b": 10, "c": 10}, 0.2, 0.1, {k: (7, 2, 1) for k in "abc"}),
    SplitCase(
        "tiny classes stay in train", {"a": 1, "b": 2}, 0.5, 0.0, {"a": (1, 0, 0), "b": (1, 1, 0)}
    ),
    SplitCase(
        "three per class keep one in train",
        {"a": 3, "b": 3},
        0.5,
        0.5,
        {k: (1, 1, 1) for k in "ab"},
    ),
    SplitCase("no held-out fractions", {"a": 4}, 0.0, 0.0, {"a": (4, 0, 0)}),
]


@pytest.mark.parametrize("case", SPLIT_CASES, ids=[c.name for c in SPLIT_CASES])
def test_split_sizes_are_stratified(case: SplitCase) -> None:
    annotations = assign_splits(clip_annotations(case.sizes), case.val, case.test, seed=3)
    counts = Counter((item.label, item.split) for item in annotations.items)
    for label, (train, val, test) in case.expected.items():
        assert (counts[label, "train"], counts[label, "val"], counts[label, "test"]) == (
            train,
            val,
            test,
        ), label


def test_small_classes_share_held_out_totals() -> None:
    # 12 classes of 3: per-class rounding would hold out nothing; totals must follow fractions.
    sizes = {f"c{i:02d}": 3 for i in range(12)}
    splits = Counter(splits_of(assign_splits(clip_annotations(sizes), 0.15, 0.15, seed=0)).values())
    assert splits == {"train": 26, "val": 5, "test": 5}  # round(36 * 0.15) = 5


def test_one_held_out_video_when_fraction_is_positive() -> None:
    splits = Counter(splits_of(assign_splits(clip_annotations({"a": 3}), 0.1, 0.1, 0)).values())
    assert splits == {"train": 1, "val": 1, "test": 1}


@pytest.mark.parametrize("seed", [0, 1, 7, -5])
def test_splits_are_seeded_order_free_and_never_leak(seed: int) -> None:
    annotations = clip_annotations({"a": 9, "b": 6, "c": 4})
    first = splits_of(assign_splits(annotations, 0.2, 0.2, seed))
    shuffled = replace(annotations, items=annotations.items[::-1])
    assert splits_of(assign_splits(shuffled, 0.2, 0.2, seed)) == first
    assert set(first) == {item.video for item in annotations.items}  # each video exactly once
    assert set(first.values()) == {"train", "val", "test"}


def test_different_seeds_give_different_splits() -> None:
    annotations = clip_annotations({"a": 20, "b": 20})
    outcomes = {
        tuple(sorted(splits_of(assign_splits(annotations, 0.2, 0.2, s)).items())) for s in range(4)
    }
    assert len(outcomes) > 1


def test_given_splits_are_kept_and_partial_splits_rejected() -> None:
    annotations = clip_annotations({"a": 3})
    given = replace(annotations, items=[replace(i, split="test") for i in annotations.items])
    assert assign_splits(given, 0.5, 0.5, 0) is given
    partial = replace(annotations, items=[given.items[0], *annotations.items[1:]])
    with pytest.raises(ValueError, match="give all or none"):
        assign_splits(partial, 0.5, 0.5, 0)


def _train_and_test(sizes: dict[str, int], test_per_class: int = 1) -> Annotations:
    """Given splits as the standard action-segmentation splits ship them: train and test only."""
    annotations = clip_annotations(sizes)
    items = [
        replace(item, split="test" if int(Path(item.video).stem) < test_per_class else "train")
        for item in annotations.items
    ]
    return replace(annotations, items=items)


def test_given_train_and_test_splits_get_val_carved_from_train_stratified() -> None:
    given = _train_and_test({"a": 11, "b": 6, "c": 1})  # train: a 10, b 5, c 0
    carved = assign_splits(given, 0.2, 0.5, seed=0)  # test_fraction: the given test stays
    before, after = splits_of(given), splits_of(carved)
    assert {v for v, s in before.items() if s == "test"} == {
        v for v, s in after.items() if s == "test"
    }
    assert all(before[v] == "train" for v, s in after.items() if s == "val")
    per_class = Counter((v.split("/")[0], s) for v, s in after.items())
    # round(15 * 0.2) = 3 val videos, shared over the strata in proportion: 2 of a, 1 of b.
    assert (per_class["a", "val"], per_class["b", "val"]) == (2, 1)
    assert (per_class["a", "train"], per_class["b", "train"]) == (8, 4)
    assert carved == carve_validation(given, 0.2, seed=0)


def test_the_carve_is_deterministic_per_seed_and_order_free() -> None:
    given = _train_and_test({"a": 9, "b": 9})
    first = splits_of(assign_splits(given, 0.25, 0.0, seed=5))
    shuffled = replace(given, items=given.items[::-1])
    assert splits_of(assign_splits(shuffled, 0.25, 0.0, seed=5)) == first
    carves = {
        tuple(sorted(v for v, s in splits_of(assign_splits(given, 0.25, 0.0, seed)).items()
                     if s == "val"))
        for seed in range(5)
    }  # fmt: skip
    assert len(carves) > 1


def test_no_carve_when_val_is_given_or_val_fraction_is_zero() -> None:
    given = _train_and_test({"a": 6, "b": 6})
    assert assign_splits(given, 0.0, 0.2, seed=0) is given
    with_val = replace(
        given, items=[replace(given.items[1], split="val"), given.items[0], *given.items[2:]]
    )
    assert assign_splits(with_val, 0.5, 0.2, seed=0) is with_val
    too_few = _train_and_test({"a": 2, "b": 2})  # one train video per class: all stay in train
    assert assign_splits(too_few, 0.5, 0.0, seed=0) is too_few


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ((Segment(0, 1, "a"), Segment(1, 4, "b"), Segment(4, 5, "a")), "b"),
        ((Segment(0, 1, "b"), Segment(1, 2, "a")), "a"),  # tie: first name
        ((), "background"),
    ],
)
def test_frame_stratum_is_the_majority_label(segments: tuple[Segment, ...], expected: str) -> None:
    assert stratum_of(VideoAnnotation("v", Path("/v"), segments=segments)) == expected


# --- samples -------------------------------------------------------------------------------

FPS = 4.0


def fake_features(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-video lengths at FPS; each feature value is its sampled index."""
    steps = {"s.mp4": 7, "f.mp4": 5, "empty.mp4": 0}.get(path.name, len(path.name))
    indices = np.arange(steps, dtype=np.int64)
    features = np.repeat(indices[:, None], 3, axis=1).astype(np.float16)
    return features, indices, indices / FPS


def test_build_samples_clip_filters_split_and_sorts_by_video() -> None:
    annotations = assign_splits(clip_annotations({"b": 3, "a": 3}), 0.0, 0.4, seed=0)
    samples = build_samples(annotations, "train", fake_features)
    train = sorted(v for v, s in splits_of(annotations).items() if s == "train")
    assert [s.video for s in samples] == train
    assert [s.target for s in samples] == [annotations.class_to_id[v[0]] for v in train]
    assert samples[0].features.dtype == np.float16  # kept as stored; float32 on access


def test_build_samples_frame_targets_follow_timestamps() -> None:
    samples = {s.video: s for s in build_samples(frame_annotations(), None, fake_features)}
    assert set(samples) == {"s.mp4", "f.mp4"}  # empty.mp4 has no features: skipped
    # s.mp4 in seconds: pour [0.5, 1.0) = indices 2, 3; stir [1.0, 1.5) = indices 4, 5.
    assert samples["s.mp4"].target.tolist() == [0, 0, 1, 1, 2, 2, 0]
    assert samples["f.mp4"].target.tolist() == [0, 0, 2, 2, 0]  # native indices [2, 4)
    assert samples["s.mp4"].target.dtype == np.int64


def test_build_samples_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="call assign_splits first"):
        build_samples(clip_annotations({"a": 2}), "train", fake_features)
    with pytest.raises(ValueError, match="split must be one of"):
        build_samples(clip_annotations({"a": 2}), "dev", fake_features)

    def mismatched(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros((4, 2)), np.arange(3), np.zeros(3)

    with pytest.raises(ValueError, match=r"a/0\.mp4: features must be \(T, D\)"):
        build_samples(clip_annotations({"a": 1}), None, mismatched)


def test_dataset_returns_float32() -> None:
    dataset = SequenceDataset(build_samples(frame_annotations(), None, fake_features))
    assert len(dataset) == 2 and dataset.lengths == [5, 7]
    assert dataset[0].features.dtype == np.float32


# --- collate -------------------------------------------------------------------------------


def sample(video: str, steps: int, target: int | None = None) -> Sample:
    features = np.full((steps, 2), steps, dtype=np.float16)
    frame_target = np.arange(steps, dtype=np.int64) % 3
    return Sample(video, features, frame_target if target is None else target)


@pytest.mark.parametrize("task", ["clip", "frame"])
def test_collate_pads_and_masks(task: str) -> None:
    target = 1 if task == "clip" else None
    batch = collate([sample("a", 2, target), sample("b", 4, target), sample("c", 1, target)])
    assert batch.x.shape == (3, 4, 2) and batch.x.dtype == torch.float32
    assert batch.lengths.tolist() == [2, 4, 1] and batch.lengths.dtype == torch.int64
    assert batch.mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert batch.x[0, :2].eq(2).all() and batch.x[0, 2:].eq(0).all() and batch.x[2, 1:].eq(0).all()
    assert batch.videos == ["a", "b", "c"]
    if task == "clip":
        assert batch.y.tolist() == [1, 1, 1]
    else:
        assert batch.y.tolist() == [[0, 1, -100, -100], [0, 1, 2, 0], [0, -100, -100, -100]]
        assert (batch.y == IGNORE_INDEX).eq(~batch.mask).all()
    assert batch.y.dtype == torch.int64
    moved = batch.to("cpu")
    assert moved.videos == batch.videos and torch.equal(moved.x, batch.x)


# --- bucket sampler ------------------------------------------------------------------------

LENGTHS = [int(n) for n in np.random.default_rng(0).integers(1, 300, size=103)]


@pytest.mark.parametrize(
    ("batch_size", "bucket_batches", "shuffle"),
    [(8, 4, True), (8, 1, True), (1, 32, True), (200, 2, True), (8, 4, False)],
)
def test_bucket_sampler_covers_every_sample_once(
    batch_size: int, bucket_batches: int, shuffle: bool
) -> None:
    sampler = BucketBatchSampler(
        LENGTHS, batch_size, shuffle, seed=1, bucket_batches=bucket_batches
    )
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(len(LENGTHS)))
    assert all(len(batch) <= batch_size for batch in batches)


def test_bucket_sampler_groups_similar_lengths() -> None:
    def padding(batches: list[list[int]]) -> int:
        return sum(
            max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in batches
        )

    bucketed = padding(list(BucketBatchSampler(LENGTHS, 8, seed=0, bucket_batches=8)))
    rng = np.random.default_rng(0).permutation(len(LENGTHS)).tolist()
    unsorted = padding([rng[i : i + 8] for i in range(0, len(rng), 8)])
    assert bucketed < unsorted / 2


def test_bucket_sampler_is_seeded_per_epoch() -> None:
    first = BucketBatchSampler(LENGTHS, 8, seed=5)
    epoch0, epoch1 = list(first), list(first)
    assert epoch0 != epoch1  # a new order each pass
    again = BucketBatchSampler(LENGTHS, 8, seed=5)
    assert list(again) == epoch0
    again.set_epoch(1)  # resume
    assert list(again) == epoch1
    assert list(BucketBatchSampler(LENGTHS, 8, seed=6)) != epoch0


def test_bucket_sampler_in_order_for_evaluation() -> None:
    batches = list(BucketBatchSampler(LENGTHS, 10, shuffle=False))
    flat = [LENGTHS[i] for batch in batches for i in batch]
    assert flat == sorted(LENGTHS)
    assert list(BucketBatchSampler(LENGTHS, 10, shuffle=False)) == batches


def test_dataloader_with_sampler_and_collate() -> None:
    samples = [sample(f"v{i}", n, 0) for i, n in enumerate([3, 9, 4, 8, 2])]
    loader = DataLoader(
        SequenceDataset(samples),
        batch_sampler=BucketBatchSampler([len(s.features) for s in samples], 2, seed=0),
        collate_fn=collate,
    )
    videos = [video for batch in loader for video in batch.videos]
    assert sorted(videos) == [f"v{i}" for i in range(5)]


# --- class weights -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "num_classes", "expected"),
    [
        ([0, 0, 0, 1], 2, [4 / (2 * 3), 4 / (2 * 1)]),
        ([0, 1, 2], 3, [1.0, 1.0, 1.0]),
        ([0, 0, 2, 2], 4, [1.0, 1.0, 1.0, 1.0]),  # absent classes: neutral 1.0
        ([np.array([0, 0, 0, 1]), np.array([1, 1])], 2, [6 / (2 * 3), 6 / (2 * 3)]),
    ],
)
def test_class_weights(targets: list, num_classes: int, expected: list[float]) -> None:
    samples = [Sample(str(i), np.zeros((1, 1)), t) for i, t in enumerate(targets)]
    weights = class_weights(samples, num_classes)
    assert weights.dtype == torch.float32
    assert weights.tolist() == pytest.approx(expected)


# --- fingerprint ---------------------------------------------------------------------------


def test_fingerprint_is_stable_and_sensitive() -> None:
    base = clip_annotations({"a": 2, "b": 2})
    fingerprint = dataset_fingerprint(base)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert (
        dataset_fingerprint(clip_annotations({"a": 2, "b": 2}, Path("/elsewhere"))) == fingerprint
    )
    assert dataset_fingerprint(replace(base, items=base.items[::-1])) == fingerprint
    relabelled = replace(base, items=[replace(base.items[0], label="b"), *base.items[1:]])
    split = assign_splits(base, 0.25, 0.25, 0)
    others = {dataset_fingerprint(a) for a in (relabelled, split, frame_annotations())}
    assert fingerprint not in others and len(others) == 3
