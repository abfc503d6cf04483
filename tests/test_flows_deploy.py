"""flows/deploy.py: deployments built from a schedules file, and `vidtag serve` against a
real Prefect server."""

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
from prefect import flow
from typer.testing import CliRunner

from flows.deploy import build_deployments
from flows.schedules import ScheduleError
from pipeline.cli.app import app
from tests.conftest import REPO, tiny_config
from tests.helpers_schedules import schedules_file, serve_without_server


@flow(name="greet")
def greet(name: str = "world") -> str:
    """A flow without a ``config`` parameter, for ``module:function`` entries."""
    return f"hello {name}"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"flow": "label", "config": "c.yaml"}, "needs parameters input, model, output"),
        (
            {"flow": "extract", "config": "c.yaml", "parameters": {"bogus": 1}},
            "no parameters bogus",
        ),
        ({"flow": "tests.test_flows_deploy:greet", "config": "c.yaml"}, "takes no config"),
        (
            {"flow": "tests.test_flows_deploy:greet", "parameters": {"nme": "x"}},
            "no parameters nme",
        ),
    ],
)
def test_parameters_must_bind_to_the_flow(tmp_path: Path, entry: dict, message: str) -> None:
    path = schedules_file(tmp_path, entry)
    with pytest.raises(ScheduleError, match=message) as error:
        build_deployments(path)
    assert str(path) in str(error.value) and "'e0'" in str(error.value)


def test_a_flow_without_config_gets_none(tmp_path: Path) -> None:
    path = schedules_file(tmp_path, {"flow": "tests.test_flows_deploy:greet"})
    (deployment,) = build_deployments(path)
    assert deployment.parameters == {}


def test_serve_checks_the_file_before_the_server(tmp_path: Path) -> None:
    path = schedules_file(tmp_path, {"flow": "label", "config": "c.yaml"})
    result, output = serve_without_server(path)
    assert result.exit_code == 2, result.output
    assert "needs parameters input" in output and "PREFECT_API_URL" not in output


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


@pytest.mark.slow
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
        "pipeline.cli.app",
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


@pytest.mark.slow
def test_missed_runs_collapse_to_the_latest_per_deployment(
    on_prefect_server, tmp_path: Path
) -> None:
    """Three runs came due while serve was down (and one is still ahead): serve's start cancels
    all past-due ones but the latest; the future one and other deployments are untouched."""
    from datetime import datetime, timedelta, timezone

    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    from flows.deploy import collapse_missed_runs

    path = schedules_file(
        tmp_path,
        {"flow": "tests.test_flows_deploy:greet", "active": False},
        {"flow": "tests.test_flows_deploy:greet", "active": False},
    )
    deployments = build_deployments(path)
    now = datetime.now(timezone.utc)
    with get_client(sync_client=True) as client:
        ids = [deployment.apply() for deployment in deployments]

        def scheduled(deployment_id, hours: float):
            state = Scheduled(scheduled_time=now + timedelta(hours=hours))
            return client.create_flow_run_from_deployment(deployment_id, state=state)

        missed = [scheduled(ids[0], -hours) for hours in (3, 2, 1)]
        ahead = scheduled(ids[0], 1)
        alone = scheduled(ids[1], -2)  # one missed run: nothing to collapse
        assert collapse_missed_runs(deployments, now=now) == {deployments[0].full_name: 2}
        states = {
            run.id: client.read_flow_run(run.id).state.type.value for run in (*missed, ahead, alone)
        }
    assert [states[run.id] for run in missed] == ["CANCELLED", "CANCELLED", "SCHEDULED"]
    assert states[ahead.id] == "SCHEDULED" and states[alone.id] == "SCHEDULED"
    assert collapse_missed_runs(deployments, now=now) == {}  # a second start changes nothing
