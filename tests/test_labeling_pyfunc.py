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

from tests.helpers_labeling import random_model, save_dir
from tests.helpers_trained import DAMAGED, LABEL_MIN_SEGMENT_S, MODEL_URI, held_out_features

PREDICT_PATH = (
    "pipeline.labeling.pyfunc",
    "pipeline.labeling.predict",
    "pipeline.labeling.segments",
    "pipeline.tracking.registry",
    "pipeline.training.task",
    "pipeline.features.extract",
    "models.rnn",
    "models.tcn",
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
        "assert model.metadata.signature.inputs.input_names()[0] == 'video'\n"
        "np.save(f'{sys.argv[2]}/out.npy', model.unwrap_python_model().predict(None, feats))\n"
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


def _pyfunc(folder: Path, task: str):
    """The real pyfunc class, loaded as MLflow loads it (artifacts by file name), unserved."""
    from mlflow.pyfunc import PythonModelContext

    from pipeline.labeling.pyfunc import VidtagPyfunc
    from pipeline.tracking.model_io import FILES, load_model_dir

    model = random_model(task)
    save_dir(folder, model)
    pyfunc = VidtagPyfunc()
    pyfunc.load_context(PythonModelContext({name: str(folder / name) for name in FILES}, None))
    return pyfunc, load_model_dir(folder)


FEATURES = [np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32) for _ in range(3)]


@pytest.mark.parametrize(
    ("name", "model_input", "count"),
    [
        ("one (T, D) array", FEATURES[0], 1),
        ("a (B, T, D) array", np.stack(FEATURES), 3),
        ("a list of arrays", FEATURES, 3),
        ("a list of lists", [f.tolist() for f in FEATURES], 3),
        ("a features dict", {"features": FEATURES[:2]}, 2),
    ],
)
def test_clip_predict_gives_a_row_of_probabilities_per_sequence(tmp_path, name, model_input, count):
    pyfunc, model = _pyfunc(tmp_path, "clip")
    out = pyfunc.predict(None, model_input)
    assert isinstance(out, np.ndarray) and out.shape == (count, 3), name
    np.testing.assert_allclose(out, np.stack(model.predict_proba(FEATURES[:count])), rtol=1e-6)


def test_frame_predict_gives_a_probability_per_step(tmp_path) -> None:
    pyfunc, model = _pyfunc(tmp_path, "frame")
    ragged = [FEATURES[0], FEATURES[1][:4]]
    out = pyfunc.predict(None, ragged)
    assert [o.shape for o in out] == [(6, 3), (4, 3)]
    for got, want in zip(out, model.predict_proba(ragged), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_table_of_videos_goes_to_the_video_path(tmp_path) -> None:
    import pandas as pd

    pyfunc, _ = _pyfunc(tmp_path / "model", "frame")
    table = pyfunc.predict(None, pd.DataFrame({"video": [str(tmp_path / "missing.mp4")]}))
    assert list(table["status"]) == ["failed"] and "missing.mp4" in table.loc[0, "error"]
