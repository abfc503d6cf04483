"""pipeline/data/frames.py: per-step predictions -> native-frame labels (the merging labelling
applies), and the ground truth at native frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.data.annotations import Segment, VideoAnnotation
from pipeline.data.frames import (
    NativeFrames,
    Run,
    frame_bounds,
    native_labels,
    native_truth,
    runs_to_frames,
)
from pipeline.labeling.segments import expand_frame_runs, labels_from_frames
from tests.helpers_labeling import CLASSES, INFO, one_hot

STEPS = [0, 0, 1, 1, 1, 0, 2, 2, 0, 1]  # 10 samples at 5 fps of a 10 fps, 20-frame video
INDICES = np.arange(0, 20, 2)
NATIVE = NativeFrames(INDICES, frame_bounds(None, INFO.frames, INFO.fps, INFO.duration_s))


def test_runs_to_frames_fills_every_frame() -> None:
    runs = [Run(1, 0, 2), Run(0, 2, 3), Run(2, 3, 5)]
    assert runs_to_frames(runs, 5).tolist() == [1, 1, 0, 2, 2]


@pytest.mark.parametrize("min_s", [0.0, 0.2, 0.25, 0.5, 1.0, 3.0])
def test_native_labels_are_exactly_what_labelling_writes(min_s: float) -> None:
    probs = one_hot(STEPS)
    written = labels_from_frames(
        probs, INDICES, INDICES / 10.0, None, CLASSES, "background", INFO, min_s
    )
    expected = [CLASSES.index(name) for name in expand_frame_runs(written.frames)]
    assert native_labels(probs, NATIVE, min_s).tolist() == expected


def test_native_labels_without_merging_repeat_each_step_over_its_frames() -> None:
    assert native_labels(one_hot(STEPS), NATIVE, 0.0).tolist() == np.repeat(STEPS, 2).tolist()


def test_native_truth_by_time_for_seconds_and_by_index_for_frames() -> None:
    class_to_id = {name: i for i, name in enumerate(CLASSES)}
    seconds = VideoAnnotation(
        "a.mp4", Path("a.mp4"), segments=(Segment(0.35, 1.0, "stir"), Segment(1.5, 2.0, "pour"))
    )
    # 10 fps: frames 4..9 start in [0.35, 1.0), frames 15..19 in [1.5, 2.0).
    expected = [0] * 4 + [1] * 6 + [0] * 5 + [2] * 5
    assert native_truth(seconds, NATIVE, class_to_id).tolist() == expected
    frames = VideoAnnotation(
        "a.mp4", Path("a.mp4"), segments=(Segment(3, 7, "pour"),), unit="frames"
    )
    assert native_truth(frames, NATIVE, class_to_id).tolist() == [0] * 3 + [2] * 4 + [0] * 13


def test_native_truth_follows_real_timestamps() -> None:
    times = np.array([0.0, 0.5, 0.6, 0.7])  # a variable frame rate: frame 1 starts at 0.5 s
    native = NativeFrames(np.array([0, 2]), frame_bounds(times, 4, 10.0, 0.8))
    item = VideoAnnotation("a.mp4", Path("a.mp4"), segments=(Segment(0.45, 0.65, "stir"),))
    assert native_truth(item, native, {"background": 0, "stir": 1}).tolist() == [0, 1, 1, 0]
