"""What a reviewer looks at first in a finished run, logged as artifacts beside the metrics.

Frame runs: ``timelines/<video>.png`` (truth and prediction ribbons over the confidence curve,
:mod:`pipeline.training.timelines`) for the first ``tracking.timeline_videos`` evaluated videos
by name, and ``timelines/overview.png`` with every one of them. Clip runs: ``confusions.json``
and ``confusions.png``, the most confused class pairs with example videos
(:mod:`pipeline.training.confusions`). Every MLflow call goes through ``pipeline.tracking``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from pipeline import tracking
from pipeline.colours import class_colours
from pipeline.features.store import FeatureStore
from pipeline.training.confusions import confused_pairs, confusions_figure
from pipeline.training.timelines import (
    VideoTimeline,
    overview_figure,
    timeline_figure,
    timeline_of,
)

if TYPE_CHECKING:
    from pipeline.training.job import TrainingSetup
    from pipeline.training.loop import EvalResult

TIMELINES = "timelines"


def log_review(setup: TrainingSetup, split: str, evaluation: EvalResult) -> list[str]:
    """Log the task's review artifacts for the evaluated ``split``; returns their paths."""
    if setup.task.name == "frame":
        return log_timelines(setup, split, evaluation)
    return log_confusions(split, evaluation, setup.classes)


def log_confusions(split: str, evaluation: EvalResult, classes: list[str]) -> list[str]:
    summary = confused_pairs(
        evaluation.videos, evaluation.y_true, evaluation.y_pred, evaluation.scores, classes
    )
    tracking.log_dict({"split": split, **summary}, "confusions.json")
    tracking.log_figure(confusions_figure(summary), "confusions.png")
    return ["confusions.json", "confusions.png"]


def log_timelines(setup: TrainingSetup, split: str, evaluation: EvalResult) -> list[str]:
    timelines = video_timelines(setup, evaluation)
    colours = class_colours(setup.classes, setup.annotations.background)
    names = artifact_names([t.video for t in timelines])
    logged = []
    for timeline in sorted(timelines, key=lambda t: t.video)[: setup.cfg.tracking.timeline_videos]:
        path = f"{TIMELINES}/{names[timeline.video]}.png"
        tracking.log_figure(timeline_figure(timeline, setup.classes, colours), path)
        logged.append(path)
    overview = overview_figure(timelines, setup.classes, colours, split)
    tracking.log_figure(overview, f"{TIMELINES}/overview.png")
    return [*logged, f"{TIMELINES}/overview.png"]


def video_timelines(setup: TrainingSetup, evaluation: EvalResult) -> list[VideoTimeline]:
    """The evaluated videos with their sample times, read back from the feature store (the
    samples carry features and targets only)."""
    store = FeatureStore(setup.cfg.features.store)
    key = setup.spec.key()
    paths = {item.video: item.path for item in setup.annotations.items}
    timelines = []
    for video, true, scores in zip(
        evaluation.videos, evaluation.y_true, evaluation.scores, strict=True
    ):
        stored = store.get_or_discard(store.video_key(paths[video]), key)
        # Evaluated videos had features a moment ago; should one vanish, use step numbers.
        times = stored.times_s if stored is not None else np.arange(len(scores), dtype=float)
        timelines.append(timeline_of(video, times, true, scores))
    return timelines


def artifact_names(videos: list[str]) -> dict[str, str]:
    """Video key -> artifact name: the key without its extension, kept where two videos of
    one folder share a stem (``a.mp4``, ``a.mov``), as for the labelling outputs."""
    stems = [PurePosixPath(v).with_suffix("").as_posix() for v in videos]
    counts = Counter(stems)
    return {v: s if counts[s] == 1 else v for v, s in zip(videos, stems, strict=True)}


__all__ = ["artifact_names", "log_review", "video_timelines"]
