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


def test_stop_group_stops_the_leader_and_its_children_and_kills_the_stubborn() -> None:
    from pipeline.cli.server import stop_group

    # A leader with a child that ignores SIGTERM: the group is stopped, the child killed.
    script = (
        "import signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    leader = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = psutil.Process(int(leader.stdout.readline()))
    try:
        started = time.monotonic()
        stop_group(leader, grace_s=1.0)
        assert leader.returncode is not None
        child.wait(timeout=5)  # reaped by init once killed
        assert not _alive(child)
        assert time.monotonic() - started < 10
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
