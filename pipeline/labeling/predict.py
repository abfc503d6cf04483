"""Inference on new videos: the model's own extractor, predictions, frames -> segments.

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

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pipeline.config import Config
from pipeline.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features.extractor import ExtractorSpec
    from pipeline.features.store import StoredFeatures
    from pipeline.tracking.model_io import TrainedModel

INFO_KEYS = ("fps", "frames", "duration_s", "width", "height")


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

    info: dict[str, Any]  # fps, frames, duration_s, width, height
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


def labels_from_clip(probs: np.ndarray, classes: list[str], info: dict[str, Any]) -> VideoLabels:
    best = int(np.argmax(probs))
    scores = {name: _round(p) for name, p in zip(classes, probs, strict=True)}
    segment = {
        "label": classes[best],
        "start_s": 0.0,
        "end_s": _round(info["duration_s"]),
        "start_frame": 0,
        "end_frame": int(info["frames"]),
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
    info: dict[str, Any],
    min_segment_s: float = 0.0,
) -> VideoLabels:
    """Sampled ``(T, C)`` probabilities -> per-native-frame runs, segments and samples."""
    frame_count = int(info["frames"])
    steps = steps_of_frames(stored_indices, frame_count)  # (frames,)
    frame_probs = _FrameProbs(probs, steps)
    bounds = frame_bounds(native_times, frame_count, info["fps"], info["duration_s"])
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


# --- models: loading once, identity ------------------------------------------------------------


@dataclass
class LoadedModel:
    model: TrainedModel
    uri: str
    run_id: str | None
    version: str | None
    fingerprint: str

    def describe(self) -> dict[str, Any]:
        """The labels.json ``model`` field."""
        return {
            "uri": self.uri,
            "run_id": self.run_id,
            "version": self.version,
            "task": self.model.task,
            "classes": list(self.model.classes),
            "background": self.model.background,
            "extractor": self.model.spec.to_dict(),
            "fingerprint": self.fingerprint,
        }


def model_fingerprint(model: TrainedModel) -> str:
    """sha256 of the weights (names, shapes, bytes), task, classes and extractor key."""
    digest = hashlib.sha256()
    meta = [model.task, list(model.classes), model.background, model.spec.key()]
    digest.update(json.dumps(meta).encode())
    for name, tensor in sorted(model.module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ModelRef(NamedTuple):
    """Where a model is: ``uri`` as given (a folder resolved), ``source`` the fixed URI to load."""

    uri: str
    source: str  # models:/<name>/<version>, runs:/..., or the folder: never an alias
    run_id: str | None
    version: str | None


_models: dict[tuple[str, str | None], LoadedModel] = {}
_models_lock = threading.Lock()


def get_model(uri: str, tracking_uri: str | None = None) -> LoadedModel:
    """The model at ``uri`` (see :func:`pipeline.tracking.load_model`), loaded once per process.

    An alias (``models:/name@candidate``) or ``models:/name/latest`` is resolved to its version
    on every call, and the cache holds versions: after the alias moves, the next call loads the
    version it points at now (and its fingerprint, so outputs of the old one are not current).
    """
    ref = resolve_model(uri, tracking_uri)
    key = (ref.source, tracking_uri)
    with _models_lock:
        if key not in _models:
            _models[key] = _load(ref, tracking_uri)
        loaded = _models[key]
    return replace(loaded, uri=ref.uri)


def _load(ref: ModelRef, tracking_uri: str | None) -> LoadedModel:
    from pipeline.tracking.mlflow import load_model

    if not Path(ref.source).is_dir():
        _use_tracking(tracking_uri)
    model = load_model(ref.source)
    return LoadedModel(model, ref.uri, ref.run_id, ref.version, model_fingerprint(model))


def _use_tracking(tracking_uri: str | None) -> None:
    if tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)


def resolve_model(uri: str, tracking_uri: str | None = None) -> ModelRef:
    """``uri`` pinned down: a folder, a run's model, or one registered version.

    Raises :class:`pipeline.tracking.TrackingError` when an alias or ``latest`` names nothing.
    """
    folder = Path(uri).expanduser()
    if folder.is_dir():
        return ModelRef(str(folder.resolve()), str(folder.resolve()), None, None)
    if uri.startswith("runs:/"):
        return ModelRef(uri, uri, uri.removeprefix("runs:/").split("/")[0], None)
    if not uri.startswith("models:/"):
        return ModelRef(uri, uri, None, None)  # let the loader say what is wrong with it
    _use_tracking(tracking_uri)
    name, alias, version = _parse_models_uri(uri)
    if alias is None and version.isdigit():
        found = _registered_version(name, version)  # ids only: the URI is fixed already
        return ModelRef(uri, uri, *(found or (None, None)))
    run_id, version = _moving_version(uri, name, alias, version)
    return ModelRef(uri, f"models:/{name}/{version}", run_id, version)


def _parse_models_uri(uri: str) -> tuple[str, str | None, str]:
    """(name, alias, version-or-stage) of ``models:/name@alias`` or ``models:/name/ref``."""
    name_and_ref = uri.removeprefix("models:/").strip("/")
    if "@" in name_and_ref:
        name, alias = name_and_ref.split("@", 1)
        return name, alias, ""
    name, _, ref = name_and_ref.rpartition("/")
    return name, None, ref


def _registered_version(name: str, version: str) -> tuple[str, str] | None:
    """(run id, version) of a registered version, None where the registry cannot tell."""
    from mlflow import MlflowClient

    try:
        found = MlflowClient().get_model_version(name, version)
    except Exception:  # noqa: BLE001 - loading reports a missing version; only ids are unknown
        return None
    return found.run_id, str(found.version)


def _moving_version(uri: str, name: str, alias: str | None, ref: str) -> tuple[str, str]:
    """(run id, version) that an alias, ``latest`` or a stage points at now."""
    from mlflow import MlflowClient

    from pipeline.tracking.mlflow import TrackingError

    client = MlflowClient()
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = _newest(client.search_model_versions(f"name = '{name}'"), ref)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds here
        raise TrackingError(f"cannot load model {uri}: {exc}") from None
    return found.run_id, str(found.version)


def _newest(versions: list, stage: str):
    """The highest version (``latest``) or the highest one in ``stage``."""
    if stage.lower() != "latest":
        versions = [v for v in versions if (v.current_stage or "").lower() == stage.lower()]
    if not versions:
        raise LookupError(f"no registered version matches {stage!r}")
    return max(versions, key=lambda v: int(v.version))


def check_spec(spec: ExtractorSpec) -> None:
    """Features must come from exactly the model's extractor: same decoder version included."""
    from pipeline.video.decode import DECODER_VERSION

    if spec.decoder != DECODER_VERSION:
        raise UserError(
            f"the model was trained on features of decoder version {spec.decoder!r}, but this "
            f"vidtag decodes as version {DECODER_VERSION!r}: its features would differ; retrain "
            f"the model (or label with the vidtag version that trained it)"
        )


# --- one video: extract with the model's spec, predict -----------------------------------------


def label_video(video: Path, cfg: Config, model: TrainedModel) -> tuple[str, VideoLabels]:
    """(video sha256, labels) of one video; raises VideoError/OSError for a bad file."""
    from pipeline.features.extract import stored_features

    check_spec(model.spec)
    record, entry = stored_features(video, cfg, model.spec)
    info = {key: entry.header["info"][key] for key in INFO_KEYS}
    features = np.asarray(entry.features, np.float32)  # (T, D)
    probs = model.predict_proba([features])[0]  # clip (C,), frame (T, C)
    if model.task == "clip":
        labels = labels_from_clip(probs, model.classes, info)
    else:
        labels = labels_from_frames(
            probs, entry.indices, entry.times_s, _frame_times(entry, info["frames"]),
            model.classes, model.background, info, cfg.label.min_segment_s,
        )  # fmt: skip
    labels.sampled = len(entry.indices)
    return record.video_key, labels


def _frame_times(entry: StoredFeatures, frame_count: int) -> np.ndarray | None:
    """Every native frame's presentation time, as stored beside the features (None: i/fps)."""
    times = entry.frame_times_s
    return times if times is not None and len(times) == frame_count else None


# --- the MLflow pyfunc's table input -----------------------------------------------------------

TABLE_COLUMNS = ("video", "status", "label", "score", "error")


def predict_table(model: TrainedModel, table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per ``table["video"]`` path: video, status (ok/failed), label, score, error,
    and for frame models ``segments`` (a JSON list of the labels.json segments).

    Options, from ``params`` or (per video) from a column of the same name in ``table``:
    ``store`` (feature store folder; default a temporary folder removed afterwards),
    ``min_segment_s``, ``device``, ``backend``, ``batch_size``. (MLflow drops ``params`` unless
    the model's signature declares them; columns always work.)
    """
    import tempfile

    import pandas as pd

    columns = [c for c in OPTION_KEYS if c in table.columns]
    with tempfile.TemporaryDirectory(prefix="vidtag-store-") as scratch:
        rows = []
        for record in table.to_dict("records"):
            row_params = {**params, **{c: record[c] for c in columns if not pd.isna(record[c])}}
            cfg = table_config(row_params, Path(scratch))
            rows.append(_table_row(str(record["video"]), cfg, model))
    names = [*TABLE_COLUMNS, *(["segments"] if model.task == "frame" else [])]
    return pd.DataFrame(rows, columns=names)


OPTION_KEYS = {
    "store": "features.store",
    "device": "features.device",
    "batch_size": "features.batch_size",
    "backend": "decode.backend",
    "min_segment_s": "label.min_segment_s",
}


def table_config(params: dict[str, Any], default_store: Path) -> Config:
    from pipeline.config import load_config

    values = {"store": default_store, **{k: v for k, v in params.items() if v is not None}}
    return load_config(
        None, [f"{OPTION_KEYS[k]}={v}" for k, v in values.items() if k in OPTION_KEYS]
    )


def _table_row(video: str, cfg: Config, model: TrainedModel) -> dict[str, Any]:
    try:
        _, labels = label_video(Path(video), cfg, model)
    except Exception as exc:  # noqa: BLE001 - one bad video is one failed row
        return {"video": video, "status": "failed", "error": _reason(exc)}
    row = {"video": video, "status": "ok", "label": labels.label, "score": labels.score}
    if model.task == "frame":
        row["segments"] = json.dumps(labels.segments)
    return row


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# --- one video of a folder job: skip, label, write ---------------------------------------------


def label_one(
    video: Path, relative: str, base: str, output: Path, cfg: Config, loaded: LoadedModel
) -> dict[str, Any]:
    """Label ``video`` into ``output/<base>.*``: a summary record (status ok or skipped).

    Skipped when all three files exist for the same video content, model and options, unless
    ``cfg.label.overwrite``. Raises for a bad video (the flow turns that into a failed row).
    """
    from pipeline.claims import claim
    from pipeline.features.store import FeatureStore
    from pipeline.labeling.outputs import (
        OutputPaths,
        current_document,
        labels_document,
        write_outputs,
    )

    started = time.perf_counter()
    paths = OutputPaths.at(output, base)
    options = {"min_segment_s": cfg.label.min_segment_s}
    record = {"video": relative, "path": str(video), "base": base, "error": None}
    record["outputs"] = [path.relative_to(output).as_posix() for path in paths]

    def current() -> dict[str, Any] | None:
        if cfg.label.overwrite:
            return None
        video_sha = FeatureStore(cfg.features.store).video_key(video)
        return current_document(paths, video_sha, loaded.fingerprint, options)

    def skipped(doc: dict[str, Any]) -> dict[str, Any]:
        return {**record, "status": "skipped", **doc["summary"], "frames": 0, "seconds": 0.0}

    if (doc := current()) is not None:
        return skipped(doc)
    # Two runs on one output folder: the second waits for a video in progress, then skips it.
    with claim(output / ".locks" / f"{hashlib.sha1(base.encode()).hexdigest()}.lock"):
        if (doc := current()) is not None:
            return skipped(doc)
        video_sha, labels = label_video(video, cfg, loaded.model)
        doc = labels_document(relative, video, video_sha, labels, loaded.describe(), options)
        write_outputs(paths, doc)
    return {
        **record,
        "status": "ok",
        "label": labels.label,
        "score": labels.score,
        "frames": labels.sampled,
        "seconds": time.perf_counter() - started,
    }
