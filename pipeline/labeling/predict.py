"""A trained model on new videos: loaded once, fed its own extractor's features, predicting.

:func:`get_model` loads a model (folder, run or registered version) once per process and names
it by a fingerprint of its weights; :func:`label_video` extracts one video with the model's own
extractor spec and lets the model's task turn the predictions into labels
(:mod:`pipeline.labeling.segments`); :func:`predict_table` is the MLflow pyfunc's table input.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.labeling.segments import SegmentBuilder, VideoLabels, merge_length
from pipeline.tracking.registry import ModelRef, resolve_model, use_tracking
from pipeline.tracking.served import output_columns
from pipeline.training.task import task_named

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features.spec import ExtractorSpec
    from pipeline.features.store import StoredFeatures
    from pipeline.tracking.model_io import TrainedModel


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
        use_tracking(tracking_uri)
    model = load_model(ref.source)
    return LoadedModel(model, ref.uri, ref.run_id, ref.version, model_fingerprint(model))


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
    info = entry.info
    if info is None:  # extract_one always writes it: only an entry made by hand lacks it
        raise UserError(f"{video}: its feature store entry has no video info; remove the entry")
    builder = SegmentBuilder(
        classes=list(model.classes),
        info=info,
        sample_indices=entry.indices,
        sample_times=entry.times_s,
        frame_times=_frame_times(entry, info.frames),
        background=model.background,
        min_segment_s=merge_length(cfg.label.min_segment_s, model.options),
    )
    features = np.asarray(entry.features, np.float32)  # (T, D)
    probs = model.predict_proba([features])[0]  # clip (C,), frame (T, C)
    return record.video_key, task_named(model.task).to_labels(probs, builder)


def _frame_times(entry: StoredFeatures, frame_count: int) -> np.ndarray | None:
    """Every native frame's presentation time, as stored beside the features (None: i/fps)."""
    times = entry.frame_times_s
    return times if times is not None and len(times) == frame_count else None


# --- the MLflow pyfunc's table input -----------------------------------------------------------


def predict_table(model: TrainedModel, table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per ``table["video"]`` path: video, status (ok/failed), label, score, error,
    and for frame models ``segments`` (a JSON list of the labels.json segments).

    Options: the labelling options stored with the model (``min_segment_s``) are the
    defaults; ``params`` and then (per video) a column of the same name in ``table`` override
    them (``min_segment_s`` ``"auto"``, or nothing stored and nothing given: see
    :func:`~pipeline.labeling.segments.merge_length`): ``store`` (feature store folder; default
    a temporary folder removed afterwards), ``min_segment_s``, ``device``, ``backend``,
    ``batch_size``. (MLflow drops ``params`` unless the model's signature declares them; columns
    always work.) Missing values are ``None`` (JSON null when served), never NaN.
    """
    import tempfile

    import pandas as pd

    columns = [c for c in OPTION_KEYS if c in table.columns]
    with tempfile.TemporaryDirectory(prefix="vidtag-store-") as scratch:
        rows = []
        for record in table.to_dict("records"):
            given = {c: record[c] for c in columns if not pd.isna(record[c])}
            row_params = {**model.options, **params, **given}
            cfg = table_config(row_params, Path(scratch))
            rows.append(_table_row(str(record["video"]), cfg, model))
    names = list(output_columns(model.task))
    frame = pd.DataFrame(rows, columns=names).astype(object)
    return frame.where(frame.notna(), None)  # NaN is not JSON: missing values are null


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
    if task_named(model.task).per_step:
        row["segments"] = json.dumps(labels.segments)
    return row


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
