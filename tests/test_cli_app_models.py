"""``vidtag models ls / promote / rollback`` against a real SQLite store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.helpers_registry import register, temp_registry

NAME = "cli-models"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("models_cli")
    with temp_registry(root) as uri:
        register(root / "v1", NAME, 1, alias="candidate", test_accuracy=0.5)
        register(root / "v2", NAME, 2, test_accuracy=0.75)
        yield uri


def _invoke(uri: str, *args: str):
    runner = CliRunner()
    return runner.invoke(app, ["models", *args, "--set", f"tracking.uri={uri}"])


@pytest.mark.slow
def test_ls_shows_versions_aliases_and_test_metrics(store) -> None:
    result = _invoke(store, "ls", NAME)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = {n: next(line for line in lines if f"│ {n} " in line) for n in ("1", "2")}
    assert "@candidate" in row["1"] and "0.5000" in row["1"]
    assert "@challenger" in row["2"] and "0.7500" in row["2"]
    assert "test_accuracy" in result.output


@pytest.mark.slow
def test_promote_then_rollback_by_hand(store) -> None:
    from pipeline.tracking.registry import alias_info

    result = _invoke(store, "promote", NAME, "2")
    assert result.exit_code == 0, result.output
    assert "version 1 -> 2" in result.output
    assert alias_info(NAME, "candidate").version == "2"
    result = _invoke(store, "rollback", NAME)
    assert result.exit_code == 0, result.output
    assert "version 2 -> 1" in result.output
    assert alias_info(NAME, "candidate").version == "1"
    result = _invoke(store, "promote", NAME, "7")
    assert result.exit_code == 2 and "no version 7" in result.output


def test_a_missing_store_is_not_created_and_exits_2(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "mlflow.db"
    result = _invoke(f"sqlite:///{missing}", "ls", NAME)
    assert result.exit_code == 2
    assert "no MLflow tracking store" in result.output and str(missing) in result.output
    assert not missing.exists() and not missing.parent.exists()
