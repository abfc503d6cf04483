"""A real-footage montage set for ``benchmarks/quality.py``: cuts of real scenes, one class each.

Every source video (real footage of at least ``MIN_SOURCE_S`` seconds) is one scene, so one
class. Each source is resampled to the montage rate and split in time: its first
``train_fraction`` of frames feeds the train montages, the rest the test montages, so no test
frame was ever seen in training. With ``val`` montages, the last ``val_fraction`` of every
source's train part feeds them instead: the train montages reuse their part's frames (there is
little real footage), so validation videos carved out of them would share frames with training
and neither early stopping nor the merge length chosen on them would see unseen footage.
A montage concatenates ``clips`` cuts (4-7 by default) of
different sources, no two neighbours alike, each cut a random span of its source's part. The
ground truth is frame-exact: a cut's frames are its source's label, written as a segments CSV
with native frame indices (``video,start_frame,end_frame,label,split``), the format vidtag
trains on.

The planning (:func:`plan_montages`, :func:`montage_labels`, :func:`segment_rows`) is pure and
seeded; :func:`build_montage_set` decodes the sources, writes the montages as mp4 files and
the CSV into a folder, and reuses that folder when it is complete.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

SOURCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
MIN_SOURCE_S = 3.0
# One 0.1-s scene rotated four ways (too short anyway; named so that it stays out).
EXCLUDED_PREFIXES = ("decord_video_",)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm")


class Cut(NamedTuple):
    source: str  # the source's name, also its class
    start: int  # first frame in the source's resampled timeline
    end: int  # one past the last


class Montage(NamedTuple):
    name: str  # file stem
    split: str  # train | test
    cuts: tuple[Cut, ...]

    @property
    def frames(self) -> int:
        return sum(cut.end - cut.start for cut in self.cuts)


@dataclass(frozen=True)
class MontagePlan:
    """What a montage set is made of; its hash names the cache folder."""

    train: int = 16  # montages
    test: int = 8
    val: int = 4  # 0: none (then vidtag carves validation videos out of the train montages)
    seed: int = 0
    fps: int = 20  # the montages' native rate
    width: int = 160
    height: int = 120
    train_fraction: float = 0.6  # of every source's frames, from its start
    val_fraction: float = 0.15  # of every source's frames, the end of its train part
    min_clips: int = 4
    max_clips: int = 7
    min_cut_s: float = 1.0
    max_cut_s: float = 2.5

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def part_of(length: int, split: str, plan: MontagePlan) -> tuple[int, int]:
    """The ``[start, end)`` frames of a source that ``split`` may cut from: train the first
    ``train_fraction`` (less its last ``val_fraction`` when there are val montages), val that
    last piece, test the rest. Disjoint; each non-empty for a source of >= 3 frames."""
    if length < 3:
        raise ValueError(f"a source needs at least 3 frames to split, got {length}")
    test_start = min(max(int(length * plan.train_fraction), 2), length - 1)
    val_start = test_start
    if plan.val:
        val_start = min(
            max(int(length * (plan.train_fraction - plan.val_fraction)), 1), test_start - 1
        )
    parts = {"train": (0, val_start), "val": (val_start, test_start), "test": (test_start, length)}
    if split not in parts or (split == "val" and not plan.val):
        allowed = sorted(parts) if plan.val else ["test", "train"]
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    return parts[split]


def plan_montages(
    lengths: dict[str, int], split: str, count: int, plan: MontagePlan
) -> list[Montage]:
    """``count`` montages of ``split`` from sources of ``lengths`` frames (at ``plan.fps``).

    Seeded by ``plan.seed`` and the split. Every montage has ``min_clips``-``max_clips`` cuts,
    neighbours from different sources; a cut lasts ``min_cut_s``-``max_cut_s`` seconds, or the
    whole part when the part is shorter.
    """
    if len(lengths) < 2:
        raise ValueError("a montage needs at least two sources")
    rng = np.random.default_rng([plan.seed, ("train", "test", "val").index(split)])
    names = sorted(lengths)
    parts = {name: part_of(lengths[name], split, plan) for name in names}
    lo, hi = round(plan.min_cut_s * plan.fps), round(plan.max_cut_s * plan.fps)
    montages = []
    for index in range(count):
        clips = int(rng.integers(plan.min_clips, plan.max_clips + 1))
        cuts: list[Cut] = []
        for _ in range(clips):
            choices = [n for n in names if not cuts or n != cuts[-1].source]
            source = choices[int(rng.integers(len(choices)))]
            start, end = parts[source]
            length = min(int(rng.integers(lo, hi + 1)), end - start)
            first = start + int(rng.integers(0, end - start - length + 1))
            cuts.append(Cut(source, first, first + length))
        montages.append(Montage(f"{split}_{index:02d}", split, tuple(cuts)))
    return montages


def montage_labels(montage: Montage) -> list[str]:
    """The label of every frame of ``montage``, in order."""
    return [cut.source for cut in montage.cuts for _ in range(cut.end - cut.start)]


def segment_rows(montages: Sequence[Montage], folder: str = "videos") -> list[tuple]:
    """``(video, start_frame, end_frame, label, split)`` per cut (native frames, end
    exclusive); neighbouring cuts never share a source, so every cut is one segment."""
    rows = []
    for montage in montages:
        at = 0
        for cut in montage.cuts:
            length = cut.end - cut.start
            video = f"{folder}/{montage.name}.mp4"
            rows.append((video, at, at + length, cut.source, montage.split))
            at += length
    return rows


def segments_csv(rows: Sequence[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("video", "start_frame", "end_frame", "label", "split"))
    writer.writerows(rows)
    return buffer.getvalue()


# --- files -------------------------------------------------------------------------------------


def source_paths(folder: Path = SOURCES) -> list[Path]:
    """The candidate sources: video files, the rotated 0.1-s scene left out."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(EXCLUDED_PREFIXES)
    )


def resample(times_s: np.ndarray, fps: float) -> np.ndarray:
    """Indices into frames shown at ``times_s`` of the frame shown at each ``k / fps``, over
    the span the frames cover (a frame lasts until the next; the last one a median step)."""
    step = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1.0 / fps
    end = float(times_s[-1]) + step
    targets = np.arange(0.0, end - 1e-9, 1.0 / fps) + float(times_s[0])
    return np.clip(np.searchsorted(times_s, targets, side="right") - 1, 0, len(times_s) - 1)


def load_source(path: Path, plan: MontagePlan) -> np.ndarray:
    """(N, height, width, 3) BGR frames of ``path`` at ``plan.fps``, upright, resized."""
    import cv2

    from pipeline.video import iter_chunks

    frames, times = [], []
    for chunk in iter_chunks(path, sample_fps=None, size=plan.height):
        frames.extend(
            cv2.resize(f, (plan.width, plan.height), interpolation=cv2.INTER_AREA)[..., ::-1]
            for f in chunk.frames
        )
        times.append(chunk.times_s)
    picked = resample(np.concatenate(times), plan.fps)
    return np.ascontiguousarray(np.stack(frames)[picked])


@dataclass
class MontageSet:
    root: Path
    annotations: Path  # the segments CSV
    montages: list[Montage]

    def truth(self, name: str) -> list[str]:
        return montage_labels(next(m for m in self.montages if m.name == name))


def build_montage_set(cache: Path, plan: MontagePlan, sources: Path = SOURCES) -> MontageSet:
    """The montage set of ``plan`` under ``cache/montages-<key>`` (written once, then reused)."""
    from pipeline.fileio import atomic_write_text
    from pipeline.synth.dataset import VideoSpec, write_video

    root = Path(cache) / f"montages-{plan.key()}"
    annotations = root / "segments.csv"
    if annotations.is_file():  # written last: the set is complete
        lengths = json.loads((root / "lengths.json").read_text())
        return MontageSet(root, annotations, _plan_all(lengths, plan))
    clips = {path.stem: load_source(path, plan) for path in source_paths(sources)}
    clips = {name: f for name, f in clips.items() if len(f) >= MIN_SOURCE_S * plan.fps}
    lengths = {name: len(frames) for name, frames in clips.items()}
    montages = _plan_all(lengths, plan)
    for montage in montages:
        frames = np.concatenate([clips[c.source][c.start : c.end] for c in montage.cuts])
        spec = VideoSpec(plan.width, plan.height, plan.fps, len(frames), plan.seed, noise=0)
        write_video(frames, spec, root / "videos" / f"{montage.name}.mp4")
    atomic_write_text(root / "lengths.json", json.dumps(lengths, sort_keys=True))
    atomic_write_text(annotations, segments_csv(segment_rows(montages)))
    return MontageSet(root, annotations, montages)


def _plan_all(lengths: dict[str, int], plan: MontagePlan) -> list[Montage]:
    return [
        *plan_montages(lengths, "train", plan.train, plan),
        *plan_montages(lengths, "test", plan.test, plan),
        *plan_montages(lengths, "val", plan.val, plan),
    ]
