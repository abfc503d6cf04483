"""flows/train.py: synthetic videos -> the Prefect train flow -> SQLite MLflow -> registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import tiny_config
from tests.helpers_trained import (
    REVERSED,
    accuracy,
    held_out_features,
)


@pytest.mark.slow
def test_gru_separates_reversed_pairs_where_order_blind_baseline_cannot(clip_run) -> None:
    from pipeline.tracking.mlflow import load_model
    from pipeline.training.job import run_training

    cfg, _ = clip_run
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    gru = load_model("models:/test-clip@candidate")
    held_out = held_out_features(cfg, REVERSED)
    assert len(held_out) >= 4
    gru_accuracy = accuracy(gru, held_out)
    baseline_cfg = cfg.model_copy(deep=True)
    baseline_cfg.model.cell = "none"
    baseline_cfg.model.pooling = "mean"
    baseline_cfg.tracking.registered_model = "test-clip-baseline"
    outcome = run_training(baseline_cfg)
    mlflow.set_tracking_uri(cfg.tracking.uri)
    baseline = load_model(f"models:/test-clip-baseline/{outcome.registered_version}")
    baseline_accuracy = accuracy(baseline, held_out)
    assert gru_accuracy >= 0.85, gru_accuracy
    assert baseline_accuracy <= gru_accuracy - 0.25, (baseline_accuracy, gru_accuracy)


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
