"""pipeline/tracking/mlflow.py: runs and their end states, experiments, reachability, and
training through a real `mlflow server` (SQLite backend, proxied artifacts) read over REST."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import tiny_config

EPOCHS = 3


def _get(server_url: str, path: str, **query: str) -> dict:
    url = f"{server_url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.mark.slow
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


@pytest.mark.slow
def test_failed_run_ends_failed(prefect_api, clip_dataset, tmp_path) -> None:
    from mlflow import MlflowClient

    from pipeline.tracking.mlflow import tracked_run

    cfg = tiny_config(tmp_path, clip_dataset, None, "clip")
    with pytest.raises(RuntimeError), tracked_run(cfg, {"task": "clip"}) as run:
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), tracked_run(cfg, {"task": "clip"}) as killed:
        raise KeyboardInterrupt
    client = MlflowClient(cfg.tracking.uri)
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert client.get_run(killed.info.run_id).info.status == "KILLED"


def test_unreachable_tracking_server_is_reported_before_work(tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--set", "tracking.uri=http://127.0.0.1:9", "--set", f"data.videos={tmp_path}"],
    )
    assert result.exit_code == 2 and "unreachable" in result.output


@pytest.mark.slow
def test_a_deleted_experiment_is_a_clear_error(tmp_path) -> None:
    from mlflow import MlflowClient

    from pipeline.tracking.mlflow import TrackingError, ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(TrackingError, match="'gone' is deleted .*restore it"):
        ensure_experiment(uri, "gone")
