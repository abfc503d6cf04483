"""pipeline/labeling/pyfunc.py: the MLflow pyfunc (model from code) of vidtag models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers_trained import DAMAGED, LABEL_MIN_SEGMENT_S, MODEL_URI, held_out_features

PREDICT_PATH = (
    "pipeline.labeling.pyfunc",
    "pipeline.labeling.predict",
    "pipeline.labeling.segments",
    "pipeline.tracking.registry",
    "pipeline.training.task",
    "pipeline.features.extract",
    "models.rnn",
)
# Imported on the predict path but not the model's own requirement: mlflow requires pandas;
# decord is optional (`decode.backend: auto` decodes with OpenCV).
NOT_REQUIRED = {"pandas", "decord"}


def _imported_names(module_names: list[str]) -> set[str]:
    """Top-level names every ``import`` of these modules' sources names (function-level too)."""
    import ast
    import importlib

    names = set()
    for module_name in module_names:
        source = Path(importlib.import_module(module_name).__file__).read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.slow
def test_the_pyfunc_requires_every_distribution_its_predict_path_imports() -> None:
    import subprocess
    import sys
    from importlib.metadata import packages_distributions

    from pipeline.tracking.mlflow import _requirements

    script = (
        "import importlib, sys\n"
        f"for name in {PREDICT_PATH!r}: importlib.import_module(name)\n"
        "print(' '.join(n for n in sys.modules if n.split('.')[0] in ('pipeline', 'models')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=180
    ).stdout.split()
    required = {re.split(r"[=<>!~ ;\[]", pin)[0].lower() for pin in _requirements()}
    assert "opencv-python-headless" in required
    distributions = packages_distributions()  # import name -> the distributions that hold it
    imported = _imported_names(loaded) - set(sys.stdlib_module_names) - {"pipeline", "models"}
    missing = {
        name
        for name in imported
        if not {d.lower() for d in distributions.get(name, [name])} & required
    }
    assert missing <= NOT_REQUIRED, missing - NOT_REQUIRED


@pytest.mark.slow
def test_registered_model_loads_in_a_fresh_process_without_pickle(clip_run, tmp_path) -> None:
    from pipeline.tracking.mlflow import load_model

    cfg, _ = clip_run
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    in_memory = load_model("models:/test-clip@candidate")
    features = [f for f, _ in held_out_features(cfg, set(in_memory.classes))][:4]
    expected = np.stack(in_memory.predict_proba(features))
    for index, array in enumerate(features):
        np.save(tmp_path / f"f{index}.npy", array)
    script = (
        "import sys, numpy as np, mlflow\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model('models:/test-clip@candidate')\n"
        "feats = [np.load(f'{sys.argv[2]}/f{i}.npy') for i in range(int(sys.argv[3]))]\n"
        "np.save(f'{sys.argv[2]}/out.npy', model.predict(feats))\n"
    )
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    subprocess.run(
        [sys.executable, "-c", script, cfg.tracking.uri, str(tmp_path), str(len(features))],
        check=True, env=env, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_mlflow_pyfunc_labels_a_table_of_video_paths(labelled, tmp_path) -> None:
    """In a fresh process, with pickle loading disabled: no vidtag CLI, no Prefect."""
    videos = [str(labelled.input / labelled.held_out[0]), str(labelled.input / DAMAGED[0])]
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        f"model = mlflow.pyfunc.load_model({MODEL_URI!r})\n"
        "videos = sys.argv[3:]\n"
        f"options = {{'min_segment_s': [{LABEL_MIN_SEGMENT_S}] * len(videos)}}\n"
        "table = model.predict(pd.DataFrame({'video': videos, **options}))\n"
        "table.to_json(sys.argv[2], orient='records')\n"
    )
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    out = tmp_path / "table.json"
    subprocess.run(
        [sys.executable, "-c", script, labelled.trained.cfg.tracking.uri, str(out), *videos],
        check=True, env=env, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    rows = json.loads(out.read_text())
    assert [row["video"] for row in rows] == videos
    assert [row["status"] for row in rows] == ["ok", "failed"] and rows[1]["error"]
    segments = json.loads(rows[0]["segments"])
    assert segments and rows[0]["label"] in {s["label"] for s in segments}
    doc_path = (labelled.output / labelled.held_out[0]).with_suffix(".labels.json")
    assert segments == json.loads(doc_path.read_text())["segments"]  # CLI and pyfunc agree
