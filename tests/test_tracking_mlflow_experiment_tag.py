"""Experiments vidtag creates carry the tag that makes MLflow 3 open them in its model-training
view (not the GenAI traces view)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tracking.mlflow import EXPERIMENT_KIND_TAG, TRAINING_KIND, ensure_experiment

MLFLOW_JS = Path(__import__("mlflow").__file__).parent / "server" / "js" / "build" / "static"


def _kind(uri: str, name: str) -> str | None:
    from mlflow import MlflowClient

    return MlflowClient(uri).get_experiment_by_name(name).tags.get(EXPERIMENT_KIND_TAG)


@pytest.mark.slow
def test_new_and_untagged_experiments_open_in_the_training_view(tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        ensure_experiment(uri, "fresh")
        assert _kind(uri, "fresh") == TRAINING_KIND
        client = MlflowClient(uri)
        client.create_experiment("made-elsewhere")  # no kind: vidtag tags it when it uses it
        ensure_experiment(uri, "made-elsewhere")
        assert _kind(uri, "made-elsewhere") == TRAINING_KIND
        chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
        ensure_experiment(uri, "chosen")  # a kind the user picked in the UI stays
        assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.mark.skipif(not MLFLOW_JS.is_dir(), reason="this mlflow ships no web app")
def test_the_installed_mlflow_ui_reads_this_tag_and_value() -> None:
    """Guards against an MLflow upgrade renaming the tag or the kind."""
    bundles = [path.read_text(errors="ignore") for path in MLFLOW_JS.rglob("*.js")]
    assert any(f'"{EXPERIMENT_KIND_TAG}"' in text for text in bundles)
    assert any(f'"{TRAINING_KIND}"' in text for text in bundles)
