"""Labelling a folder: which videos, where each one's outputs go, and one video's job.

:func:`plan_folder` finds the videos under an input (folder, manifest or file) and gives each
its path relative to the input and its output base (mirrored under the output folder);
:func:`label_one` labels one of them unless its outputs are current (the skip rule: all three
files exist for the same video content, model and options; :func:`already_labelled`, which the
flow also asks before mapping its tasks), under a claim so that two runs on
one output folder never label a video twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pipeline.config import Config
from pipeline.jobs import VideoRecord

if TYPE_CHECKING:
    from pipeline.labeling.outputs import OutputPaths
    from pipeline.labeling.predict import LoadedModel


class PlannedVideo(NamedTuple):
    path: Path  # the video file
    relative: str  # its path under the input root, POSIX (how summaries name it)
    base: str  # its output base under the output folder, POSIX, without the file suffixes


def plan_folder(source: Path, extensions: Iterable[str]) -> list[PlannedVideo]:
    """Every video under ``source`` (folder, manifest or file), in discovery order."""
    from pipeline.data.discovery import discover_videos

    source = Path(source).expanduser()
    videos = discover_videos(source, extensions)
    root = input_root(source)
    bases = output_bases(videos, root)
    return [PlannedVideo(video, relative_path(video, root), bases[video]) for video in videos]


# --- where outputs go -----------------------------------------------------------------------------


def input_root(source: Path) -> Path:
    """The folder the videos' relative paths (mirrored under the output) are taken from."""
    source = source.expanduser().resolve()
    # A single video or a manifest (whose paths are relative to its folder): the file's folder.
    return source if source.is_dir() else source.parent


def output_bases(videos: list[Path], root: Path) -> dict[Path, str]:
    """Each video's output base, relative to the output folder, in POSIX form.

    ``sub/a.mp4`` -> ``sub/a``; where two videos of one folder share a stem (``a.mp4`` and
    ``a.avi``) both keep their extension: ``sub/a.mp4``, ``sub/a.avi``.
    """
    relative = {video: Path(relative_path(video, root)) for video in videos}
    stems: dict[tuple[str, str], int] = {}
    for rel in relative.values():
        key = (rel.parent.as_posix(), rel.stem.casefold())
        stems[key] = stems.get(key, 0) + 1
    bases = {}
    for video, rel in relative.items():
        shared = stems[(rel.parent.as_posix(), rel.stem.casefold())] > 1
        bases[video] = (rel if shared else rel.with_suffix("")).as_posix()
    clashes = _casefold_duplicates(bases.values())
    bases = {v: relative[v].as_posix() if b.casefold() in clashes else b for v, b in bases.items()}
    clashes = _casefold_duplicates(bases.values())  # same names from outside the root
    return {v: _disambiguated(b, v) if b.casefold() in clashes else b for v, b in bases.items()}


def _disambiguated(base: str, video: Path) -> str:
    return f"{base}~{hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:8]}"


def relative_path(video: Path, root: Path) -> str:
    """``video`` relative to ``root`` in POSIX form; its name alone when outside the root."""
    try:
        return video.resolve().relative_to(root).as_posix()
    except ValueError:  # a symlink pointing elsewhere
        return video.name


def _casefold_duplicates(names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    duplicates: set[str] = set()
    for name in names:
        key = name.casefold()
        (duplicates if key in seen else seen).add(key)
    return duplicates


# --- one video of a folder job: skip, label, write ---------------------------------------------


def already_labelled(
    video: Path, relative: str, base: str, output: Path, cfg: Config, loaded: LoadedModel
) -> VideoRecord | None:
    """The ``skipped`` record of ``video`` when its outputs are current (the skip rule), else
    None: always None with ``cfg.label.overwrite``, or when the video cannot be hashed (its
    task then says why). Cheap (the store's hash cache, one labels.json): what the flow asks
    before mapping its tasks, so that labelled videos cost no task run.
    """
    from pipeline.features.store import FeatureStore
    from pipeline.labeling.outputs import OutputPaths, current_document
    from pipeline.labeling.preview import entry_current

    if cfg.label.overwrite:
        return None
    paths = OutputPaths.at(output, base)
    if not video.is_file():
        return None  # missing, a folder: label_one fails with the reason
    try:
        video_sha = FeatureStore(cfg.features.store).video_key(video)
    except Exception:  # noqa: BLE001 - label_one raises it again and the flow reports it
        return None
    doc = current_document(paths, video_sha, loaded.fingerprint, labeling_options(cfg, loaded))
    if doc is None or not entry_current(doc.get("preview"), output / base, cfg.label.previews):
        return None
    summary = doc["summary"]
    return VideoRecord(
        relative, "skipped", path=str(video), base=base, outputs=_outputs(paths, output),
        label=summary["label"], score=summary["score"],
    )  # fmt: skip


def labeling_options(cfg: Config, loaded: LoadedModel) -> dict[str, Any]:
    """The options labels.json records (and the skip rule compares): the merge length as
    applied, ``auto`` resolved against the model's stored options."""
    from pipeline.labeling.segments import merge_length

    return {"min_segment_s": merge_length(cfg.label.min_segment_s, loaded.model.options)}


def _outputs(paths: OutputPaths, output: Path) -> list[str]:
    return [path.relative_to(output).as_posix() for path in paths]


def label_one(
    video: Path, relative: str, base: str, output: Path, cfg: Config, loaded: LoadedModel
) -> VideoRecord:
    """Label ``video`` into ``output/<base>.*``: its record (status ok or skipped).

    Skipped when all three files exist for the same video content, model and options, unless
    ``cfg.label.overwrite`` (:func:`already_labelled`). Raises for a bad video (the flow turns
    that into a failed row).
    """
    from pipeline.claims import claim
    from pipeline.labeling.outputs import OutputPaths, labels_document, write_outputs
    from pipeline.labeling.predict import label_video

    started = time.perf_counter()
    if (skipped := already_labelled(video, relative, base, output, cfg, loaded)) is not None:
        return skipped
    # Two runs on one output folder: the second waits for a video in progress, then skips it.
    with claim(output / ".locks" / f"{hashlib.sha1(base.encode()).hexdigest()}.lock"):
        if (skipped := already_labelled(video, relative, base, output, cfg, loaded)) is not None:
            return skipped
        paths = OutputPaths.at(output, base)
        if (refreshed := _refresh_preview(video, relative, base, output, cfg, loaded)) is not None:
            return refreshed
        video_sha, labels = label_video(video, cfg, loaded.model)
        options = labeling_options(cfg, loaded)
        doc = labels_document(relative, video, video_sha, labels, loaded.describe(), options)
        doc["preview"] = _preview(video, output / base, cfg, labels.info.codec, doc)
        write_outputs(paths, doc)
    return VideoRecord(
        relative, "ok", path=str(video), base=base, outputs=_outputs(paths, output),
        label=labels.label, score=labels.score, frames=labels.sampled,
        seconds=time.perf_counter() - started,
    )  # fmt: skip


def _preview(video: Path, base_path: Path, cfg: Config, codec: str, doc: dict[str, Any]):
    """labels.json ``preview``: what the review page plays (never raises)."""
    from pipeline.labeling.preview import preview_entry

    return preview_entry(video, base_path, codec, cfg.label.previews, thumbnail_times(doc))


def thumbnail_times(doc: dict[str, Any]) -> list[float]:
    """The sampled times of a frame model's labels; for a clip model, 12 across the video."""
    samples = doc.get("samples")
    if samples and samples.get("times_s"):
        return list(samples["times_s"])
    duration = float(doc["info"]["duration_s"])
    return [round(duration * i / 12, 4) for i in range(12)]


def _refresh_preview(
    video: Path, relative: str, base: str, output: Path, cfg: Config, loaded: LoadedModel
) -> VideoRecord | None:
    """Current labels whose preview is not (``label.previews`` changed, a file removed): make
    the preview alone and rewrite labels.json; None when the labels themselves are not current
    (or ``label.overwrite``)."""
    from pipeline.features.store import FeatureStore
    from pipeline.fileio import atomic_write_text
    from pipeline.labeling.outputs import OutputPaths, current_document, document_text
    from pipeline.video.decode import probe

    if cfg.label.overwrite:
        return None
    started = time.perf_counter()
    paths = OutputPaths.at(output, base)
    video_sha = FeatureStore(cfg.features.store).video_key(video)
    doc = current_document(paths, video_sha, loaded.fingerprint, labeling_options(cfg, loaded))
    if doc is None:
        return None
    doc["preview"] = _preview(video, output / base, cfg, probe(video).codec, doc)
    atomic_write_text(paths.labels_json, document_text(doc))
    return VideoRecord(
        relative, "ok", path=str(video), base=base, outputs=_outputs(paths, output),
        label=doc["summary"]["label"], score=doc["summary"]["score"],
        seconds=time.perf_counter() - started,
    )  # fmt: skip
