"""Ground truth beside the labels, for the review page (``vidtag label --truth FILE``).

The truth file is any annotation format training reads (:mod:`pipeline.data.annotations`:
segments CSV in seconds or frames, MS-TCN folder, clip CSV, MMAction2 list, folder per class).
Each labelled video is matched to its annotation by path, else by file name when that name is
unique in the annotations (labelling a copy of a dataset's test videos). Per video the page
gets the true segments (seconds) and, for a frame model, the frame metrics of the prediction
against the truth over every native frame (:func:`pipeline.training.metrics.frame_metrics`:
frame accuracy, macro F1, edit, F1@10/25/50), frame-exact: segments given in frames are
compared by frame index, segments in seconds by each frame's real presentation time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.config import DataConfig

if TYPE_CHECKING:
    from pipeline.data.annotations import Annotations, VideoAnnotation
    from pipeline.jobs import VideoRecord


def load_truth(
    source: Path, task: str, background: str | None, videos: Path, extensions: list[str]
) -> Annotations:
    """The annotations in ``source`` for a ``task`` model; raises AnnotationError (naming the
    file and the problem) for a file that is not one.

    A folder (MS-TCN, folder per class) is read with its videos under itself (a dataset's own
    layout), else under ``videos`` (the labelled folder); a file names its videos relative to
    its own folder, as in training.
    """
    from pipeline.data.annotations import AnnotationError, load_annotations

    source = Path(source).expanduser()

    def read(root: Path) -> Annotations:
        data = DataConfig(
            task=task, annotations=source, videos=root,
            background=background or "background", extensions=extensions,
        )  # fmt: skip
        return load_annotations(data)

    if source.is_dir():
        try:
            return read(source)
        except AnnotationError:
            pass  # its videos are elsewhere: the labelled folder's, or the error names it
    return read(videos)


def match(annotations: Annotations, records: list[VideoRecord]) -> dict[str, VideoAnnotation]:
    """Record video -> its annotation: same file, else the same (unique) file name."""
    by_path = {item.path.resolve(): item for item in annotations.items}
    names: dict[str, list[VideoAnnotation]] = {}
    for item in annotations.items:
        names.setdefault(item.path.name, []).append(item)
    found = {}
    for record in records:
        if not record.path:
            continue
        path = Path(record.path).resolve()
        item = by_path.get(path)
        if item is None and len(names.get(path.name, [])) == 1:
            item = names[path.name][0]
        if item is not None:
            found[record.video] = item
    return found


def truth_views(
    annotations: Annotations, records: list[VideoRecord], docs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Video -> ``{segments: [[label, start_s, end_s]], metrics, error}`` for the page; videos
    without an annotation get ``error`` "no truth for this video"."""
    matched = match(annotations, records)
    views = {}
    for record in records:
        doc = docs.get(record.video)
        if doc is None:
            continue
        item = matched.get(record.video)
        if item is None:
            views[record.video] = {"segments": [], "metrics": None, "error": "no truth"}
            continue
        try:
            views[record.video] = truth_view(item, doc, Path(record.path or item.path))
        except Exception as error:  # noqa: BLE001 - one video's truth never breaks the page
            views[record.video] = {"segments": [], "metrics": None, "error": f"truth: {error}"}
    return views


def truth_view(item: VideoAnnotation, doc: dict[str, Any], video: Path) -> dict[str, Any]:
    """One video's true segments (seconds) and the metrics of its labels against them."""
    duration = float(doc["info"]["duration_s"])
    if item.label is not None:  # a clip annotation
        predicted = (doc.get("clip") or doc["summary"])["label"]
        metrics = {"truth_label": item.label, "correct": predicted == item.label}
        return {"segments": [[item.label, 0.0, duration]], "metrics": metrics, "error": None}
    times = native_times(video, doc)
    bounds = np.append(times, duration)
    segments = []
    for segment in item.segments:
        if segment.label == item.background:
            continue
        if item.unit == "seconds":
            start, end = segment.start, segment.end
        else:  # native frame indices, end exclusive
            first = int(min(max(segment.start, 0), len(times)))
            last = int(min(max(segment.end, 0), len(times)))
            start, end = float(bounds[first]), float(bounds[last])
        segments.append([segment.label, round(start, 4), round(min(end, duration), 4)])
    metrics = None
    if doc.get("frames"):
        from pipeline.labeling.segments import expand_frame_runs
        from pipeline.training.metrics import frame_metrics

        predicted = expand_frame_runs(doc["frames"])
        true = item.labels_at(np.arange(len(predicted)), times[: len(predicted)])
        background = doc["model"].get("background")
        metrics = frame_metrics([predicted], [true], {background} if background else ())
        metrics = {name: round(value, 4) for name, value in metrics.items()}
    return {"segments": segments, "metrics": metrics, "error": None}


def native_times(video: Path, doc: dict[str, Any]) -> np.ndarray:
    """Every native frame's presentation time: the video's own (a demux-only scan), else
    ``i / fps`` when the video is gone."""
    frames = int(doc["info"]["frames"])
    try:
        from pipeline.video.decode import iter_chunks

        times = np.asarray(iter_chunks(video).times_s, dtype=np.float64)
        if len(times) == frames:
            return times
    except Exception:  # noqa: BLE001, S110 - moved or unreadable: fall back to the nominal rate
        pass
    return np.arange(frames, dtype=np.float64) / float(doc["info"]["fps"] or 30.0)
