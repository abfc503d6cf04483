"""One video's predictions -> its labels: runs, merged segments, frame bounds (pure numpy).

A frame model predicts one label per *sampled* step; labelling turns those into a label for
every *native* frame and into segments:

- native frame ``i`` takes the prediction of the latest sampled step whose native index is
  ``<= i``; frames before the first sample take the first sample's prediction;
- runs are maximal half-open ``[start_frame, end_frame)`` spans of one label; a run's times are
  the real presentation timestamps of its first frame and of the frame after its last one (the
  video's duration for the last run), so variable frame rates come out right;
- ``label.min_segment_s`` > 0 merges every run shorter than that (background runs included)
  into a neighbour, shortest first: into the neighbour whose label the model scores higher over
  the short run's frames (the longer neighbour on ties); ``auto`` (the default) takes the merge
  length stored with the model (:func:`merge_length`);
- segments are the runs of a non-background label; a segment's ``score`` is the model's mean
  probability of that label over the segment's native frames.

These steps are :mod:`pipeline.data.frames`, which training's ``test_smoothed_*`` metrics use
too. A clip model gives one label, its probability and every class's probability; its one segment
spans the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.data.frames import (
    FrameProbs,
    NativeFrames,
    Run,
    frame_bounds,
    label_runs,
    merge_length,
    merge_short_runs,
    merged_runs,
    steps_of_frames,
)

if TYPE_CHECKING:
    from pipeline.video.decode import VideoInfo


# The per-frame primitives live in pipeline.data.frames (training scores exactly this merging);
# re-exported here, where labelling has always had them.
__all__ = [
    "FrameProbs", "NativeFrames", "Run", "SegmentBuilder", "VideoLabels", "expand_frame_runs",
    "frame_bounds", "label_runs", "labels_from_clip", "labels_from_frames", "merge_length",
    "merge_short_runs", "merged_runs", "steps_of_frames",
]  # fmt: skip


# --- one video's labels ------------------------------------------------------------------------


@dataclass
class VideoLabels:
    """What labelling found in one video (everything the output files are made of)."""

    info: VideoInfo  # labels.json keeps its fps, frames, duration_s, width, height
    task: str
    label: str  # clip label, or the dominant non-background label of a frame model
    score: float
    clip: dict[str, Any] | None = None  # {label, score, scores: {class: probability}}
    segments: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, Any] | None = None  # frame models: {times_s, indices, labels, scores}
    frames: dict[str, Any] | None = None  # frame models: {count, runs: [[label, start, end]]}
    sampled: int = 0  # sampled frames the model read


def _round(value: float) -> float:
    return round(float(value), 6)


def labels_from_clip(probs: np.ndarray, classes: list[str], info: VideoInfo) -> VideoLabels:
    """(C,) class probabilities of the whole video -> its label, scores and one segment."""
    best = int(np.argmax(probs))
    scores = {name: _round(p) for name, p in zip(classes, probs, strict=True)}
    segment = {
        "label": classes[best],
        "start_s": 0.0,
        "end_s": _round(info.duration_s),
        "start_frame": 0,
        "end_frame": int(info.frames),
        "score": _round(probs[best]),
    }
    return VideoLabels(
        info=info,
        task="clip",
        label=classes[best],
        score=_round(probs[best]),
        clip={"label": classes[best], "score": _round(probs[best]), "scores": scores},
        segments=[segment],
    )


def labels_from_frames(
    probs: np.ndarray,
    stored_indices: np.ndarray,
    stored_times: np.ndarray,
    native_times: np.ndarray | None,
    classes: list[str],
    background: str | None,
    info: VideoInfo,
    min_segment_s: float = 0.0,
) -> VideoLabels:
    """Sampled ``(T, C)`` probabilities -> per-native-frame runs, segments and samples."""
    frame_count = int(info.frames)
    bounds = frame_bounds(native_times, frame_count, info.fps, info.duration_s)
    native = NativeFrames(np.asarray(stored_indices, dtype=np.int64), bounds)
    runs, frame_probs = merged_runs(probs, native, min_segment_s)
    step_labels = probs.argmax(1)  # (T,)
    background_id = classes.index(background) if background in classes else -1
    segments = [
        {
            "label": classes[run.label],
            "start_s": _round(bounds[run.start]),
            "end_s": _round(bounds[run.end]),
            "start_frame": run.start,
            "end_frame": run.end,
            "score": _round(frame_probs[run.start : run.end, run.label].mean()),
        }
        for run in runs
        if run.label != background_id
    ]
    label, score = _dominant(runs, background_id, frame_probs)
    samples = {
        "times_s": [_round(t) for t in stored_times],
        "indices": [int(i) for i in stored_indices],
        "labels": [classes[i] for i in step_labels],
        "scores": [_round(p) for p in probs.max(1)],
    }
    frames = {"count": frame_count, "runs": [[classes[r.label], r.start, r.end] for r in runs]}
    return VideoLabels(
        info=info,
        task="frame",
        label=classes[label],
        score=score,
        segments=segments,
        samples=samples,
        frames=frames,
    )


def _dominant(runs: list[Run], background_id: int, frame_probs: FrameProbs) -> tuple[int, float]:
    """The non-background label covering most frames (background if none) and its mean score."""
    frames: dict[int, int] = {}
    for run in runs:
        frames[run.label] = frames.get(run.label, 0) + run.end - run.start
    candidates = {k: v for k, v in frames.items() if k != background_id} or frames
    label = max(candidates, key=lambda k: (candidates[k], -k))
    total = sum(float(frame_probs[r.start : r.end, label].sum()) for r in runs if r.label == label)
    return label, _round(total / frames[label])


def expand_frame_runs(frames: dict[str, Any]) -> list[str]:
    """The full per-native-frame label list of a labels.json ``frames`` field."""
    labels: list[str] = []
    for label, start, end in frames["runs"]:
        if start != len(labels):
            raise ValueError(f"frame runs are not contiguous at frame {start}")
        labels.extend([label] * (end - start))
    if len(labels) != frames["count"]:
        raise ValueError(f"frame runs cover {len(labels)} frames, not {frames['count']}")
    return labels


# --- the task's label builder ------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentBuilder:
    """:class:`pipeline.training.task.LabelBuilder` for one video: everything besides the
    model's probabilities that turning them into labels needs. The task picks the method."""

    classes: list[str]
    info: VideoInfo
    sample_indices: np.ndarray  # (T,) native frame index of each sampled step
    sample_times: np.ndarray  # (T,) its presentation time in seconds
    frame_times: np.ndarray | None = None  # (frames,) every native frame's time; None: i / fps
    background: str | None = None
    min_segment_s: float = 0.0

    def clip(self, probs: np.ndarray) -> VideoLabels:  # (C,)
        labels = labels_from_clip(probs, self.classes, self.info)
        return replace(labels, sampled=len(self.sample_indices))

    def frames(self, probs: np.ndarray) -> VideoLabels:  # (T, C)
        labels = labels_from_frames(
            probs, self.sample_indices, self.sample_times, self.frame_times, self.classes,
            self.background, self.info, self.min_segment_s,
        )  # fmt: skip
        return replace(labels, sampled=len(self.sample_indices))
