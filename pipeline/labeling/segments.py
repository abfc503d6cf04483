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
  the short run's frames (the longer neighbour on ties);
- segments are the runs of a non-background label; a segment's ``score`` is the model's mean
  probability of that label over the segment's native frames.

A clip model gives one label, its probability and every class's probability; its one segment
spans the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from pipeline.video.decode import VideoInfo


# --- frames -> runs -> segments ----------------------------------------------------------------


class Run(NamedTuple):
    label: int  # class id
    start: int  # first native frame
    end: int  # one past the last native frame


def steps_of_frames(sample_indices: np.ndarray, frame_count: int) -> np.ndarray:
    """(frame_count,) the sampled step whose prediction each native frame takes."""
    sample_indices = np.asarray(sample_indices, dtype=np.int64)
    if sample_indices.size == 0:
        raise ValueError("no sampled frames to map")
    frames = np.arange(frame_count, dtype=np.int64)
    steps = np.searchsorted(sample_indices, frames, side="right") - 1
    return np.maximum(steps, 0)


def frame_bounds(times_s: np.ndarray | None, frame_count: int, fps: float, duration_s: float):
    """(frame_count + 1,) start time of each native frame, then the end of the video.

    Real timestamps when given (one per native frame), else ``index / fps``.
    """
    if times_s is None or len(times_s) != frame_count:
        times_s = np.arange(frame_count, dtype=np.float64) / (fps if fps > 0 else 30.0)
    times_s = np.asarray(times_s, dtype=np.float64)
    last = float(times_s[-1]) if frame_count else 0.0
    step = 1.0 / fps if fps > 0 else 0.0
    end = duration_s if duration_s > last else last + step
    return np.append(times_s, end)


def label_runs(frame_labels: np.ndarray) -> list[Run]:
    """Maximal half-open runs of equal labels, background included."""
    labels = np.asarray(frame_labels)
    if labels.size == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    return [Run(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def merge_short_runs(
    runs: list[Run], bounds: np.ndarray, min_s: float, frame_probs: np.ndarray
) -> list[Run]:
    """Merge runs shorter than ``min_s`` seconds into a neighbour (see the module doc).

    ``frame_probs`` is ``(frames, C)`` (or any array indexable by frame range then class).
    Each merge costs O(runs) in numpy, so thousands of noisy runs stay fast.
    """
    labels = np.array([r.label for r in runs], dtype=np.int64)  # (R,)
    starts = np.array([r.start for r in runs], dtype=np.int64)  # (R,)
    ends = np.array([r.end for r in runs], dtype=np.int64)  # (R,)
    while len(labels) > 1 and min_s > 0:
        durations = bounds[ends] - bounds[starts]  # (R,)
        short = int(durations.argmin())
        if durations[short] >= min_s - 1e-9:
            break
        neighbours = [j for j in (short - 1, short + 1) if 0 <= j < len(labels)]
        frames = slice(int(starts[short]), int(ends[short]))
        into = max(
            neighbours,
            key=lambda j: (float(frame_probs[frames, int(labels[j])].mean()), durations[j]),
        )
        # The short run and its neighbour(s) now share a label: one run from first to last.
        first, last = min(short, into), max(short, into)
        if last + 1 < len(labels) and labels[last + 1] == labels[into]:
            last += 1
        if first > 0 and labels[first - 1] == labels[into]:
            first -= 1
        labels[first], ends[first] = labels[into], ends[last]
        gone = np.arange(first + 1, last + 1)
        labels, starts, ends = (np.delete(a, gone) for a in (labels, starts, ends))
    return [Run(int(lab), int(s), int(e)) for lab, s, e in zip(labels, starts, ends, strict=True)]


class _FrameProbs:
    """Per-native-frame probabilities without materialising the (frames, C) array."""

    def __init__(self, probs: np.ndarray, steps: np.ndarray) -> None:
        self.probs, self.steps = probs, steps

    def __getitem__(self, key: tuple[slice, int]) -> np.ndarray:
        frames, label = key
        return self.probs[self.steps[frames], label]


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
    steps = steps_of_frames(stored_indices, frame_count)  # (frames,)
    frame_probs = _FrameProbs(probs, steps)
    bounds = frame_bounds(native_times, frame_count, info.fps, info.duration_s)
    step_labels = probs.argmax(1)  # (T,)
    runs = merge_short_runs(label_runs(step_labels[steps]), bounds, min_segment_s, frame_probs)
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


def _dominant(runs: list[Run], background_id: int, frame_probs: _FrameProbs) -> tuple[int, float]:
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
