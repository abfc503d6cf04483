"""pipeline/labeling/segments.py: sampled steps -> native frames -> runs -> segments."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.labeling.segments import (
    Run,
    SegmentBuilder,
    expand_frame_runs,
    frame_bounds,
    label_runs,
    labels_from_clip,
    merge_short_runs,
    steps_of_frames,
)
from tests.helpers_labeling import (
    CLASSES,
    INFO,
    frame_labels,
    one_hot,
)


@pytest.mark.parametrize(
    ("indices", "frames", "expected"),
    [
        ([0, 3, 6], 8, [0, 0, 0, 1, 1, 1, 2, 2]),
        ([2, 5], 7, [0, 0, 0, 0, 0, 1, 1]),  # frames before the first sample take the first
        ([0], 4, [0, 0, 0, 0]),
        ([0, 1, 2], 3, [0, 1, 2]),  # every frame sampled
    ],
)
def test_each_native_frame_takes_the_latest_sample_at_or_before_it(indices, frames, expected):
    assert steps_of_frames(np.array(indices), frames).tolist() == expected


def test_frame_bounds_use_real_timestamps_and_end_at_the_duration() -> None:
    times = np.array([0.0, 0.1, 0.3, 0.35])  # variable frame rate
    assert frame_bounds(times, 4, 10.0, 0.45).tolist() == [0.0, 0.1, 0.3, 0.35, 0.45]
    assert frame_bounds(None, 3, 10.0, 0.3) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # A duration that does not reach past the last frame: one frame period after it.
    assert frame_bounds(times, 4, 10.0, 0.2)[-1] == pytest.approx(0.45)


def test_label_runs_are_half_open_and_cover_every_frame() -> None:
    runs = label_runs(np.array([0, 0, 1, 1, 1, 0, 2]))
    assert runs == [Run(0, 0, 2), Run(1, 2, 5), Run(0, 5, 6), Run(2, 6, 7)]
    assert label_runs(np.array([], dtype=int)) == []


@pytest.mark.parametrize(
    ("frames", "min_s", "uniform_over", "expected"),
    [
        # A 0.1 s blip inside one label disappears.
        ("1" * 10 + "2" + "1" * 9, 0.5, None, "1" * 20),
        # Nothing shorter than the minimum, or no minimum: unchanged.
        ("1" * 10 + "2" * 10, 0.5, None, "1" * 10 + "2" * 10),
        ("1" * 10 + "2" + "0" * 9, 0.0, None, "1" * 10 + "2" + "0" * 9),
        # When the model scores both neighbours' labels alike over the short run, the longer
        # neighbour takes it (left here, right below).
        ("1" * 12 + "00" + "2" * 6, 0.5, None, "1" * 14 + "2" * 6),
        ("1" * 6 + "00" + "2" * 12, 0.5, (6, 8), "1" * 6 + "2" * 14),
        # Everything short: one run is left.
        ("1122", 1.0, None, "2222"),
    ],
)
def test_short_runs_merge_into_a_neighbour(frames, min_s, uniform_over, expected) -> None:
    labels = [int(c) for c in frames]
    probs = one_hot(labels)
    if uniform_over:
        probs[slice(*uniform_over)] = 1 / 3
    bounds = np.arange(len(labels) + 1) / 10.0
    merged = merge_short_runs(label_runs(np.array(labels)), bounds, min_s, probs)
    assert "".join(str(r.label) * (r.end - r.start) for r in merged) == expected


def test_a_short_run_goes_to_the_label_the_model_prefers_over_it() -> None:
    labels = [1] * 12 + [0] * 2 + [2] * 6
    probs = one_hot(labels)
    probs[12:14] = [0.3, 0.1, 0.6]  # the model half-saw label 2 there
    merged = merge_short_runs(label_runs(np.array(labels)), np.arange(21) / 10.0, 0.5, probs)
    assert merged == [Run(1, 0, 12), Run(2, 12, 20)]


def test_frame_labels_give_segments_without_background_end_exclusive() -> None:
    labels = frame_labels()
    assert [(s["label"], s["start_frame"], s["end_frame"]) for s in labels.segments] == [
        ("stir", 4, 10),
        ("pour", 12, 16),
        ("stir", 18, 20),
    ]
    first, _, last = labels.segments
    assert (first["start_s"], first["end_s"]) == (0.4, 1.0)
    assert last["end_s"] == INFO.duration_s  # the last frame ends with the video
    assert all(s["score"] == pytest.approx(0.8) for s in labels.segments)
    assert (labels.label, labels.score) == ("stir", pytest.approx(0.8))  # 8 frames vs pour's 4


def test_frame_labels_cover_exactly_the_native_frame_count() -> None:
    labels = frame_labels()
    per_frame = expand_frame_runs(labels.frames)
    assert len(per_frame) == INFO.frames
    assert per_frame[:6] == ["background"] * 4 + ["stir"] * 2
    assert labels.samples["labels"][:3] == ["background", "background", "stir"]
    assert labels.samples["indices"] == list(range(0, 20, 2))
    with pytest.raises(ValueError, match="cover"):
        expand_frame_runs({"count": 21, "runs": labels.frames["runs"]})


def test_segment_times_follow_real_timestamps() -> None:
    times = np.arange(20) / 10.0
    times[10:] += 0.05  # a pause in the middle of the video
    labels = frame_labels(times=times)
    assert [s["start_s"] for s in labels.segments] == [0.4, 1.25, 1.85]


def test_min_segment_s_removes_every_short_run() -> None:
    labels = frame_labels(min_segment_s=0.5)
    runs = labels.frames["runs"]
    assert all((end - start) / INFO.fps >= 0.5 for _, start, end in runs), runs
    assert len(expand_frame_runs(labels.frames)) == INFO.frames


def test_clip_labels_give_label_score_all_scores_and_one_whole_video_segment() -> None:
    labels = labels_from_clip(np.array([0.1, 0.7, 0.2]), CLASSES, INFO)
    assert labels.clip == {
        "label": "stir",
        "score": 0.7,
        "scores": {"background": 0.1, "stir": 0.7, "pour": 0.2},
    }
    assert labels.segments == [
        {
            "label": "stir",
            "start_s": 0.0,
            "end_s": 2.0,
            "start_frame": 0,
            "end_frame": 20,
            "score": 0.7,
        }
    ]
    assert labels.samples is None and labels.frames is None


def test_the_builder_holds_what_labels_need_and_the_task_picks_clip_or_frames() -> None:
    from dataclasses import replace

    from pipeline.training.task import task_named

    indices = np.arange(0, 20, 2)
    builder = SegmentBuilder(CLASSES, INFO, indices, indices / 10.0, background="background")
    probs = one_hot([0, 0, 1, 1, 1, 0, 2, 2, 0, 1])  # (T, C)
    frames = task_named("frame").to_labels(probs, builder)
    assert frames == replace(frame_labels(), sampled=len(indices))
    clip = task_named("clip").to_labels(probs[3], builder)  # (C,)
    assert clip == replace(labels_from_clip(probs[3], CLASSES, INFO), sampled=len(indices))
    assert (clip.task, frames.task) == ("clip", "frame")


@pytest.mark.parametrize(
    ("setting", "options", "expected"),
    [
        ("auto", {"min_segment_s": 0.75}, 0.75),  # auto: the model's stored merge length
        ("auto", {"min_segment_s": 0}, 0.0),
        (0.5, {"min_segment_s": 0.75}, 0.5),  # a number the user set wins
        (0.0, {"min_segment_s": 0.75}, 0.0),
        ("auto", {}, 0.3),  # a model that stores none: the documented fallback
        ("auto", {"min_segment_s": "auto"}, 0.3),
    ],
)
def test_merge_length_takes_the_models_value_unless_the_user_set_one(setting, options, expected):
    from pipeline.config import AUTO_MIN_SEGMENT_FALLBACK_S
    from pipeline.labeling.segments import merge_length

    assert AUTO_MIN_SEGMENT_FALLBACK_S == 0.3
    assert merge_length(setting, options) == expected
