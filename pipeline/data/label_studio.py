"""Label Studio's video frame numbering, and its JSON export read as frame labels.

Label Studio's ``<Video>`` tag numbers frames from 1 at ``frameRate`` per second (the label
config's ``frameRate="$fps"`` reads each task's ``data.fps``): frame ``n`` is shown from
``(n - 1) / fps`` to ``n / fps``. A ``TimelineLabels`` region is
``{"ranges": [{"start": a, "end": b}], "timelinelabels": [label]}`` with ``a`` and ``b``
**inclusive** (a one-frame region has ``a == b``; see the tool's ``TimelineRegion.js``).

Both directions go through real time: a native frame with presentation time ``t`` is Label
Studio frame ``round(t * fps) + 1`` (the nearest; exact for constant frame rates, where it is
the native index plus one). So a region ``[a, b]`` covers exactly the frames with
``a - 1.5 <= t * fps < b - 0.5``: read back as the half-open segment
``[(a - 1.5) / fps, (b - 0.5) / fps)`` seconds, which labels every sampled frame as the tool
showed it, frame for frame, and is robust to timestamps a rounding error off the grid.

:func:`read_label_studio` reads a project's JSON export (``Export`` → ``JSON``: a list of
tasks) into :class:`~pipeline.data.annotations.Annotations` for the frame task: per task the
latest annotation that was not cancelled; tasks without one are left out (and counted).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pipeline.data.annotations import (
    AnnotationError,
    Annotations,
    Segment,
    VideoAnnotation,
    _frame_classes,
)

log = logging.getLogger(__name__)

REGION_TYPE = "timelinelabels"
# Label Studio prefixes uploaded files with 8 hex digits: /data/upload/3/1a2b3c4d-clip.mp4
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def ls_frame(time_s: float, fps: float) -> int:
    """The 1-based Label Studio frame shown at presentation time ``time_s``."""
    return int(round(time_s * fps)) + 1


def ls_range(start_s: float, end_s: float, fps: float, frame_count: int) -> tuple[int, int]:
    """Inclusive Label Studio frames of the half-open span ``[start_s, end_s)`` (``end_s`` is
    the time of the first frame after it, or the video's end), within ``1..frame_count``."""
    first = ls_frame(start_s, fps)
    last = min(ls_frame(end_s, fps) - 1, frame_count)
    return first, max(first, last)


def range_seconds(start: int, end: int, fps: float) -> tuple[float, float]:
    """Half-open seconds covering exactly the frames Label Studio shows as ``start..end``."""
    return max(0.0, (start - 1.5) / fps), (end - 0.5) / fps


# --- reading an export -------------------------------------------------------------------------


def read_label_studio(
    path: Path, videos: Path, declared: list[str] | None = None, background: str = "background"
) -> Annotations:
    """A Label Studio JSON export -> frame annotations of the videos under ``videos``."""
    tasks = _load_tasks(path)
    root = videos.resolve()
    items: list[VideoAnnotation] = []
    labels: list[tuple[str, Path, int | None]] = []
    seen: dict[str, int] = {}
    unlabelled = 0
    for task in tasks:
        where = f"task {task.get('id', '?')}"
        annotation = latest_annotation(task)
        if annotation is None:
            unlabelled += 1
            continue
        key, video = _video_of(task, root, path, where)
        if key in seen:
            raise AnnotationError(path, f"{where}: video {key!r} is also task {seen[key]}")
        seen[key] = task.get("id", len(seen))
        fps = _fps(task, annotation, path, where)
        segments = _segments(annotation, fps, path, where)
        labels.extend((segment.label, path, None) for segment in segments)
        items.append(
            VideoAnnotation(key, video, segments=segments, unit="seconds", background=background)
        )
    if unlabelled:
        log.warning("%s: %d of %d tasks have no annotation, left out", path, unlabelled, len(tasks))
    if not items:
        raise AnnotationError(path, f"no annotated tasks among {len(tasks)}")
    classes = _frame_classes(labels, declared, background)
    return Annotations("frame", classes, sorted(items, key=lambda i: i.video), background, root)


def _load_tasks(path: Path) -> list[dict[str, Any]]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise AnnotationError(path, "expected a Label Studio JSON export: a list of tasks")
    return tasks


def latest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    """The task's most recently updated annotation that was not cancelled (skipped)."""
    kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not kept:
        return None
    return max(kept, key=lambda a: (str(a.get("updated_at") or ""), a.get("id") or 0))


def _video_of(task: dict[str, Any], root: Path, path: Path, where: str) -> tuple[str, Path]:
    """The task's video under ``root``: vidtag's ``data.vidtag_video`` when vidtag exported the
    task, else the longest tail of the ``data.video`` URL's path that names a file there, else
    the one file there with its name (an upload's copy; the upload prefix taken off)."""
    data = task.get("data") or {}
    named = data.get("vidtag_video")
    if isinstance(named, str) and (root / named).is_file():
        return PurePosixPath(named).as_posix(), root / named
    url = data.get("video")
    if not isinstance(url, str) or not url:
        raise AnnotationError(path, f"{where}: no data.video")
    parsed = urlparse(url)
    raw = parse_qs(parsed.query).get("d", [parsed.path])[0]
    parts = [p for p in unquote(raw).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts and _UPLOAD_PREFIX.match(parts[-1]):
        parts = [*parts[:-1], _UPLOAD_PREFIX.sub("", parts[-1])]
    for first in range(len(parts)):
        candidate = root.joinpath(*parts[first:])
        if candidate.is_file():
            return PurePosixPath(*parts[first:]).as_posix(), candidate
    # An uploaded file lost its folder: its name alone, if only one video under root has it.
    named_so = sorted(root.rglob(parts[-1])) if parts else []
    if len(named_so) == 1 and named_so[0].is_file():
        return named_so[0].relative_to(root).as_posix(), named_so[0]
    raise AnnotationError(path, f"{where}: no video under {root} matches data.video {url!r}")


def _fps(task: dict[str, Any], annotation: dict[str, Any], path: Path, where: str) -> float:
    """The frame rate Label Studio numbered this task's frames at: ``data.fps`` (vidtag's
    export puts it there and its label config reads it), else a region's
    ``framesCount / duration``."""
    fps = (task.get("data") or {}).get("fps")
    if fps is None:
        for result in annotation.get("result") or []:
            value = result.get("value") or {}
            if value.get("framesCount") and value.get("duration"):
                fps = value["framesCount"] / value["duration"]
                break
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        fps = math.nan
    if not math.isfinite(fps) or fps <= 0:
        raise AnnotationError(
            path,
            f"{where}: no frame rate: give each task data.fps (as `vidtag export LABELLED "
            f'--to label-studio` does) and frameRate="$fps" on the label config\'s <Video>',
        )
    return fps


def _frame_number(value: Any) -> int | None:
    """A whole frame number (Label Studio's SDK types ranges as numbers: 5.0 is frame 5)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def _segments(
    annotation: dict[str, Any], fps: float, path: Path, where: str
) -> tuple[Segment, ...]:
    """The annotation's timeline regions as sorted, disjoint seconds segments; regions of one
    label that touch or overlap merge, regions of two labels may not overlap."""
    frames: list[tuple[int, int, str]] = []
    for result in annotation.get("result") or []:
        if result.get("type") != REGION_TYPE:
            continue
        value = result.get("value") or {}
        names = value.get(REGION_TYPE) or []
        if len(names) != 1:
            problem = f"{where}: region {result.get('id')} has labels {names}: give it one label"
            raise AnnotationError(path, problem)
        for span in value.get("ranges") or []:
            start, end = _frame_number(span.get("start")), _frame_number(span.get("end"))
            if start is None or end is None or not 1 <= start <= end:
                problem = (
                    f"{where}: region {result.get('id')} has a bad range {span} (video frames "
                    f"are whole numbers from 1, start <= end)"
                )
                raise AnnotationError(path, problem)
            frames.append((start, end, str(names[0])))
    merged: list[tuple[int, int, str]] = []
    for start, end, label in sorted(frames):
        if merged and start <= merged[-1][1] + 1:
            last_start, last_end, last_label = merged[-1]
            if label == last_label:
                merged[-1] = (last_start, max(last_end, end), label)
                continue
            if start <= last_end:
                problem = (
                    f"{where}: frames {start}-{end} {label!r} overlap frames "
                    f"{last_start}-{last_end} {last_label!r}: one label per frame"
                )
                raise AnnotationError(path, problem)
        merged.append((start, end, label))
    return tuple(Segment(*range_seconds(s, e, fps), label) for s, e, label in merged)


__all__ = ["latest_annotation", "ls_frame", "ls_range", "range_seconds", "read_label_studio"]
