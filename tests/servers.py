"""Real servers for tests and benchmarks: a Prefect server and an MLflow tracking server.

Each runs on 127.0.0.1 with a free port, keeps all its state in a temp folder, and is stopped
when its fixture ends. Import the fixtures into a test module to use them::

    from tests.servers import prefect_server  # noqa: F401 (pytest fixture)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str  # the API URL clients use (PREFECT_API_URL / MLflow tracking URI)
    home: Path  # the temp folder holding the server's state
    process: subprocess.Popen
    log: Path


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, timeout_s: float = 20) -> None:
    """SIGTERM the server's process group (uvicorn/gunicorn workers too), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def prefect_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
        # Tests schedule runs seconds apart: look for due schedules often.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "5",
    }


@contextlib.contextmanager
def running_prefect_server(timeout_s: float = 120) -> Iterator[Server]:
    """``prefect server start`` on a free port with a temp PREFECT_HOME and database."""
    home = Path(tempfile.mkdtemp(prefix="vidtag-prefect-server-"))
    port = free_port()
    env = prefect_env(home)
    env.pop("PREFECT_API_URL", None)
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    yield from _serve(command, env, home, f"http://127.0.0.1:{port}/api", timeout_s)


@contextlib.contextmanager
def running_mlflow_server(timeout_s: float = 120) -> Iterator[Server]:
    """``mlflow server`` (one worker, no job runner) with SQLite and proxied artifacts."""
    home = Path(tempfile.mkdtemp(prefix="vidtag-mlflow-server-"))
    port = free_port()
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(home / "artifacts"),
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    yield from _serve(command, env, home, f"http://127.0.0.1:{port}", timeout_s)


def _serve(
    command: list[str], env: dict[str, str], home: Path, url: str, timeout_s: float
) -> Iterator[Server]:
    """Start ``command`` in ``home`` (log in home/server.log), wait for url/health, clean up."""
    log = home / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_healthy(f"{url}/health", process, log, timeout_s)
        yield Server(url, home, process, log)
    finally:
        stop(process)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[Server]:
    """One real Prefect server for the session (schedules, Dask workers, concurrent runs)."""
    with running_prefect_server() as server:
        yield server


@pytest.fixture
def on_prefect_server(prefect_server: Server) -> Iterator[Server]:
    """This process's flows talk to the real server for the test (and heartbeats are off)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    from flows.prefect_env import configure

    configure()
    settings = {PREFECT_API_URL: prefect_server.url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(settings):
        yield prefect_server


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[Server]:
    with running_mlflow_server() as server:
        yield server
