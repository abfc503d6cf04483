"""Synthetic datasets: determinism, annotations that match the written frames, true reversals."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.synth.dataset import (
    BACKGROUND,
    CLIP_CLASSES,
    FPS_CHOICES,
    FRAME_CLASSES,
    REVERSED_PAIRS,
    SPLITS,
    plan_clip_dataset,
    plan_frame_dataset,
    segment_seconds,
    split_counts,
    write_dataset,
)
from tests.helpers_video import read_all_bgr

# Small and short, so the whole module stays fast; the real defaults are checked on plans only.
SMALL = {"sizes": ((96, 72), (112, 64))}
SMALL_CLIP = {**SMALL, "videos": 8, "duration_s": (0.5, 1.2)}
SMALL_FRAME = {**SMALL, "videos": 3, "segment_s": (0.2, 0.5), "gap_s": (0.1, 0.3)}
TASKS = {"clip": SMALL_CLIP, "frame": SMALL_FRAME}
ANNOTATIONS = {"clip": ["labels.csv"], "frame": ["segments.csv", "mapping.txt"]}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def videos_of(root: Path) -> list[Path]:
    return sorted(root.rglob("*.mp4"))


def annotation_bytes(root: Path, task: str) -> dict[str, bytes]:
    files = [root / name for name in ANNOTATIONS[task]] + sorted(root.glob("groundTruth/*.txt"))
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int, str], Path]:
    """Each task written twice with seed 0 (in two folders) and once with seed 1."""
    roots = {}
    for task, options in TASKS.items():
        for seed, copy in [(0, "a"), (0, "b"), (1, "a")]:
            root = tmp_path_factory.mktemp(f"{task}_{seed}_{copy}") / "data"
            write_dataset(root, task=task, seed=seed, **options)
            roots[(task, seed, copy)] = root
    return roots


# --- constants and planning --------------------------------------------------------------------


def test_class_constants() -> None:
    assert len(CLIP_CLASSES) >= 6 and len(set(CLIP_CLASSES)) == len(CLIP_CLASSES)
    assert len(REVERSED_PAIRS) >= 2
    paired = [name for pair in REVERSED_PAIRS for name in pair]
    assert len(set(paired)) == len(paired) and set(paired) <= set(CLIP_CLASSES)
    assert BACKGROUND not in FRAME_CLASSES and len(FRAME_CLASSES) >= 3


def test_default_clip_plan_varies_length_rate_and_size() -> None:
    plan = plan_clip_dataset(60, seed=0)
    specs = [item.video.spec for item in plan]
    assert {spec.fps for spec in specs} == set(FPS_CHOICES)
    assert len({(spec.width, spec.height) for spec in specs}) >= 4
    assert all(2.0 - 1 / spec.fps <= spec.duration_s <= 10.0 + 1 / spec.fps for spec in specs)
    assert Counter(item.video.label for item in plan) == {name: 10 for name in CLIP_CLASSES}


def test_default_frame_plan_segments_and_gaps() -> None:
    for item in plan_frame_dataset(20, seed=0):
        segments = item.video.segments
        assert 3 <= len(segments) <= 8
        bounds = [0] + [b for seg in segments for b in (seg.start_frame, seg.end_frame)]
        bounds.append(item.video.spec.frames)
        gaps_and_segments = np.diff(bounds)
        assert (gaps_and_segments >= 1).all(), "every gap and segment spans at least one frame"


@pytest.mark.parametrize(
    ("total", "expected"),
    [(1, (1, 0, 0)), (2, (2, 0, 0)), (10, (7, 2, 1)), (20, (14, 3, 3)), (60, (42, 9, 9))],
)
def test_split_counts(total: int, expected: tuple[int, int, int]) -> None:
    assert split_counts(total) == expected


def test_split_ties_alternate_between_val_and_test() -> None:
    assert {split_counts(10, rotate=0), split_counts(10, rotate=1)} == {(7, 2, 1), (7, 1, 2)}


@pytest.mark.parametrize("fps", FPS_CHOICES)
def test_segment_seconds_keep_frame_membership_exact(fps: int) -> None:
    for boundary in range(0, 3000, 7):
        seconds = float(segment_seconds(boundary, fps))
        assert (boundary - 1) / fps < seconds <= boundary / fps
        assert len(segment_seconds(boundary, fps).split(".")[1]) == 6


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_annotations_and_frames(datasets, task: str) -> None:
    first, second = datasets[(task, 0, "a")], datasets[(task, 0, "b")]
    assert annotation_bytes(first, task) == annotation_bytes(second, task)
    names = [p.relative_to(first) for p in videos_of(first)]
    assert names == [p.relative_to(second) for p in videos_of(second)]
    for name in names:
        np.testing.assert_array_equal(read_all_bgr(first / name), read_all_bgr(second / name))


@pytest.mark.parametrize("task", TASKS)
def test_different_seed_different_frames(datasets, task: str) -> None:
    first, other = datasets[(task, 0, "a")], datasets[(task, 1, "a")]
    name = videos_of(first)[0].relative_to(first)
    a, b = read_all_bgr(first / name), read_all_bgr(other / name)
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_different_seed_different_annotations(datasets) -> None:
    first, other = datasets[("frame", 0, "a")], datasets[("frame", 1, "a")]
    assert annotation_bytes(first, "frame") != annotation_bytes(other, "frame")
    # Small clip datasets put every video in train, so compare the splits of a full-size plan.
    splits = [[item.split for item in plan_clip_dataset(60, seed)] for seed in (0, 1)]
    assert splits[0] != splits[1]


# --- annotations agree with the written videos -------------------------------------------------


def test_clip_labels_match_written_videos(datasets) -> None:
    root = datasets[("clip", 0, "a")]
    rows = read_csv(root / "labels.csv")
    assert list(rows[0]) == ["video", "label", "split"]
    assert sorted(root / row["video"] for row in rows) == videos_of(root)
    plan = {item.relpath: item for item in plan_clip_dataset(seed=0, **SMALL_CLIP)}
    for row in rows:
        path = root / row["video"]
        assert path.parent.name == row["label"], "folder-per-class layout"
        spec = plan[row["video"]].video.spec
        capture = cv2.VideoCapture(str(path))
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(spec.fps)
        capture.release()
        assert read_all_bgr(path).shape == (spec.frames, spec.height, spec.width, 3)


def test_frame_annotations_match_written_videos(datasets) -> None:
    root = datasets[("frame", 0, "a")]
    rows = read_csv(root / "segments.csv")
    assert list(rows[0]) == ["video", "start", "end", "label", "split"]
    mapping = [line.split() for line in (root / "mapping.txt").read_text().splitlines()]
    assert mapping == [[str(i), name] for i, name in enumerate([BACKGROUND, *FRAME_CLASSES])]
    videos = videos_of(root)
    assert all(path.parent == root / "videos" for path in videos)
    for path in videos:
        truth = (root / "groundTruth" / f"{path.stem}.txt").read_text().splitlines()
        frames = read_all_bgr(path)
        assert len(truth) == len(frames)
        fps = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS)
        segments = [row for row in rows if root / row["video"] == path]
        assert 1 <= len(segments) and all(row["label"] in FRAME_CLASSES for row in segments)
        from_csv = [
            next(
                (r["label"] for r in segments if float(r["start"]) <= i / fps < float(r["end"])),
                BACKGROUND,
            )
            for i in range(len(frames))
        ]
        assert from_csv == truth


# --- splits, layout and errors -----------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_splits_valid_and_every_class_in_train(datasets, task: str) -> None:
    root = datasets[(task, 0, "a")]
    rows = read_csv(root / ("labels.csv" if task == "clip" else "segments.csv"))
    assert {row["split"] for row in rows} <= set(SPLITS)
    classes = CLIP_CLASSES if task == "clip" else FRAME_CLASSES
    assert {row["label"] for row in rows if row["split"] == "train"} == set(classes)


def test_clip_splits_stratified_per_class() -> None:
    plan = plan_clip_dataset(60, seed=5, sizes=SMALL["sizes"])
    for name in CLIP_CLASSES:
        counts = Counter(item.split for item in plan if item.video.label == name)
        assert counts["train"] == 7 and counts["val"] + counts["test"] == 3


def test_summary_callback_and_no_temp_files(tmp_path: Path) -> None:
    seen: list[Path] = []
    summary = write_dataset(tmp_path / "d", task="clip", seed=0, on_video=seen.append, **SMALL_CLIP)
    assert seen == [
        tmp_path / "d" / item.relpath for item in plan_clip_dataset(seed=0, **SMALL_CLIP)
    ]
    assert all(path.is_file() for path in seen)
    assert not [p for p in (tmp_path / "d").rglob(".*") if p.is_file()], "no temp files left"
    assert summary.videos == 8 and summary.task == "clip"
    assert sum(summary.splits.values()) == 8
    assert summary.annotations == (tmp_path / "d" / "labels.csv",)
    assert "8 synthetic clip-task videos" in summary.describe()


def test_rewrite_into_same_folder_drops_stale_videos(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_dataset(root, task="frame", seed=0, **{**SMALL_FRAME, "videos": 3})
    write_dataset(root, task="frame", seed=0, **{**SMALL_FRAME, "videos": 2})
    assert [p.name for p in videos_of(root)] == ["video_000.mp4", "video_001.mp4"]
    assert sorted(p.name for p in (root / "groundTruth").iterdir()) == [
        "video_000.txt",
        "video_001.txt",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "tube"}, "clip or frame"),
        ({"task": "clip", "videos": 3}, "at least 6"),
        ({"task": "frame", "videos": 0}, "at least 1"),
        ({"task": "clip", "seed": -1}, "non-negative"),
        ({"task": "clip", "duration_s": (2.0, 1.0)}, "duration"),
    ],
)
def test_bad_arguments_raise_user_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        write_dataset(tmp_path / "d", **kwargs)


@pytest.mark.parametrize("task", TASKS)
def test_refuses_foreign_non_empty_folder(tmp_path: Path, task: str) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        write_dataset(tmp_path, task=task, **TASKS[task])
