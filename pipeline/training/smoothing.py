"""What labelling will produce, scored: the merge length and the ``*_smoothed_*`` metrics.

A frame model's raw metrics score its sampled steps; ``vidtag label`` gives every *native*
frame a label and merges runs shorter than ``label.min_segment_s`` (:mod:`pipeline.data.frames`).
Here the same merging is applied to evaluation predictions and compared with the ground truth
at every native frame, so ``test_smoothed_*`` is what a user of the model gets.

``label.min_segment_s: auto`` is resolved at training time by :func:`select_min_segment`: every
length of :data:`MIN_SEGMENT_GRID` is applied to the validation videos, and the one with the
highest F1@50 wins, then the highest edit score, then the shorter length.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from pipeline.data.frames import NativeFrames, native_labels, native_truth
from pipeline.training.metrics import frame_metrics

if TYPE_CHECKING:
    from pipeline.data.annotations import Annotations
    from pipeline.training.loop import EvalResult

log = logging.getLogger(__name__)

# Seconds. Dense below 0.5 s, where one or two sampled steps at 5-10 fps are flicker; sparse
# above, up to 2 s (longer merges swallow real short actions in most datasets).
MIN_SEGMENT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


class NativeVideo(NamedTuple):
    """One evaluated video at its native frame rate."""

    video: str
    probs: np.ndarray  # (T, C) the model's probabilities per sampled step
    frames: NativeFrames  # where those steps sit among the native frames
    truth: np.ndarray  # (frames,) int64 true class id of every native frame


class Selection(NamedTuple):
    """The merge length labelling will apply, and how it was chosen."""

    min_segment_s: float
    source: str  # validation | config | fallback | clip
    scores: dict[float, dict[str, float]]  # validation: each grid value's smoothed metrics

    def describe(self, videos: int = 0) -> str:
        if self.source == "validation":
            best = self.scores[self.min_segment_s]
            return (
                f"label.min_segment_s auto: {self.min_segment_s:g} s, chosen on {videos} "
                f"validation videos (F1@50 {best['f1_50']:.3f}, edit {best['edit']:.3f})"
            )
        if self.source == "fallback":
            return (
                f"label.min_segment_s auto: no validation videos to choose it on, so the "
                f"fallback {self.min_segment_s:g} s is stored with the model"
            )
        if self.source == "clip":
            return "label.min_segment_s auto: a clip model has nothing to merge (0 s)"
        return f"label.min_segment_s: {self.min_segment_s:g} s from the config"


def smoothed_metrics(
    videos: Sequence[NativeVideo], min_s: float, background_ids: Sequence[int] = (0,)
) -> dict[str, float]:
    """The frame metrics of what labelling gives at merge length ``min_s``, on native frames."""
    preds = [native_labels(video.probs, video.frames, min_s) for video in videos]
    return frame_metrics(preds, [video.truth for video in videos], background=background_ids)


def select_min_segment(
    videos: Sequence[NativeVideo],
    grid: Sequence[float] = MIN_SEGMENT_GRID,
    background_ids: Sequence[int] = (0,),
) -> Selection:
    """The grid value whose smoothed metrics on ``videos`` (the validation videos) rank best
    by (F1@50, edit); ties go to the smaller value. ``videos`` must not be empty."""
    if not videos:
        raise ValueError("no validation videos to choose the merge length on")
    scores = {float(value): smoothed_metrics(videos, value, background_ids) for value in grid}
    best = min(scores, key=lambda value: (-scores[value]["f1_50"], -scores[value]["edit"], value))
    return Selection(best, "validation", scores)


def native_videos(
    annotations: Annotations, native: dict[str, NativeFrames], evaluation: EvalResult
) -> list[NativeVideo]:
    """The evaluated videos at their native frame rate (those whose native frames are known:
    every video extraction stored, since it stores the video's info)."""
    items = {item.video: item for item in annotations.items}
    class_to_id = annotations.class_to_id
    return [
        NativeVideo(
            video, probs, native[video], native_truth(items[video], native[video], class_to_id)
        )
        for video, probs in zip(evaluation.videos, evaluation.scores, strict=True)
        if video in native
    ]


def split_smoothed_metrics(
    annotations: Annotations,
    native: dict[str, NativeFrames],
    evaluation: EvalResult,
    split: str,
    min_s: float,
    background_ids: Sequence[int] = (0,),
) -> dict[str, float]:
    """``<split>_smoothed_<metric>`` of ``evaluation`` at merge length ``min_s`` (empty, with a
    warning, when no video of it has known native frames)."""
    videos = native_videos(annotations, native, evaluation)
    if len(videos) < len(evaluation.videos):
        log.warning(
            "%d of %d %s videos have no stored video info: left out of %s_smoothed_*",
            len(evaluation.videos) - len(videos), len(evaluation.videos), split, split,
        )  # fmt: skip
    if not videos:
        return {}
    scores = smoothed_metrics(videos, min_s, background_ids)
    return {f"{split}_smoothed_{name}": value for name, value in scores.items()}
