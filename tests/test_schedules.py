"""Schedules file, `vidtag serve` against a real Prefect server, and the shipped prefect.yaml."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.schedules import ScheduleError, load_schedules
from tests.conftest import REPO, tiny_config


def test_shipped_schedules_file_is_valid() -> None:
    entries = load_schedules(REPO / "configs" / "schedules.yaml")
    assert {e.flow for e in entries} == {"train", "extract", "label"}
    for entry in entries:
        entry.load_config(REPO / "configs")  # every config it names loads
        assert entry.schedule().timezone == entry.timezone


def test_shipped_prefect_yaml_names_real_flows() -> None:
    from pipeline.schedules import import_flow

    tree = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in tree["deployments"]:
        module, _, name = deployment["entrypoint"].partition(":")
        flow = import_flow(f"{module.removesuffix('.py').replace('/', '.')}:{name}")
        assert set(deployment["parameters"]) <= set(flow.parameters.properties)
        assert deployment["work_pool"]["name"] == "vidtag" and deployment["schedules"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"cron": "0 2 * * *", "interval": 60}, "exactly one of cron or interval"),
        ({}, "exactly one of cron or interval"),
        ({"cron": "61 * * * *"}, "bad cron"),
        ({"interval": "soon"}, "bad interval"),
        ({"interval": 60, "timezone": "Mars/Base"}, "unknown timezone"),
        ({"interval": 60, "flow": "retrain"}, "unknown flow"),
        ({"interval": 60, "every": 3}, "every"),
    ],
)
def test_bad_entries_are_clear_errors(tmp_path: Path, entry: dict, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"deployments": [{"name": "n", "flow": "extract", **entry}]}))
    with pytest.raises(ScheduleError, match=message):
        load_schedules(path)


@pytest.mark.parametrize(("value", "seconds"), [(90, 90), ("90s", 90), ("15m", 900), ("1h", 3600)])
def test_intervals_accept_seconds_and_units(tmp_path: Path, value, seconds: float) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"deployments": [{"name": "n", "flow": "extract", "interval": value}]})
    )
    assert load_schedules(path)[0].interval == seconds


@pytest.mark.parametrize("api_url", [None, "http://127.0.0.1:9/api"])
def test_serve_without_a_server_fails_at_once_with_the_command(api_url) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = {PREFECT_API_URL: api_url} if api_url else {}
    restore = set() if api_url else {PREFECT_API_URL}
    started = time.perf_counter()
    with temporary_settings(settings, restore_defaults=restore):
        result = CliRunner().invoke(app, ["serve", "-f", str(REPO / "configs" / "schedules.yaml")])
    assert result.exit_code == 2, result.output
    assert "prefect server start" in " ".join(result.output.split())
    assert time.perf_counter() - started < 15


def _api(server_url: str, path: str, body: dict | None = None) -> dict | list:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _completed_runs(server_url: str, deployment_id: str) -> list[dict]:
    body = {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    return _api(server_url, "/flow_runs/filter", body)


def _wait_for(condition, timeout_s: float, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vidtag serve exited early:\n{log.read_text()[-3000:]}")
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out; serve log:\n{log.read_text()[-3000:]}")


def test_serve_runs_a_scheduled_extraction_and_leaves_it_active(
    prefect_server, clip_dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for video in sorted(clip_dataset.rglob("*.mp4"))[:2]:
        shutil.copy(video, folder / video.name)
    cfg = tiny_config(tmp_path, folder, None, "clip")
    (tmp_path / "extract.yaml").write_text(cfg.to_yaml())
    schedules = {
        "deployments": [
            {"name": "test-inbox", "flow": "extract", "config": "extract.yaml",
             "parameters": {"print_summary": False}, "interval": 5, "timezone": "Europe/Berlin"},
            {"name": "test-nightly", "flow": "train", "config": "extract.yaml",
             "cron": "0 2 * * *", "active": False},
        ]
    }  # fmt: skip
    (tmp_path / "schedules.yaml").write_text(yaml.safe_dump(schedules))
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server.url,
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
    }
    log = tmp_path / "serve.log"
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "serve",
        "-f",
        str(tmp_path / "schedules.yaml"),
    ]
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        name = "/deployments/name/extract_features/test-inbox"
        deployment = _wait_for(lambda: _try(lambda: _api(prefect_server.url, name)), 60, serve, log)
        runs = _wait_for(
            lambda: _completed_runs(prefect_server.url, deployment["id"]), 150, serve, log
        )
        assert runs[0]["parameters"]["config"]["features"]["image_size"] == 64
        assert len(list((tmp_path / "store").rglob("*.safetensors"))) == 2
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    after = _api(prefect_server.url, name)
    assert not after["paused"] and [s["active"] for s in after["schedules"]] == [True]
    assert after["schedules"][0]["schedule"]["timezone"] == "Europe/Berlin"
    nightly = _api(prefect_server.url, "/deployments/name/train/test-nightly")
    assert [s["active"] for s in nightly["schedules"]] == [False]


def _try(call):
    try:
        return call()
    except OSError:
        return None
