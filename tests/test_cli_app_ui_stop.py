"""``vidtag ui`` stops the whole MLflow server it started: after SIGTERM or SIGINT to vidtag,
nothing answers on the port and no process of the server is left."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers_registry import temp_registry
from tests.servers import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[1]


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ui_server_stops_with_vidtag(tmp_path: Path, signum: int) -> None:
    with temp_registry(tmp_path) as uri:  # the store must exist: ui never creates one
        pass
    port = free_port()
    log = tmp_path / "ui.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pipeline.cli.app", "ui", "--port", str(port)]
    with open(log, "w") as out:
        vidtag = subprocess.Popen(
            [*command, "--set", f"tracking.uri={uri}"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server: list[psutil.Process] = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", vidtag, log, timeout_s=120)
        server = psutil.Process(vidtag.pid).children(recursive=True)
        assert server, "vidtag ui started no server process"
        vidtag.send_signal(signum)
        assert vidtag.wait(timeout=30) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (_answers(port) or any(map(_alive, server))):
            time.sleep(0.2)
        assert not _answers(port), f"something still answers on port {port}"
        left = [p.pid for p in server if _alive(p)]
        assert not left, f"server processes left behind: {left}"
    finally:
        if vidtag.poll() is None:
            vidtag.kill()
            vidtag.wait()
        for process in server:  # on failure: no server outlives the test
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
