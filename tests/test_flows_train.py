"""Training end to end: synthetic videos -> Prefect train flow -> SQLite MLflow -> registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.synth.dataset import REVERSED_PAIRS
from tests.conftest import tiny_config

REVERSED = {label for pair in REVERSED_PAIRS for label in pair}


def _held_out_features(cfg, classes: set[str]):
    """(features, label) of the val+test videos of ``classes``, read from the store."""
    from pipeline.data.annotations import load_annotations
    from pipeline.features.extractor import spec_from_config
    from pipeline.features.store import FeatureStore

    store = FeatureStore(cfg.features.store)
    key = spec_from_config(cfg).key()
    items = [
        item
        for item in load_annotations(cfg.data).items
        if item.split in ("val", "test") and item.label in classes
    ]
    return [(store.get(store.video_key(item.path), key).features, item.label) for item in items]


def _accuracy(model, held_out) -> float:
    probs = model.predict_proba([features for features, _ in held_out])
    predicted = [model.classes[int(p.argmax())] for p in probs]
    return float(np.mean([p == label for p, (_, label) in zip(predicted, held_out, strict=True)]))


@pytest.fixture(scope="module")
def clip_run(prefect_api, clip_dataset: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_run")
    cfg = tiny_config(root, clip_dataset, clip_dataset / "labels.csv", "clip")
    path = root / "c.yaml"
    path.write_text(cfg.to_yaml())
    result = CliRunner().invoke(app, ["train", "-c", str(path)])
    assert result.exit_code == 0, result.output
    return cfg, result.output


@pytest.mark.slow
def test_train_cli_prints_run_version_metrics_and_ui_command(clip_run) -> None:
    _, output = clip_run
    for fragment in ("MLflow run:", "models:/test-clip/1", "test_accuracy", "mlflow ui"):
        assert fragment in output


@pytest.mark.slow
def test_gru_separates_reversed_pairs_where_order_blind_baseline_cannot(clip_run) -> None:
    from pipeline.tracking.mlflow import load_model
    from pipeline.training.job import run_training

    cfg, _ = clip_run
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    gru = load_model("models:/test-clip@candidate")
    held_out = _held_out_features(cfg, REVERSED)
    assert len(held_out) >= 4
    gru_accuracy = _accuracy(gru, held_out)
    baseline_cfg = cfg.model_copy(deep=True)
    baseline_cfg.model.cell = "none"
    baseline_cfg.model.pooling = "mean"
    baseline_cfg.tracking.registered_model = "test-clip-baseline"
    outcome = run_training(baseline_cfg)
    mlflow.set_tracking_uri(cfg.tracking.uri)
    baseline = load_model(f"models:/test-clip-baseline/{outcome.registered_version}")
    baseline_accuracy = _accuracy(baseline, held_out)
    assert gru_accuracy >= 0.85, gru_accuracy
    assert baseline_accuracy <= gru_accuracy - 0.25, (baseline_accuracy, gru_accuracy)


@pytest.mark.slow
def test_registered_model_loads_in_a_fresh_process_without_pickle(clip_run, tmp_path) -> None:
    from pipeline.tracking.mlflow import load_model

    cfg, _ = clip_run
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    in_memory = load_model("models:/test-clip@candidate")
    features = [f for f, _ in _held_out_features(cfg, set(in_memory.classes))][:4]
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
def test_run_holds_params_tags_metrics_and_artifacts(clip_run) -> None:
    from mlflow import MlflowClient

    cfg, output = clip_run
    client = MlflowClient(cfg.tracking.uri)
    run_id = output.split("MLflow run:")[1].split()[0]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.cell"] == "gru" and run.data.params["train.lr"] == "0.003"
    for tag in ("task", "extractor_key", "dataset_fingerprint", "git_commit"):
        assert tag in run.data.tags
    history = client.get_metric_history(run_id, "val_accuracy")
    assert len(history) >= 2 and all(0 <= m.value <= 1 for m in history)
    names = {a.path for a in client.list_artifacts(run_id)}
    for artifact in ("config.yaml", "classes.json", "test_confusion_matrix.png"):
        assert artifact in names, names
    assert "test_per_class_report.txt" in names


@pytest.mark.slow
def test_the_runs_checkpoint_describes_its_model_and_config(clip_run) -> None:
    from models.rnn import build_model
    from pipeline.training.job import require_test_checkpoint
    from pipeline.training.loop import checkpoint_info

    cfg, _ = clip_run
    checkpoint = require_test_checkpoint(cfg)  # this config's checkpoint
    info = checkpoint_info(checkpoint)
    assert info.config == cfg.flat()
    assert info.model_config["task"] == "clip" and info.model_config["cfg"]["hidden"] == 48
    build_model(**info.model_config).load_state_dict(
        torch.load(checkpoint, weights_only=True)["best_model"]
    )


@pytest.mark.slow
def test_test_only_logs_metrics_but_registers_nothing(clip_run, tmp_path) -> None:
    from mlflow import MlflowClient

    cfg, _ = clip_run
    client = MlflowClient(cfg.tracking.uri)
    name = cfg.tracking.registered_model
    versions = sorted(v.version for v in client.search_model_versions(f"name='{name}'"))
    candidate = client.get_model_version_by_alias(name, "candidate").version
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    result = CliRunner().invoke(app, ["train", "-c", str(path), "--test-only"])
    assert result.exit_code == 0, result.output
    assert "test_accuracy" in result.output and "registered model" not in result.output
    assert sorted(v.version for v in client.search_model_versions(f"name='{name}'")) == versions
    assert client.get_model_version_by_alias(name, "candidate").version == candidate
    run = client.get_run(result.output.split("MLflow run:")[1].split()[0])
    assert run.info.status == "FINISHED" and "test_accuracy" in run.data.metrics
    linked = f"source_run_id = '{run.info.run_id}'"
    assert not client.search_logged_models([run.info.experiment_id], filter_string=linked)


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
def test_frame_tagger_reaches_accuracy_and_f1(prefect_api, frame_dataset, tmp_path) -> None:
    from flows.train import train

    cfg = tiny_config(
        tmp_path, frame_dataset / "videos", frame_dataset / "segments.csv", "frame",
        **{"decode.sample_fps": 10, "model.hidden": 64, "train.epochs": 40},
    )  # fmt: skip
    outcome = train(cfg)
    metrics = outcome["test_metrics"]
    assert metrics["test_frame_accuracy"] >= 0.9, metrics
    assert metrics["test_f1_50"] >= 0.85, metrics


def _one_video_per_class(root: Path, split_column: bool) -> Path:
    """Three classes of one (empty) video each: the splits fail before any video is read."""
    lines = ["video,label,split" if split_column else "video,label"]
    for label in ("cook", "wash", "stir"):
        (root / label).mkdir(parents=True)
        (root / label / "a.mp4").write_bytes(b"")
        lines.append(f"{label}/a.mp4,{label}" + (",train" if split_column else ""))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def test_an_empty_validation_split_says_how_splits_were_assigned(tmp_path) -> None:
    from pipeline.training.job import EmptySplit, prepare

    labels = _one_video_per_class(tmp_path / "videos", split_column=False)
    with pytest.raises(EmptySplit) as error:
        prepare(tiny_config(tmp_path, tmp_path / "videos", labels, "clip"))
    message = str(error.value)
    assert message.startswith("the validation split is empty"), message
    assert "vidtag extract" not in message and "without features" not in message
    for fragment in ("data.val_fraction=0.15", "3 of them with a single video", "`split`"):
        assert fragment in message, message


def test_an_empty_given_validation_split_names_the_split_column(tmp_path) -> None:
    from pipeline.training.job import EmptySplit, prepare

    labels = _one_video_per_class(tmp_path / "videos", split_column=True)
    with pytest.raises(EmptySplit, match="the validation split is empty: the annotations' "):
        prepare(tiny_config(tmp_path, tmp_path / "videos", labels, "clip"))


@pytest.mark.slow
def test_a_deleted_experiment_is_a_clear_error(tmp_path) -> None:
    from mlflow import MlflowClient

    from pipeline.tracking.mlflow import TrackingError, ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(TrackingError, match="'gone' is deleted .*restore it"):
        ensure_experiment(uri, "gone")


@pytest.mark.slow
def test_test_only_without_a_checkpoint_stops_before_extracting(
    prefect_api, clip_dataset, tmp_path
):
    cfg = tiny_config(tmp_path, clip_dataset, clip_dataset / "labels.csv", "clip")
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    result = CliRunner().invoke(app, ["train", "-c", str(path), "--test-only"])
    assert result.exit_code == 2 and "no checkpoint at" in result.output, result.output
    assert not list(Path(cfg.features.store).rglob("*.safetensors"))  # nothing was extracted
