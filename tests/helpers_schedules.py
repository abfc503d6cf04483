"""Helpers of the schedules and serve tests: a schedules file, `vidtag serve` with no server."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import tiny_config


def schedules_file(folder: Path, *entries: dict) -> Path:
    """A schedules file in ``folder`` (with a small config ``c.yaml`` next to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.yaml").write_text(tiny_config(folder, folder / "clips", None, "clip").to_yaml())
    path = folder / "schedules.yaml"
    named = [{"name": f"e{i}", "interval": 60, **entry} for i, entry in enumerate(entries)]
    path.write_text(yaml.safe_dump({"deployments": named}))
    return path


def serve_without_server(path: Path):
    """``vidtag serve -f path`` with no Prefect API: (result, its output on one line)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["serve", "-f", str(path)])
    return result, " ".join(result.output.split())
