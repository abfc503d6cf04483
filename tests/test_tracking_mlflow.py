"""Training through a real `mlflow server` (SQLite backend, proxied artifacts), read over REST."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import tiny_config

EPOCHS = 3
pytestmark = pytest.mark.slow  # a real mlflow server and a real Prefect server


def _get(server_url: str, path: str, **query: str) -> dict:
    url = f"{server_url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def test_training_through_a_remote_tracking_server(
    on_prefect_server, mlflow_server, clip_dataset: Path, tmp_path: Path
) -> None:
    from flows.train import train

    sets = {
        "tracking.uri": mlflow_server.url,
        "tracking.registered_model": "remote-clip",
        "train.epochs": EPOCHS,
        "train.patience": EPOCHS,
    }
    cfg = tiny_config(tmp_path, clip_dataset, clip_dataset / "labels.csv", "clip", **sets)
    outcome = train(cfg)
    assert outcome["tracking_uri"] == mlflow_server.url and outcome["registered_version"] == "1"
    assert not (tmp_path / "mlflow.db").exists()

    run = _get(mlflow_server.url, "runs/get", run_id=outcome["run_id"])["run"]
    assert run["info"]["status"] == "FINISHED"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert "test_accuracy" in metrics and 0 <= metrics["test_accuracy"] <= 1
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["train.epochs"] == str(EPOCHS)
    history = _get(
        mlflow_server.url, "metrics/get-history", run_id=outcome["run_id"], metric_key="val_loss"
    )["metrics"]
    steps = sorted(int(m["step"]) for m in history)
    assert len(steps) == EPOCHS and len(set(steps)) == EPOCHS  # one batched call per epoch
    model = _get(mlflow_server.url, "registered-models/get", name="remote-clip")
    assert model["registered_model"]["latest_versions"][0]["run_id"] == outcome["run_id"]
    alias = _get(
        mlflow_server.url, "registered-models/alias", name="remote-clip", alias="candidate"
    )
    assert alias["model_version"]["version"] == "1"
    artifacts = _get(mlflow_server.url, "artifacts/list", run_id=outcome["run_id"])["files"]
    assert "config.yaml" in {f["path"] for f in artifacts}

    # The model comes back through the server's proxied artifact store.
    import mlflow

    from pipeline.tracking.mlflow import load_model

    mlflow.set_tracking_uri(mlflow_server.url)
    loaded = load_model("models:/remote-clip@candidate")
    assert len(loaded.classes) == 6
