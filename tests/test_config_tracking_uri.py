"""The tracking store follows the config: a relative ``sqlite:///`` URI in a config file resolves
against the file's folder, one from ``--set`` or ``$MLFLOW_TRACKING_URI`` against the working
folder; commands that only read never create a missing store and name the store they used."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.config import Config, absolute_sqlite_uri, load_config
from pipeline.tracking.mlflow import TrackingError, resolve_uri
from tests.helpers_registry import register, temp_registry

NAME = "uri-follows-config"


def _config_file(folder: Path, uri: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.yaml"
    path.write_text(f"tracking:\n  uri: {uri}\n  registered_model: {NAME}\n")
    return path


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "sqlite:///{base}/mlflow.db"),
        ("sqlite:///../store/m.db", "sqlite:///{parent}/store/m.db"),
        ("sqlite:///sub/m.db?timeout=5", "sqlite:///{base}/sub/m.db?timeout=5"),
        ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("databricks", "databricks"),
    ],
)
def test_absolute_sqlite_uri(tmp_path: Path, uri: str, expected: str) -> None:
    base = tmp_path / "configs"
    wanted = expected.format(base=base.resolve(), parent=tmp_path.resolve())
    assert absolute_sqlite_uri(uri, base) == wanted


def test_a_relative_uri_in_a_file_follows_the_file(tmp_path: Path, monkeypatch) -> None:
    config = _config_file(tmp_path / "project" / "configs", "sqlite:///../runs/mlflow.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(config)
    assert cfg.tracking.uri == f"sqlite:///{(tmp_path / 'project' / 'runs').resolve()}/mlflow.db"
    assert resolve_uri(cfg) == cfg.tracking.uri


def test_a_uri_from_set_or_the_environment_follows_the_working_folder(
    tmp_path: Path, monkeypatch
) -> None:
    config = _config_file(tmp_path / "configs", "sqlite:///in_file.db")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(config, ["tracking.uri=sqlite:///typed/m.db"])
    assert cfg.tracking.uri == f"sqlite:///{tmp_path.resolve()}/typed/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from_env.db")
    assert resolve_uri(Config()) == f"sqlite:///{tmp_path.resolve()}/from_env.db"


def test_a_schedule_set_uri_follows_the_schedules_file(tmp_path: Path) -> None:
    from flows.schedules import _resolve_override

    resolved = _resolve_override("tracking.uri=sqlite:///../runs/m.db", tmp_path / "configs")
    assert resolved == f"tracking.uri=sqlite:///{tmp_path.resolve()}/runs/m.db"


@pytest.mark.slow
def test_a_config_run_from_another_folder_finds_its_own_store(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    (project / "runs").mkdir(parents=True)
    with temp_registry(project / "runs"):
        register(tmp_path / "model", NAME, 1, alias="candidate", test_accuracy=0.5)
    config = _config_file(project / "configs", "sqlite:///../runs/mlflow.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, ["models", "ls", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "@candidate" in result.output and "0.5000" in result.output
    assert list(elsewhere.iterdir()) == []  # no store made in the working folder


@pytest.mark.parametrize(
    "command",
    [
        ["models", "ls"],
        ["label", "inbox", "-m", f"models:/{NAME}@candidate", "-o", "labels"],
        ["ui", "--port", "1"],
    ],
    ids=["models-ls", "label", "ui"],
)
def test_read_only_commands_do_not_create_a_missing_store(
    tmp_path: Path, monkeypatch, command: list[str]
) -> None:
    config = _config_file(tmp_path / "configs", "sqlite:///../runs/mlflow.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, [*command, "-c", str(config)])
    missing = (tmp_path / "runs" / "mlflow.db").resolve()
    assert result.exit_code == 2, result.output
    assert "no MLflow tracking store" in result.output
    assert str(missing) in result.output.replace("\n", "")
    assert not missing.parent.exists() and list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_a_missing_model_names_the_store_it_looked_in(tmp_path: Path) -> None:
    from pipeline.tracking.mlflow import load_model
    from pipeline.tracking.registry import resolve_model

    with temp_registry(tmp_path) as uri:
        with pytest.raises(TrackingError, match="tracking store: " + uri):
            resolve_model("models:/no-such-model@candidate", uri)
        with pytest.raises(TrackingError, match="tracking store: " + uri):
            load_model("models:/no-such-model/3")
        with pytest.raises(TrackingError, match="tracking store: " + uri):
            load_model("runs:/0123456789abcdef/model")
