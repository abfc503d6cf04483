"""benchmarks/montage.py: the montage plan's pure logic (frame-exact labels, disjoint cuts)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmarks.montage import (
    MontagePlan,
    montage_labels,
    part_of,
    plan_montages,
    resample,
    segment_rows,
)

LENGTHS = {"a": 69, "b": 200, "c": 99, "d": 362}  # frames at 20 fps, like the real sources
PLAN = MontagePlan(train=12, test=6, val=3, seed=3)


def _montages(split: str, plan: MontagePlan = PLAN):
    return plan_montages(LENGTHS, split, getattr(plan, split), plan)


@pytest.mark.parametrize("length", [3, 4, 69, 362])
@pytest.mark.parametrize("val", [0, 4])
def test_the_parts_of_a_source_are_disjoint_in_order_and_cover_it(length: int, val: int) -> None:
    plan = MontagePlan(val=val)
    splits = ["train", "val", "test"] if val else ["train", "test"]
    parts = [part_of(length, split, plan) for split in splits]
    assert parts[0][0] == 0 and parts[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(end > start for start, end in parts)
    if not val:
        with pytest.raises(ValueError, match="split must be one of"):
            part_of(length, "val", plan)


def _frames(split: str) -> set[tuple[str, int]]:
    return {(c.source, f) for m in _montages(split) for c in m.cuts for f in range(*c[1:])}


def test_no_frame_is_shared_between_train_val_and_test() -> None:
    train, val, test = _frames("train"), _frames("val"), _frames("test")
    assert train and val and test
    assert not train & test and not train & val and not val & test


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_montages_follow_the_plan(split: str) -> None:
    montages = _montages(split)
    assert len(montages) == {"train": PLAN.train, "val": PLAN.val, "test": PLAN.test}[split]
    for montage in montages:
        assert PLAN.min_clips <= len(montage.cuts) <= PLAN.max_clips
        sources = [cut.source for cut in montage.cuts]
        assert all(a != b for a, b in itertools.pairwise(sources)), sources
        for cut in montage.cuts:
            lo, hi = part_of(LENGTHS[cut.source], split, PLAN)
            assert lo <= cut.start < cut.end <= hi
            assert cut.end - cut.start <= PLAN.max_cut_s * PLAN.fps


def test_labels_and_segment_rows_are_frame_exact() -> None:
    for montage in _montages("test"):
        labels = montage_labels(montage)
        assert len(labels) == montage.frames
        rows = segment_rows([montage])
        assert rows[0][1] == 0 and rows[-1][2] == len(labels)
        for (video, start, end, label, split), cut in zip(rows, montage.cuts, strict=True):
            assert video == f"videos/{montage.name}.mp4" and split == "test"
            assert end - start == cut.end - cut.start
            assert set(labels[start:end]) == {label}
            assert start == 0 or labels[start - 1] != label  # a cut is exactly one segment


def test_the_plan_is_seeded() -> None:
    assert _montages("train") == _montages("train")
    other = MontagePlan(train=12, test=6, seed=4)
    assert _montages("train") != _montages("train", other)
    assert PLAN.key() != other.key()


def test_resampling_picks_the_frame_shown_at_each_tick() -> None:
    times = np.array([0.0, 0.04, 0.08, 0.12, 0.16])  # 25 fps, 0.2 s shown
    assert resample(times, 10).tolist() == [0, 2]  # ticks 0.0, 0.1
    assert resample(times, 30).tolist() == [0, 0, 1, 2, 3, 4]  # a repeat: 30 fps from 25
