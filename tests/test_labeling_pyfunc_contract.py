"""The served model's contract: ``mlflow models serve`` answers strict JSON (null, never NaN),
the labelling options stored with the model are its defaults, and its segments are exactly
``vidtag label``'s for the same video and config."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import tiny_config
from tests.servers import BIN, free_port, stop, wait_healthy

NAME = "served-frame"
MIN_SEGMENT_S = 0.6


def _refuse(constant: str):
    raise ValueError(f"not JSON: {constant}")


def strict_json(text: str):
    """Python's json.loads with NaN/Infinity refused, as any standard JSON parser does."""
    return json.loads(text, parse_constant=_refuse)


def test_strict_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        strict_json('{"error": NaN}')
    assert strict_json('{"error": null}') == {"error": None}


def test_table_output_has_none_where_a_value_is_missing(tmp_path) -> None:
    import pandas as pd

    from pipeline.labeling.predict import predict_table
    from tests.helpers_registry import random_model

    table = predict_table(random_model("frame"), pd.DataFrame({"video": ["nope.mp4"]}), {})
    row = table.to_dict("records")[0]
    assert row["status"] == "failed" and "nope.mp4" in row["error"]
    assert row["label"] is None and row["score"] is None and row["segments"] is None


@pytest.fixture(scope="module")
def served_model(frame_dataset: Path, tmp_path_factory):
    """A frame model (random weights, this config's extractor) registered with its labelling
    options; (config, config file, one video)."""
    import mlflow

    from models.rnn import build_model, model_config_dict
    from pipeline.features import spec_from_config
    from pipeline.features.extract import extract_one
    from pipeline.features.store import FeatureStore
    from pipeline.tracking.mlflow import ensure_experiment, log_model
    from pipeline.tracking.model_io import save_model_dir

    root = tmp_path_factory.mktemp("served")
    cfg = tiny_config(
        root, frame_dataset, None, "frame",
        **{"tracking.registered_model": NAME, "label.min_segment_s": MIN_SEGMENT_S},
    )  # fmt: skip
    video = sorted(frame_dataset.rglob("*.mp4"))[0]
    spec = spec_from_config(cfg)
    record = extract_one(video, cfg, spec)
    dim = FeatureStore(cfg.features.store).get(record.video_key, spec.key()).features.shape[1]
    import torch

    torch.manual_seed(3)
    module = build_model("frame", dim, 3, {"hidden": 8, "layers": 1}).eval()
    folder = save_model_dir(
        root / "model", module, model_config_dict(module), spec, ["background", "a", "b"],
        "background", options={"min_segment_s": MIN_SEGMENT_S},
    )  # fmt: skip
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(cfg.tracking.uri)
    try:
        ensure_experiment(cfg.tracking.uri, "tests")
        with mlflow.start_run():
            assert log_model(folder, NAME)[1] == "1"
    finally:
        mlflow.set_tracking_uri(previous)
    config_file = root / "config.yaml"
    config_file.write_text(cfg.to_yaml())
    return cfg, config_file, video


@contextlib.contextmanager
def serving(cfg, home: Path):
    """``mlflow models serve`` of version 1 on 127.0.0.1 (its temp files in ``home``)."""
    port = free_port()
    command = [
        str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{NAME}/1", "--env-manager",
        "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1",
    ]  # fmt: skip
    env = {
        **os.environ, "MLFLOW_TRACKING_URI": cfg.tracking.uri, "TMPDIR": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # uvicorn
    }  # fmt: skip
    log = home / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}/ping", process, log, timeout_s=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def _logged_input_example(cfg) -> dict:
    """The registered version's ``serving_input_example.json`` (what ``log_model`` stored)."""
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{NAME}/1"))
    example = json.loads((folder / "serving_input_example.json").read_text())
    assert example["dataframe_split"]["columns"] == ["video", "min_segment_s"]
    return example


def _invoke(url: str, request: dict) -> str:
    data = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}
    post = urllib.request.Request(f"{url}/invocations", data=data, headers=headers)
    with urllib.request.urlopen(post, timeout=300) as response:  # noqa: S310
        return response.read().decode()


@pytest.mark.slow
def test_served_answer_is_strict_json_with_the_segments_vidtag_label_writes(
    served_model, tmp_path
) -> None:
    from pipeline.cli.app import app

    cfg, config_file, video = served_model
    out = tmp_path / "labels"
    result = CliRunner().invoke(
        app, ["label", str(video), "-m", f"models:/{NAME}@candidate", "-o", str(out),
              "-c", str(config_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (doc_path,) = out.rglob("*.labels.json")
    expected = json.loads(doc_path.read_text())["segments"]

    missing = str(tmp_path / "missing.mp4")
    request = {
        "dataframe_split": {
            "columns": ["video", "min_segment_s"],
            "data": [[str(video), None], [missing, None], [str(video), 0.0]],
        }
    }
    example = _logged_input_example(cfg)  # the request the model documents, on a real video
    example["dataframe_split"]["data"] = [[str(video), 0.6]]
    with serving(cfg, tmp_path) as url:
        answer = strict_json(_invoke(url, request))  # raises on NaN
        documented = strict_json(_invoke(url, example))["predictions"]
        only_videos = {"dataframe_split": {"columns": ["video"], "data": [[str(video)]]}}
        bare = strict_json(_invoke(url, only_videos))["predictions"]
    assert documented[0]["status"] == "ok" and json.loads(documented[0]["segments"]) == expected
    assert bare[0]["segments"] == documented[0]["segments"]  # no option column: stored options
    rows = answer["predictions"]
    assert [row["status"] for row in rows] == ["ok", "failed", "ok"]
    assert json.loads(rows[0]["segments"]) == expected  # the stored option (0.6 s) applied
    failed = rows[1]
    assert failed["label"] is None and failed["score"] is None and failed["segments"] is None
    assert "missing.mp4" in failed["error"]
    assert rows[0]["error"] is None
    unmerged = json.loads(rows[2]["segments"])  # the request column overrides the stored option
    assert unmerged != expected  # 0.0 s: the short runs the stored 0.6 s merged stay apart
