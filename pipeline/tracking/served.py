"""The served model's contract: the MLflow signature and input example of vidtag's pyfunc.

One row per video path in, optional per-video labelling options (a column overrides the options
stored with the model), one row per video out (:func:`pipeline.labeling.predict.predict_table`).
Imports no torch and, until a signature is built, no MLflow.
"""

from __future__ import annotations

from typing import Any

SERVED_INPUT = {"video": "string"}  # required
SERVED_OPTIONS = {  # optional columns
    "min_segment_s": "double",
    "store": "string",
    "device": "string",
    "backend": "string",
    "batch_size": "long",
}
SERVED_OUTPUT = {
    "video": "string",
    "status": "string",  # ok | failed
    "label": "string",
    "score": "double",
    "error": "string",
}
SERVED_SEGMENTS = {"segments": "string"}  # frame models: the labels.json segments as JSON
SEGMENT_TASKS = {"frame"}  # the model_config.json tasks that answer segments
INPUT_EXAMPLE = {"video": ["/data/videos/example.mp4"], "min_segment_s": [0.5]}


def output_columns(task: str) -> dict[str, str]:
    """The answer's columns for a model of ``task`` (clip | frame)."""
    return {**SERVED_OUTPUT, **(SERVED_SEGMENTS if task in SEGMENT_TASKS else {})}


def signature(task: str) -> Any:
    """The MLflow ``ModelSignature``: a table in, a table out (no params: options are columns)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = [ColSpec(kind, name) for name, kind in SERVED_INPUT.items()]
    inputs += [ColSpec(kind, name, required=False) for name, kind in SERVED_OPTIONS.items()]
    outputs = [ColSpec(kind, name) for name, kind in output_columns(task).items()]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example() -> Any:
    import pandas as pd

    return pd.DataFrame(INPUT_EXAMPLE)
