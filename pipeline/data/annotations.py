"""Read the clip and frame label formats (README, "Annotation formats") into one ``Annotations``.

:func:`load_annotations` picks the reader from ``DataConfig``, so the rest of the pipeline never
sees formats. Class order (the position is the class id): a declared list keeps its order
(``data.class_names``, MS-TCN ``mapping.txt`` by id), else the labels in use, sorted; for the
frame task the background label is always id 0. Every problem a user can fix raises
:class:`AnnotationError` with ``file:line: problem``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, NamedTuple

import numpy as np

from pipeline.config import DataConfig
from pipeline.errors import UserError
from pipeline.fileio import UserTextError, read_user_text

Task = Literal["clip", "frame"]
Unit = Literal["seconds", "frames"]
SPLITS = ("train", "val", "test")


class AnnotationError(UserError, ValueError):
    """A label file or folder that cannot be used; the message names file, line and problem."""

    def __init__(self, file: Path | str, problem: str, line: int | None = None) -> None:
        self.file = Path(file)
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line is not None else f"{file}"
        super().__init__(f"{where}: {problem}")


class Segment(NamedTuple):
    """A half-open span ``[start, end)`` in seconds or native frame indices (see ``unit``)."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class VideoAnnotation:
    """One video's labels.

    ``video`` is the path relative to the dataset root in POSIX form: the stable id used in
    batches, outputs and the dataset fingerprint (absolute paths differ between machines).
    """

    video: str
    path: Path
    split: str | None = None
    label: str | None = None
    segments: tuple[Segment, ...] = ()
    unit: Unit = "seconds"
    background: str = "background"

    def labels_at(self, indices: np.ndarray, times_s: np.ndarray) -> list[str]:
        """The label of each sampled frame: by time for seconds, by native index for frames.

        A clip video labels every frame with its clip label. Uncovered frames get the
        background label. ``start <= position < end`` decides coverage.
        """
        count = len(indices)
        if self.label is not None:
            return [self.label] * count
        positions = np.asarray(times_s if self.unit == "seconds" else indices, dtype=np.float64)
        if not self.segments:
            return [self.background] * count
        # Segments are sorted and disjoint, so the last one starting at or before a position
        # is the only one that can cover it.
        starts = np.array([s.start for s in self.segments], dtype=np.float64)
        ends = np.array([s.end for s in self.segments], dtype=np.float64)
        which = np.searchsorted(starts, positions, side="right") - 1
        covered = (which >= 0) & (positions < ends[np.maximum(which, 0)])
        names = [s.label for s in self.segments]
        return [names[w] if c else self.background for w, c in zip(which, covered, strict=True)]


@dataclass(frozen=True)
class Annotations:
    """Every labelled video of a dataset; ``classes[i]`` is the name of class id ``i``."""

    task: Task
    classes: list[str]
    items: list[VideoAnnotation]
    background: str | None = None
    root: Path | None = field(default=None, compare=False)

    @property
    def class_to_id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}


# --- entry point ---------------------------------------------------------------------------


def load_annotations(cfg: DataConfig) -> Annotations:
    """Read ``cfg.annotations`` (or folder-per-class ``cfg.videos`` for the clip task).

    Detection: a folder with ``groundTruth/`` and ``mapping.txt`` is MS-TCN, another folder is
    folder-per-class; a ``.csv`` is read by its header; a ``.json`` is a Label Studio export
    (:mod:`pipeline.data.label_studio`); any other file is an MMAction2 list.
    With ``cfg.split_file``, the MS-TCN split bundles give every video its split
    (:mod:`pipeline.data.bundles`).
    """
    annotations = _read_labels(cfg)
    if cfg.split_file is None:
        return annotations
    from pipeline.data.bundles import apply_split_bundles

    return apply_split_bundles(annotations, cfg.split_file, cfg.fold, cfg.extensions)


def _read_labels(cfg: DataConfig) -> Annotations:
    source = cfg.annotations
    if source is None:
        needs_file = f"the {cfg.task} task needs a label file"
        _require_task(CLASS_FOLDERS, cfg.task, "data.annotations", needs_file)
        if cfg.videos is None:
            raise AnnotationError("data.videos", "set data.videos or data.annotations")
        return read_class_folders(cfg.videos, cfg.extensions, _declared_classes(cfg))
    if source.is_dir():
        if (source / "groundTruth").is_dir() and (source / "mapping.txt").is_file():
            _require_task(MSTCN, cfg.task, source)
            return read_mstcn(source, _videos_folder(cfg), cfg.extensions, cfg.background)
        not_mstcn = "not an MS-TCN folder (needs groundTruth/, mapping.txt)"
        _require_task(CLASS_FOLDERS, cfg.task, source, not_mstcn)
        return read_class_folders(source, cfg.extensions, _declared_classes(cfg))
    if not source.is_file():
        raise AnnotationError(source, "annotation file or folder not found")
    if source.suffix.lower() == ".csv":
        return read_csv(source, cfg.task, _declared_classes(cfg), cfg.background)
    if source.suffix.lower() == ".json":
        from pipeline.data.label_studio import read_label_studio

        _require_task(LABEL_STUDIO, cfg.task, source)
        declared = _declared_classes(cfg)
        return read_label_studio(source, _videos_folder(cfg), declared, cfg.background)
    _require_task(MMACTION, cfg.task, source)
    if cfg.class_names is None:
        raise AnnotationError(source, "an MMAction2 list needs data.class_names (names file)")
    root = cfg.videos if cfg.videos is not None and cfg.videos.is_dir() else source.parent
    return read_mmaction_list(source, read_class_names(cfg.class_names), root)


# Each label format holds one task's labels (a CSV's header tells which of its two it is).
CLASS_FOLDERS, MMACTION, CLIP_CSV = "folder per class", "an MMAction2 list", "a video,label CSV"
MSTCN, SEGMENTS_CSV = "an MS-TCN folder", "a segments CSV"
LABEL_STUDIO = "a Label Studio JSON export"
FORMAT_TASK = {
    CLASS_FOLDERS: "clip",
    MMACTION: "clip",
    CLIP_CSV: "clip",
    MSTCN: "frame",
    SEGMENTS_CSV: "frame",
    LABEL_STUDIO: "frame",
}


def _require_task(fmt: str, task: str, where: Path | str, problem: str | None = None) -> None:
    """Refuse a format that cannot hold ``task``'s labels, saying which task it holds."""
    wanted = FORMAT_TASK[fmt]
    if task != wanted:
        raise AnnotationError(
            where, problem or f"{fmt} holds {wanted} labels: set data.task: {wanted}"
        )


def _declared_classes(cfg: DataConfig) -> list[str] | None:
    return read_class_names(cfg.class_names) if cfg.class_names is not None else None


def _videos_folder(cfg: DataConfig) -> Path:
    if cfg.videos is None or not cfg.videos.is_dir():
        raise AnnotationError(
            "data.videos", f"these frame labels need data.videos to be a folder, got {cfg.videos}"
        )
    return cfg.videos


# --- clip formats --------------------------------------------------------------------------


def read_class_folders(
    root: Path, extensions: Sequence[str], declared: list[str] | None = None
) -> Annotations:
    """``root/<class>/<video>`` (videos anywhere below the class folder); loose files ignored."""
    if not root.is_dir():
        raise AnnotationError(root, "videos folder not found")
    root = root.resolve()
    wanted = {e.lower() for e in extensions}
    items = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p.name)):
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() in wanted and path.is_file() and _visible_below(path, root):
                key = path.relative_to(root).as_posix()
                items.append(VideoAnnotation(video=key, path=path, label=class_dir.name))
    if not items:
        raise AnnotationError(root, "no videos found in class folders (root/<class>/<video>)")
    labels = [(item.label, root, None) for item in items]
    return Annotations("clip", _clip_classes(labels, declared), items, root=root)


def read_class_names(path: Path) -> list[str]:
    """One class name per line; line ``i`` (from 0) is class id ``i``."""
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise AnnotationError(path, "empty class name (a blank line shifts every id)", number)
        if name in names:
            raise AnnotationError(path, f"duplicate class name {name!r}", number)
        names.append(name)
    if not names:
        raise AnnotationError(path, "no class names")
    return names


def read_mmaction_list(path: Path, class_names: list[str], root: Path) -> Annotations:
    """``relative/path.mp4 <label_id>`` per line, paths under ``root``; ``#`` starts a comment."""
    root = root.resolve()
    items: list[VideoAnnotation] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        # The id is the last field, so paths may contain spaces.
        parts = text.rsplit(maxsplit=1)
        if len(parts) != 2 or not _is_int(parts[1]):
            raise AnnotationError(path, f"expected '<path> <label_id>', got {text!r}", number)
        label_id = int(parts[1])
        if not 0 <= label_id < len(class_names):
            problem = f"label id {label_id} not in the class list (0..{len(class_names) - 1})"
            raise AnnotationError(path, problem, number)
        key, video = _video_path(parts[0], root, path, number)
        _check_unique(key, seen, path, number)
        items.append(VideoAnnotation(video=key, path=video, label=class_names[label_id]))
    _check_not_empty(items, path)
    return Annotations("clip", list(class_names), items, root=root)


# --- CSV (clip or frame, chosen by header) -------------------------------------------------

_CLIP_COLUMNS = ({"video", "label"}, {"split"})
_SECONDS_COLUMNS = ({"video", "start", "end", "label"}, {"split"})
_FRAMES_COLUMNS = ({"video", "start_frame", "end_frame", "label"}, {"split"})


class _Row(NamedTuple):
    line: int
    values: dict[str, str]


def read_csv(
    path: Path, task: Task, declared: list[str] | None = None, background: str = "background"
) -> Annotations:
    """A clip CSV (``video,label[,split]``) or segments CSV, told apart by the header."""
    header, rows = _read_csv_rows(path)
    columns = set(header)
    if {"start", "end"} & columns or {"start_frame", "end_frame"} & columns:
        _require_task(SEGMENTS_CSV, task, path)
        unit: Unit = "seconds" if {"start", "end"} & columns else "frames"
        _check_columns(path, header, _SECONDS_COLUMNS if unit == "seconds" else _FRAMES_COLUMNS)
        return _segments_from_rows(path, rows, unit, declared, background)
    _require_task(CLIP_CSV, task, path)
    _check_columns(path, header, _CLIP_COLUMNS)
    return _clips_from_rows(path, rows, declared)


def _read_csv_rows(path: Path) -> tuple[list[str], list[_Row]]:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if not any(header):
        raise AnnotationError(path, "empty file: expected a header line", 1)
    rows = []
    for fields_ in reader:
        if not any(f.strip() for f in fields_):
            continue
        if len(fields_) != len(header):
            problem = f"expected {len(header)} fields ({','.join(header)}), got {len(fields_)}"
            raise AnnotationError(path, problem, reader.line_num)
        values = {h: f.strip() for h, f in zip(header, fields_, strict=True)}
        rows.append(_Row(reader.line_num, values))
    return header, rows


def _check_columns(path: Path, header: list[str], allowed: tuple[set[str], set[str]]) -> None:
    required, optional = allowed
    missing = sorted(required - set(header))
    unknown = sorted(set(header) - required - optional)
    if missing or unknown or len(set(header)) != len(header):
        expected = ",".join(sorted(required)) + "".join(f"[,{o}]" for o in sorted(optional))
        problem = f"bad header {','.join(header)!r}: expected columns {expected}"
        if missing:
            problem += f"; missing {', '.join(missing)}"
        if unknown:
            problem += f"; unknown {', '.join(unknown)}"
        raise AnnotationError(path, problem, 1)


def _clips_from_rows(path: Path, rows: list[_Row], declared: list[str] | None) -> Annotations:
    root = path.parent.resolve()
    items = []
    labels = []
    seen: dict[str, int] = {}
    for row in rows:
        label = _required(row, "label", path)
        key, video = _video_path(_required(row, "video", path), root, path, row.line)
        _check_unique(key, seen, path, row.line)
        items.append(VideoAnnotation(key, video, _split(row, path), label=label))
        labels.append((label, path, row.line))
    _check_not_empty(items, path)
    _check_splits_all_or_none(items, [seen[i.video] for i in items], path)
    return Annotations("clip", _clip_classes(labels, declared), items, root=root)


def _segments_from_rows(
    path: Path, rows: list[_Row], unit: Unit, declared: list[str] | None, background: str
) -> Annotations:
    root = path.parent.resolve()
    start_key, end_key = ("start", "end") if unit == "seconds" else ("start_frame", "end_frame")
    by_video: dict[str, list[tuple[int, Segment]]] = {}
    videos: dict[str, Path] = {}
    splits: dict[str, tuple[str | None, int]] = {}
    labels = []
    for row in rows:
        key, video = _video_path(_required(row, "video", path), root, path, row.line)
        start = _number(row, start_key, unit, path)
        end = _number(row, end_key, unit, path)
        if end <= start:
            problem = f"{end_key} ({end:g}) must be greater than {start_key} ({start:g})"
            raise AnnotationError(path, problem, row.line)
        label = _required(row, "label", path)
        labels.append((label, path, row.line))
        _check_same_split(key, _split(row, path), row.line, splits, path)
        videos[key] = video
        by_video.setdefault(key, []).append((row.line, Segment(start, end, label)))
    _check_not_empty(videos, path)
    classes = _frame_classes(labels, declared, background)
    items = [
        VideoAnnotation(
            video=key,
            path=videos[key],
            split=splits[key][0],
            segments=_sorted_disjoint(segments, path, background),
            unit=unit,
            background=background,
        )
        for key, segments in sorted(by_video.items())
    ]
    _check_splits_all_or_none(items, [splits[i.video][1] for i in items], path)
    return Annotations("frame", classes, items, background=background, root=root)


def _sorted_disjoint(
    numbered: list[tuple[int, Segment]], path: Path, background: str
) -> tuple[Segment, ...]:
    ordered = sorted(numbered, key=lambda pair: (pair[1].start, pair[1].end))
    for (line_a, a), (line_b, b) in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            problem = (
                f"segment [{b.start:g}, {b.end:g}) {b.label!r} overlaps "
                f"[{a.start:g}, {a.end:g}) {a.label!r} from line {line_a}"
            )
            raise AnnotationError(path, problem, line_b)
    return tuple(s for _, s in ordered if s.label != background)


# --- MS-TCN --------------------------------------------------------------------------------


def read_mstcn(
    folder: Path, videos: Path, extensions: Sequence[str], background: str = "background"
) -> Annotations:
    """``groundTruth/<stem>.txt`` (one label per native frame) + ``mapping.txt`` (id name).

    Each ground-truth file names its video by stem, found anywhere under ``videos``.
    """
    mapping = read_mapping(folder / "mapping.txt")
    root = videos.resolve()
    by_stem = _videos_by_stem(root, extensions)
    items = []
    for gt in sorted((folder / "groundTruth").glob("*.txt")):
        matches = by_stem.get(gt.stem, [])
        if len(matches) != 1:
            problem = (
                f"no video with stem {gt.stem!r} under {root}"
                if not matches
                else f"several videos with stem {gt.stem!r}: {', '.join(map(str, matches))}"
            )
            raise AnnotationError(gt, problem)
        video = matches[0]
        segments = _frame_runs(gt, set(mapping), background)
        key = video.relative_to(root).as_posix()
        items.append(
            VideoAnnotation(key, video, segments=segments, unit="frames", background=background)
        )
    _check_not_empty(items, folder / "groundTruth")
    classes = [background] + [name for name in mapping if name != background]
    return Annotations("frame", classes, items, background=background, root=root)


def read_mapping(path: Path) -> list[str]:
    """``<id> <name>`` per line; returns the names ordered by id."""
    by_id: dict[int, str] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or not _is_int(parts[0]):
            raise AnnotationError(path, f"expected '<id> <name>', got {text!r}", number)
        class_id, name = int(parts[0]), parts[1].strip()
        if class_id in by_id or name in by_id.values():
            raise AnnotationError(path, f"duplicate id or name in {text!r}", number)
        by_id[class_id] = name
    if not by_id:
        raise AnnotationError(path, "no classes")
    return [by_id[i] for i in sorted(by_id)]


def _frame_runs(path: Path, known: set[str], background: str) -> tuple[Segment, ...]:
    """Runs of equal labels as frame segments; background runs dropped (same as uncovered)."""
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    segments: list[Segment] = []
    run_start, run_label = 0, None
    for index, line in enumerate(lines):
        label = line.strip()
        if not label:
            raise AnnotationError(path, "empty line (a blank line shifts every frame)", index + 1)
        if label not in known and label != background:
            raise AnnotationError(path, f"label {label!r} not in mapping.txt", index + 1)
        if label != run_label:
            if run_label is not None and run_label != background:
                segments.append(Segment(run_start, index, run_label))
            run_start, run_label = index, label
    if run_label is not None and run_label != background:
        segments.append(Segment(run_start, len(lines), run_label))
    return tuple(segments)


def _videos_by_stem(root: Path, extensions: Sequence[str]) -> dict[str, list[Path]]:
    wanted = {e.lower() for e in extensions}
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in wanted and path.is_file() and _visible_below(path, root):
            by_stem.setdefault(path.stem, []).append(path)
    return by_stem


# --- shared checks -------------------------------------------------------------------------


def _video_path(raw: str, root: Path, source: Path, line: int) -> tuple[str, Path]:
    """Key and absolute path of a video named relative to ``root``; it must exist under it.

    The containment check is lexical (after collapsing ``..``), not through symlinks, so a
    dataset whose videos are symlinks into shared storage still loads.
    """
    if not raw:
        raise AnnotationError(source, "empty video path", line)
    relative = PurePosixPath(raw.replace("\\", "/"))
    if relative.is_absolute() or PureWindowsPath(raw).drive:
        problem = f"absolute video path {raw!r}: write it relative to {root}"
        raise AnnotationError(source, problem, line)
    normal = os.path.normpath(relative.as_posix())
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise AnnotationError(source, f"video path {raw!r} escapes the dataset root {root}", line)
    path = root / normal
    if not path.is_file():
        raise AnnotationError(source, f"unknown video {raw!r}: no file {path}", line)
    return PurePosixPath(normal).as_posix(), path


def _required(row: _Row, column: str, path: Path) -> str:
    value = row.values.get(column, "")
    if not value:
        raise AnnotationError(path, f"empty {column}", row.line)
    return value


def _number(row: _Row, column: str, unit: Unit, path: Path) -> float:
    raw = _required(row, column, path)
    if unit == "frames":
        if not _is_int(raw):
            raise AnnotationError(path, f"{column} {raw!r} is not a frame index", row.line)
        value: float = int(raw)
    else:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise AnnotationError(path, f"{column} {raw!r} is not a number of seconds", row.line)
    if value < 0:
        raise AnnotationError(path, f"{column} {raw!r} is negative", row.line)
    return value


def _split(row: _Row, path: Path) -> str | None:
    value = row.values.get("split", "").lower()
    if not value:
        return None
    if value not in SPLITS:
        problem = f"split {value!r} is not one of {', '.join(SPLITS)}"
        raise AnnotationError(path, problem, row.line)
    return value


def _check_same_split(
    key: str, split: str | None, line: int, splits: dict[str, tuple[str | None, int]], path: Path
) -> None:
    if key in splits and splits[key][0] != split:
        first, first_line = splits[key]
        problem = f"inconsistent split for {key!r}: {split!r} here, {first!r} on line {first_line}"
        raise AnnotationError(path, problem, line)
    splits.setdefault(key, (split, line))


def _check_splits_all_or_none(items: list[VideoAnnotation], lines: list[int], path: Path) -> None:
    """Half-given splits are ambiguous: every video names its split, or none does."""
    given = [item.split is not None for item in items]
    if any(given) and not all(given):
        line = lines[given.index(False)]
        video = items[given.index(False)].video
        problem = f"inconsistent split: {video!r} has none while other videos have one"
        raise AnnotationError(path, problem, line)


def _check_unique(key: str, seen: dict[str, int], path: Path, line: int) -> None:
    if key in seen:
        raise AnnotationError(path, f"duplicate video {key!r} (first on line {seen[key]})", line)
    seen[key] = line


def _check_not_empty(items: Iterable[Any] | Mapping[str, Any], path: Path) -> None:
    if not items:
        raise AnnotationError(path, "no labelled videos")


def _clip_classes(
    labels: list[tuple[str | None, Path, int | None]], declared: list[str] | None
) -> list[str]:
    used = [label for label, _, _ in labels if label is not None]
    if declared is None:
        return sorted(set(used))
    _check_declared(labels, set(declared))
    return list(declared)


def _frame_classes(
    labels: list[tuple[str, Path, int | None]], declared: list[str] | None, background: str
) -> list[str]:
    if declared is None:
        others = sorted({label for label, _, _ in labels} - {background})
    else:
        _check_declared(labels, set(declared) | {background})
        others = [name for name in declared if name != background]
    return [background, *others]


def _check_declared(labels: list[tuple[Any, Path, int | None]], declared: set[str]) -> None:
    for label, source, line in labels:
        if label not in declared:
            problem = f"label {label!r} not in the class list ({', '.join(sorted(declared))})"
            raise AnnotationError(source, problem, line)


def _read_text(path: Path) -> str:
    try:
        return read_user_text(path, "label file")
    except UserTextError as exc:
        raise AnnotationError(path, exc.problem, exc.line) from None


def _read_lines(path: Path) -> list[str]:
    return _read_text(path).splitlines()


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit() and text.isascii()


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _visible_below(path: Path, root: Path) -> bool:
    return all(_visible(part) for part in path.relative_to(root).parts)


__all__ = [
    "AnnotationError",
    "Annotations",
    "Segment",
    "VideoAnnotation",
    "load_annotations",
    "read_class_folders",
    "read_class_names",
    "read_csv",
    "read_mapping",
    "read_mmaction_list",
    "read_mstcn",
]
