"""Labels at the native frame rate: the one place where per-step predictions become per-frame
labels, shared by labelling (:mod:`pipeline.labeling.segments`) and by training's
``test_smoothed_*`` metrics and merge-length selection, so that what a run reports is exactly
what ``vidtag label`` produces.

- native frame ``i`` takes the prediction of the latest sampled step whose native index is
  ``<= i``; frames before the first sample take the first sample's prediction;
- runs are maximal half-open ``[start_frame, end_frame)`` spans of one label; a run's times are
  the presentation timestamps of its first frame and of the frame after its last one (the
  video's duration for the last run), so variable frame rates come out right;
- a merge length ``min_s`` > 0 merges every run shorter than that (background runs included)
  into a neighbour, shortest first: into the neighbour whose label the model scores higher over
  the short run's frames (the longer neighbour on ties).

The ground truth at native frames (:func:`native_truth`) is the annotation's label at each
native frame's time (seconds segments) or index (frame segments).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pipeline.config import AUTO, AUTO_MIN_SEGMENT_FALLBACK_S

if TYPE_CHECKING:
    from pipeline.data.annotations import VideoAnnotation


class Run(NamedTuple):
    label: int  # class id
    start: int  # first native frame
    end: int  # one past the last native frame


class NativeFrames(NamedTuple):
    """Where one video's sampled steps sit among its native frames."""

    sample_indices: np.ndarray  # (T,) native frame index of each sampled step
    bounds: np.ndarray  # (frames + 1,) start time of each native frame, then the video's end

    @property
    def count(self) -> int:
        return len(self.bounds) - 1


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
    runs: list[Run], bounds: np.ndarray, min_s: float, frame_probs: np.ndarray | FrameProbs
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


class FrameProbs:
    """Per-native-frame probabilities without materialising the (frames, C) array."""

    def __init__(self, probs: np.ndarray, steps: np.ndarray) -> None:
        self.probs, self.steps = probs, steps

    def __getitem__(self, key: tuple[slice, int]) -> np.ndarray:
        frames, label = key
        return self.probs[self.steps[frames], label]


def merged_runs(
    probs: np.ndarray, native: NativeFrames, min_s: float
) -> tuple[list[Run], FrameProbs]:
    """Sampled ``(T, C)`` probabilities -> the native-frame runs labelling writes (merged at
    ``min_s`` seconds) and the per-frame probabilities they were merged by."""
    steps = steps_of_frames(native.sample_indices, native.count)  # (frames,)
    frame_probs = FrameProbs(probs, steps)
    runs = label_runs(probs.argmax(1)[steps])
    return merge_short_runs(runs, native.bounds, min_s, frame_probs), frame_probs


def runs_to_frames(runs: list[Run], frame_count: int) -> np.ndarray:
    """(frame_count,) int64 class id of every native frame covered by ``runs``."""
    labels = np.zeros(frame_count, dtype=np.int64)
    for run in runs:
        labels[run.start : run.end] = run.label
    return labels


def native_labels(probs: np.ndarray, native: NativeFrames, min_s: float) -> np.ndarray:
    """(frames,) the class id labelling gives every native frame at merge length ``min_s``."""
    runs, _ = merged_runs(probs, native, min_s)
    return runs_to_frames(runs, native.count)


def native_truth(
    item: VideoAnnotation, native: NativeFrames, class_to_id: dict[str, int]
) -> np.ndarray:
    """(frames,) int64 true class id of every native frame: by each frame's time for seconds
    segments, by its index for frame segments (``VideoAnnotation.labels_at``)."""
    indices = np.arange(native.count, dtype=np.int64)
    names = item.labels_at(indices, native.bounds[:-1])
    return np.array([class_to_id[name] for name in names], dtype=np.int64)


def merge_length(setting: float | str, options: dict[str, Any]) -> float:
    """The merge length labelling applies: a number the user set (config, ``--set``, a pyfunc
    param or column) wins; ``auto`` takes the model's stored ``min_segment_s`` (chosen at
    training time on the validation videos, or the training config's number), and a model that
    stores none (trained before vidtag stored it) :data:`AUTO_MIN_SEGMENT_FALLBACK_S`."""
    if setting != AUTO:
        return float(setting)
    stored = options.get("min_segment_s")
    if isinstance(stored, (int, float)) and not isinstance(stored, bool) and stored >= 0:
        return float(stored)
    return AUTO_MIN_SEGMENT_FALLBACK_S
