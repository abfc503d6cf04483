"""pipeline/tracking/registry.py: a model URI pinned to one fixed source for a whole run."""

from __future__ import annotations

import pytest

from pipeline.tracking.mlflow import TrackingError
from pipeline.tracking.registry import ModelRef, resolve_model
from tests.helpers_labeling import random_model, register


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "runs:/abc123/model",
            ModelRef("runs:/abc123/model", "runs:/abc123/model", "abc123", None),
        ),
        ("s3://bucket/model", ModelRef("s3://bucket/model", "s3://bucket/model", None, None)),
    ],
)
def test_uris_that_never_move_are_their_own_source(uri: str, expected: ModelRef) -> None:
    assert resolve_model(uri) == expected


def test_a_folder_is_resolved_to_its_absolute_path(tmp_path, monkeypatch) -> None:
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    folder = str((tmp_path / "model").resolve())
    assert resolve_model("model") == ModelRef(folder, folder, None, None)


@pytest.mark.slow  # builds a SQLite MLflow store
def test_aliases_latest_and_versions_pin_to_one_registered_version(registry, tmp_path) -> None:
    from mlflow import MlflowClient

    first = register(tmp_path / "v1", random_model(), "pinned")
    second = register(tmp_path / "v2", random_model(seed=1), "pinned")
    assert (first, second) == ("1", "2")
    client = MlflowClient(registry)
    runs = {str(v.version): v.run_id for v in client.search_model_versions("name = 'pinned'")}
    client.set_registered_model_alias("pinned", "production", "1")
    cases = {
        "models:/pinned@candidate": ("models:/pinned/2", "2"),  # register() moved it to 2
        "models:/pinned@production": ("models:/pinned/1", "1"),
        "models:/pinned/latest": ("models:/pinned/2", "2"),
        "models:/pinned/1": ("models:/pinned/1", "1"),
    }
    for uri, (source, version) in cases.items():
        assert resolve_model(uri, registry) == ModelRef(uri, source, runs[version], version), uri
    with pytest.raises(TrackingError, match="models:/pinned@nothing"):
        resolve_model("models:/pinned@nothing", registry)
    with pytest.raises(TrackingError, match="models:/pinned/Production"):
        resolve_model("models:/pinned/Production", registry)  # no version in that stage
