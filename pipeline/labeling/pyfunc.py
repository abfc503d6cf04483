"""The MLflow pyfunc "model from code" for vidtag models.

MLflow runs this file when the model is loaded; the weights, model config, extractor spec and
classes arrive as artifacts and ``pipeline``/``models`` as code paths, so loading needs no
pickle (works with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``).

``predict`` accepts:
- a table (pandas DataFrame) with a ``video`` column of paths -> one row per video with the
  label, its score and, for frame models, the segments as JSON (features are extracted with the
  model's own extractor spec). This is the logged signature
  (:mod:`pipeline.tracking.served`), so it is what ``mlflow models serve`` answers;
- a (T, D) array, a (B, T, D) array, or a list of (T, D) arrays of features -> for clip models a
  (B, C) array of class probabilities, for frame models a list of (T, C) arrays. MLflow's
  signature check lets only tables through ``PyFuncModel.predict``: call it on
  ``mlflow.pyfunc.load_model(uri).unwrap_python_model()`` with ``context=None``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class VidtagPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from pipeline.tracking.model_io import load_model_files

        self.model = load_model_files(context.artifacts)

    # No type hints here: MLflow would try (and fail) to derive a schema from them.
    def predict(self, context, model_input, params=None):
        import pandas as pd

        if isinstance(model_input, pd.DataFrame) and "video" in model_input.columns:
            from pipeline.labeling.predict import predict_table

            return predict_table(self.model, model_input, params or {})
        from pipeline.training.task import task_named

        probs = self.model.predict_proba(_as_sequences(model_input))
        return task_named(self.model.task).batch_outputs(probs)


def _as_sequences(model_input: Any) -> list[np.ndarray]:
    if isinstance(model_input, dict) and "features" in model_input:
        model_input = model_input["features"]
    if isinstance(model_input, np.ndarray):
        return [model_input] if model_input.ndim == 2 else list(model_input)
    return [np.asarray(item, np.float32) for item in model_input]


mlflow.models.set_model(VidtagPyfunc())
