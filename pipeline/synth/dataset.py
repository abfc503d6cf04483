"""Synthetic labelled videos (real mp4 files) for the demo, the tests and benchmarks.

Two tasks, both deterministic per seed (same seed: byte-identical annotations, identical frames):

- ``clip``: one activity per video, folder-per-class layout ``OUT/<class>/<stem>.mp4`` plus
  ``OUT/labels.csv`` (``video,label,split``). Each pair in ``REVERSED_PAIRS`` holds the same
  frames in opposite temporal order, so no order-blind model can tell the pair apart.
- ``frame``: 3–8 activity segments per video with background gaps, ``OUT/videos/<stem>.mp4``
  plus ``OUT/segments.csv`` (``video,start,end,label,split``, seconds, end exclusive) and the
  MS-TCN layout ``OUT/groundTruth/<stem>.txt`` + ``OUT/mapping.txt``.

What the pixels look like, and why, is in ``pipeline/synth_render.py``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.errors import UserError
from pipeline.fileio import atomic_write_text
from pipeline.synth.render import (
    BACKGROUND,
    CLIP_CLASSES,
    FRAME_CLASSES,
    REVERSED_PAIRS,
    ClipVideo,
    FrameVideo,
    Segment,
    VideoSpec,
    frame_labels,
    iter_clip_frames,
    iter_frame_video_frames,
    render_clip,
    render_frame_video,
    sample_look,
)

__all__ = [
    "BACKGROUND",
    "CLIP_CLASSES",
    "FRAME_CLASSES",
    "FPS_CHOICES",
    "FRAME_SIZES",
    "REVERSED_PAIRS",
    "SPLITS",
    "ClipVideo",
    "FrameVideo",
    "PlannedVideo",
    "Segment",
    "SynthSummary",
    "VideoSpec",
    "frame_labels",
    "plan_clip_dataset",
    "plan_frame_dataset",
    "render_clip",
    "render_frame_video",
    "sample_clip_video",
    "segment_seconds",
    "split_counts",
    "write_dataset",
    "write_video",
]

FPS_CHOICES = (15, 24, 30)
FRAME_SIZES: tuple[tuple[int, int], ...] = (
    (160, 120),
    (192, 144),
    (240, 180),
    (256, 144),
    (320, 180),
    (320, 240),
)
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
FOURCC = "mp4v"  # the mp4 encoder that opencv-python-headless ships; avc1/H264 fail to open
_TASK_CODE = {"clip": 1, "frame": 2}  # keeps the two tasks' random streams apart per seed


class PlannedVideo(NamedTuple):
    """One video of a planned dataset: where it goes, its split, and what it shows."""

    relpath: str  # relative to the dataset root, with forward slashes
    split: str
    video: ClipVideo | FrameVideo


@dataclass(frozen=True)
class SynthSummary:
    """What ``write_dataset`` wrote."""

    task: str
    root: Path
    videos: int
    classes: tuple[str, ...]
    splits: dict[str, int]
    frames: int
    duration_s: float
    annotations: tuple[Path, ...]

    def describe(self) -> str:
        splits = ", ".join(f"{name} {self.splits.get(name, 0)}" for name in SPLITS)
        files = ", ".join(str(path) for path in self.annotations)
        return "\n".join(
            [
                f"wrote {self.videos} synthetic {self.task}-task videos to {self.root} "
                f"({self.frames} frames, {self.duration_s:.1f} s of video)",
                f"classes ({len(self.classes)}): {', '.join(self.classes)}",
                f"splits: {splits}",
                f"annotations: {files}",
            ]
        )


# --- planning ----------------------------------------------------------------------------------


def _video_rng(seed: int, task: str, index: int) -> np.random.Generator:
    return np.random.default_rng((seed, _TASK_CODE[task], 0, index))


def _sample_spec(
    rng: np.random.Generator, frames_for_fps: Callable[[int], int], sizes: Sequence[tuple[int, int]]
) -> VideoSpec:
    fps = int(rng.choice(FPS_CHOICES))
    width, height = sizes[int(rng.integers(len(sizes)))]
    return VideoSpec(
        width=width,
        height=height,
        fps=fps,
        frames=frames_for_fps(fps),
        seed=int(rng.integers(2**31)),
        noise=int(rng.integers(3, 9)),
    )


def sample_clip_video(
    rng: np.random.Generator,
    label: str,
    duration_s: tuple[float, float] = (2.0, 10.0),
    sizes: Sequence[tuple[int, int]] = FRAME_SIZES,
) -> ClipVideo:
    """Random size, frame rate, length (at least 2 frames), noise and look for one clip video."""
    duration = float(rng.uniform(*duration_s))
    spec = _sample_spec(rng, lambda fps: max(2, round(duration * fps)), sizes)
    return ClipVideo(spec=spec, label=label, look=sample_look(rng))


def split_counts(total: int, rotate: int = 0) -> tuple[int, int, int]:
    """Train/val/test counts for ``total`` videos by largest remainder; ties rotate with
    ``rotate`` so that small classes do not all round the same way. Train gets at least one."""
    raw = [total * fraction for fraction in SPLIT_FRACTIONS]
    counts = [int(value) for value in raw]
    order = sorted(range(3), key=lambda i: (counts[i] - raw[i], (i + rotate + 1) % 2))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    if total and counts[0] == 0:
        donor = max((1, 2), key=lambda i: counts[i])
        counts[donor] -= 1
        counts[0] += 1
    return counts[0], counts[1], counts[2]


def _split_labels(count: int, rng: np.random.Generator, rotate: int) -> list[str]:
    """``count`` split names, shuffled, in the stratified proportions."""
    names = [
        name for name, n in zip(SPLITS, split_counts(count, rotate), strict=True) for _ in range(n)
    ]
    return [names[i] for i in rng.permutation(count)]


def plan_clip_dataset(
    videos: int,
    seed: int,
    duration_s: tuple[float, float] = (2.0, 10.0),
    sizes: Sequence[tuple[int, int]] = FRAME_SIZES,
) -> list[PlannedVideo]:
    """Balanced classes (round robin), splits stratified per class; nothing rendered yet."""
    labels = [CLIP_CLASSES[i % len(CLIP_CLASSES)] for i in range(videos)]
    split_rng = np.random.default_rng((seed, _TASK_CODE["clip"], 1))
    splits: dict[str, list[str]] = {
        label: _split_labels(labels.count(label), split_rng, rotate=k)
        for k, label in enumerate(CLIP_CLASSES)
    }
    plan = []
    for index, label in enumerate(labels):
        video = sample_clip_video(_video_rng(seed, "clip", index), label, duration_s, sizes)
        number = index // len(CLIP_CLASSES)
        plan.append(PlannedVideo(f"{label}/{label}_{number:03d}.mp4", splits[label][number], video))
    return plan


def _segment_spans(
    lengths_s: np.ndarray, gaps_s: np.ndarray, fps: int
) -> tuple[list[tuple[int, int]], int]:
    """``[start_frame, end_frame)`` per segment and the total frame count: a gap leads, one
    separates each pair and one trails, every gap and segment at least one frame long."""
    spans, cursor = [], 0
    for length, gap in zip(lengths_s, gaps_s, strict=False):
        start = cursor + max(1, round(gap * fps))
        cursor = start + max(1, round(length * fps))
        spans.append((start, cursor))
    return spans, cursor + max(1, round(gaps_s[-1] * fps))


def _frame_layout(
    rng: np.random.Generator,
    sizes: Sequence[tuple[int, int]],
    segments: tuple[int, int],
    segment_s: tuple[float, float],
    gap_s: tuple[float, float],
) -> tuple[VideoSpec, list[tuple[int, int]]]:
    count = int(rng.integers(segments[0], segments[1] + 1))
    lengths_s = rng.uniform(*segment_s, size=count)
    gaps_s = rng.uniform(*gap_s, size=count + 1)
    spec = _sample_spec(rng, lambda fps: _segment_spans(lengths_s, gaps_s, fps)[1], sizes)
    return spec, _segment_spans(lengths_s, gaps_s, spec.fps)[0]


def _deal(rng: np.random.Generator, count: int) -> list[str]:
    """Labels from reshuffled decks of all classes: the first ``len(FRAME_CLASSES)`` dealt
    cover every class, and the rest stay balanced."""
    decks = -(-count // len(FRAME_CLASSES))
    cards = [FRAME_CLASSES[i] for _ in range(decks) for i in rng.permutation(len(FRAME_CLASSES))]
    return cards[:count]


def plan_frame_dataset(
    videos: int,
    seed: int,
    sizes: Sequence[tuple[int, int]] = FRAME_SIZES,
    segments: tuple[int, int] = (3, 8),
    segment_s: tuple[float, float] = (0.8, 2.0),
    gap_s: tuple[float, float] = (0.3, 1.2),
) -> list[PlannedVideo]:
    """Segment layouts first, then splits, then labels dealt to train videos first, so the
    train split holds every class as soon as it holds enough segments."""
    layouts = [
        _frame_layout(_video_rng(seed, "frame", i), sizes, segments, segment_s, gap_s)
        for i in range(videos)
    ]
    plan_rng = np.random.default_rng((seed, _TASK_CODE["frame"], 1))
    splits = _split_labels(videos, plan_rng, rotate=0)
    order = sorted(range(videos), key=lambda i: (SPLITS.index(splits[i]), i))
    cards = iter(_deal(plan_rng, sum(len(spans) for _, spans in layouts)))
    labelled: dict[int, FrameVideo] = {}
    for i in order:
        spec, spans = layouts[i]
        segs = tuple(Segment(s, e, next(cards), sample_look(plan_rng)) for s, e in spans)
        labelled[i] = FrameVideo(spec, segs)
    return [
        PlannedVideo(f"videos/video_{i:03d}.mp4", splits[i], labelled[i]) for i in range(videos)
    ]


# --- writing -----------------------------------------------------------------------------------


def _temp_path(path: Path) -> Path:
    # Same folder (so os.replace is atomic) and same suffix (FFmpeg picks the container by it).
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def write_video(frames: Iterable[np.ndarray], spec: VideoSpec, path: Path) -> None:
    """Encode ``frames`` (BGR uint8) as mp4, atomically: readers never see a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    writer = cv2.VideoWriter(
        str(temp), cv2.VideoWriter_fourcc(*FOURCC), spec.fps, (spec.width, spec.height)
    )
    try:
        if not writer.isOpened():
            raise UserError(f"OpenCV cannot write {FOURCC!r} mp4 video to {path.parent}")
        for frame in frames:
            writer.write(frame)
        writer.release()
        os.replace(temp, path)
    finally:
        writer.release()
        temp.unlink(missing_ok=True)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def segment_seconds(frame: int, fps: int) -> str:
    """``frame / fps`` rounded *down* to 6 decimals, exactly (integer arithmetic).

    Rounding down keeps ``start <= i / fps < end`` true for exactly the frames of
    ``[start_frame, end_frame)``: frames are at least 1/30 s apart, far more than 1 µs.
    """
    micros = frame * 1_000_000 // fps
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _frame_annotations(root: Path, plan: list[PlannedVideo]) -> tuple[Path, ...]:
    rows = []
    for item in plan:
        video = item.video
        assert isinstance(video, FrameVideo)
        for seg in video.segments:
            start = segment_seconds(seg.start_frame, video.spec.fps)
            end = segment_seconds(seg.end_frame, video.spec.fps)
            rows.append((item.relpath, start, end, seg.label, item.split))
        truth = "".join(f"{label}\n" for label in frame_labels(video))
        atomic_write_text(root / "groundTruth" / f"{Path(item.relpath).stem}.txt", truth)
    mapping = "".join(f"{i} {name}\n" for i, name in enumerate([BACKGROUND, *FRAME_CLASSES]))
    atomic_write_text(root / "mapping.txt", mapping)
    header = ("video", "start", "end", "label", "split")
    atomic_write_text(root / "segments.csv", _csv_text(header, rows))
    return (root / "segments.csv", root / "groundTruth", root / "mapping.txt")


def _clip_annotations(root: Path, plan: list[PlannedVideo]) -> tuple[Path, ...]:
    rows = [(item.relpath, _clip_label(item), item.split) for item in plan]
    atomic_write_text(root / "labels.csv", _csv_text(("video", "label", "split"), rows))
    return (root / "labels.csv",)


def _clip_label(item: PlannedVideo) -> str:
    assert isinstance(item.video, ClipVideo)
    return item.video.label


@dataclass(frozen=True)
class _Kind:
    """What differs between the two synthetic datasets."""

    marker: str  # the annotation file that marks a folder as this kind's dataset
    classes: tuple[str, ...]
    min_videos: int
    video_globs: tuple[str, ...]  # where its videos and per-video ground truth lie
    annotate: Callable[[Path, list[PlannedVideo]], tuple[Path, ...]]


_KINDS = {
    "clip": _Kind(
        "labels.csv", tuple(CLIP_CLASSES), len(CLIP_CLASSES),
        tuple(f"{name}/*.mp4" for name in CLIP_CLASSES), _clip_annotations,
    ),
    "frame": _Kind(
        "segments.csv", (BACKGROUND, *FRAME_CLASSES), 1,
        ("videos/*.mp4", "groundTruth/*.txt"), _frame_annotations,
    ),
}  # fmt: skip


def _check_out(root: Path, task: str) -> None:
    """Refuse to scatter files into a folder that is not (an earlier run of) this task's
    dataset: stale videos would silently join a folder-per-class dataset."""
    marker = _KINDS[task].marker
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not (root / marker).is_file():
        raise UserError(
            f"{root} is not empty and holds no synthetic {task} dataset "
            f"(no {marker}): choose a new or empty folder"
        )


def _remove_stale(root: Path, task: str, written: set[Path]) -> None:
    """Drop videos and ground-truth files of an earlier, larger run in the same folder."""
    candidates = [path for pattern in _KINDS[task].video_globs for path in root.glob(pattern)]
    stems = {path.stem for path in written}
    for path in candidates:
        if path not in written and not (path.suffix == ".txt" and path.stem in stems):
            path.unlink()


def _check_args(task: str, videos: int, seed: int, duration_s: tuple[float, float]) -> None:
    if task not in _KINDS:
        raise UserError(f"task must be clip or frame, got {task!r}")
    if seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    minimum = _KINDS[task].min_videos
    if videos < minimum:
        raise UserError(f"{task} task needs at least {minimum} videos, got {videos}")
    if not 0 < duration_s[0] <= duration_s[1]:
        raise UserError(f"duration range must satisfy 0 < low <= high, got {duration_s}")


def write_dataset(
    out: Path | str,
    *,
    task: str = "clip",
    videos: int = 60,
    seed: int = 0,
    on_video: Callable[[Path], None] | None = None,
    duration_s: tuple[float, float] = (2.0, 10.0),
    sizes: Sequence[tuple[int, int]] = FRAME_SIZES,
    segments: tuple[int, int] = (3, 8),
    segment_s: tuple[float, float] = (0.8, 2.0),
    gap_s: tuple[float, float] = (0.3, 1.2),
) -> SynthSummary:
    """Write a synthetic dataset of ``videos`` mp4 files and its annotation files under ``out``.

    ``duration_s`` applies to the clip task; the frame task's length follows from its
    ``segments`` count, ``segment_s`` and ``gap_s`` ranges. ``on_video(path)`` is called after
    each video is in place. Annotation files are written last, so they only ever describe
    videos that exist.
    """
    _check_args(task, videos, seed, duration_s)
    root = Path(out)
    _check_out(root, task)
    plans = {
        "clip": lambda: plan_clip_dataset(videos, seed, duration_s, sizes),
        "frame": lambda: plan_frame_dataset(videos, seed, sizes, segments, segment_s, gap_s),
    }
    plan = plans[task]()
    written = set()
    for item in plan:
        path = root / item.relpath
        frames = (
            iter_clip_frames(item.video)
            if isinstance(item.video, ClipVideo)
            else iter_frame_video_frames(item.video)
        )
        write_video(frames, item.video.spec, path)
        written.add(path)
        if on_video is not None:
            on_video(path)
    annotations = _KINDS[task].annotate(root, plan)
    _remove_stale(root, task, written)
    return _summary(task, root, plan, annotations)


def _summary(
    task: str, root: Path, plan: list[PlannedVideo], annotations: tuple[Path, ...]
) -> SynthSummary:
    specs = [item.video.spec for item in plan]
    return SynthSummary(
        task=task,
        root=root,
        videos=len(plan),
        classes=_KINDS[task].classes,
        splits={name: sum(item.split == name for item in plan) for name in SPLITS},
        frames=sum(spec.frames for spec in specs),
        duration_s=sum(spec.duration_s for spec in specs),
        annotations=annotations,
    )
