"""pipeline/cli/prefect_server.py: `vidtag server start|stop|status`, stale PID files, and
commands that run flows reusing the running server."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from pipeline.cli import prefect_server
from pipeline.cli.prefect_server import (
    ServerError,
    ServerRecord,
    pid_file,
    read_record,
    status,
    use_running_server,
    user_api_url,
)
from tests.conftest import REPO


def _write_record(home: Path, **fields) -> ServerRecord:
    values = {
        "pid": os.getpid(), "port": 1, "url": "http://127.0.0.1:1/api", "log": "x.log",
        "started_at": time.time(), "process_start": prefect_server._process_start(os.getpid()),
    }  # fmt: skip
    record = ServerRecord(**{**values, **fields})
    home.mkdir(parents=True, exist_ok=True)
    pid_file(home).write_text(json.dumps(asdict(record)))
    return record


def _finished_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_no_pid_file_is_down(tmp_path: Path) -> None:
    current = status(tmp_path)
    assert (current.state, current.record, current.stale) == ("down", None, False)
    assert current.describe() == "Prefect server: down"


def test_a_pid_file_of_a_gone_process_is_stale_and_removed(tmp_path: Path) -> None:
    _write_record(tmp_path, pid=_finished_pid(), process_start=None)
    current = status(tmp_path)
    assert current.state == "down" and current.stale
    assert not pid_file(tmp_path).exists()
    assert "stale PID file was removed" in current.describe()


def test_a_reused_pid_is_not_the_server(tmp_path: Path) -> None:
    # This test's own pid, recorded with another start time: a reused pid, never signalled.
    _write_record(tmp_path, process_start="1")
    current = prefect_server.stop(tmp_path, grace_s=0.1)
    assert current.stale and current.state == "down"
    assert not pid_file(tmp_path).exists()


def test_a_live_process_that_does_not_answer_is_starting(tmp_path: Path) -> None:
    _write_record(tmp_path, url=f"http://127.0.0.1:{prefect_server.free_port()}/api")
    current = status(tmp_path, timeout_s=0.2)
    assert current.state == "starting" and not current.up
    assert "starting" in current.describe()


def test_a_damaged_pid_file_names_itself(tmp_path: Path) -> None:
    pid_file(tmp_path).write_text("{not json")
    with pytest.raises(ServerError, match=str(pid_file(tmp_path))):
        read_record(tmp_path)


def test_start_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(ServerError, match="in use"):
            prefect_server.start(port=sock.getsockname()[1], home=tmp_path)
    assert not pid_file(tmp_path).exists()


def test_user_api_url_from_env_then_active_profile(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "profiles.toml"))
    assert user_api_url() is None
    (tmp_path / "profiles.toml").write_text(
        'active = "lab"\n[profiles.lab]\nPREFECT_API_URL = "http://lab:4200/api"\n'
        '[profiles.other]\nPREFECT_API_URL = "http://other:4200/api"\n'
    )
    assert user_api_url() == "http://lab:4200/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://env:4200/api")
    assert user_api_url() == "http://env:4200/api"


def test_use_running_server_leaves_everything_alone_when_down(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    said: list[str] = []
    assert use_running_server(said.append) is None
    assert "PREFECT_API_URL" not in os.environ and said == []


# --- the real server -------------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_PROFILES_PATH"] = str(home / "profiles.toml")
    env["PREFECT_UI_ENABLED"] = "false"
    return env


def vidtag(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.cli.app import app; app()", *args],
        env=_env(home), cwd=home.parent, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _group_members(group: int) -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _pgrp_state(p) == (group, True)
    ]


def _pgrp_state(proc: Path) -> tuple[int, bool] | None:
    with contextlib.suppress(OSError, IndexError):
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[2]), fields[0] != "Z"
    return None


def _flow_runs(url: str) -> list[dict]:
    import urllib.request

    request = urllib.request.Request(
        f"{url}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.mark.slow
def test_server_start_status_reuse_stop(tmp_path: Path) -> None:
    """Start on a free port; a flow command uses it and says so; stop leaves nothing behind."""
    from tests.helpers_video import write_video

    home = tmp_path / "prefect"
    port = prefect_server.free_port()
    started = vidtag(home, "server", "start", "--port", str(port))
    record = read_record(home)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert record is not None and record.port == port
        assert f"up at http://127.0.0.1:{port}/api" in started.stdout
        again = vidtag(home, "server", "start")
        assert "already running" in again.stdout and read_record(home) == record
        up = vidtag(home, "server", "status")
        assert up.returncode == 0 and f"pid {record.pid}, uptime" in up.stdout

        # A flow command (extract of one tiny video) runs its flow on this server.
        (tmp_path / "videos").mkdir()
        write_video(tmp_path / "videos" / "a.mp4", "mp4v", frames=10)
        sets = [
            f"data.videos={tmp_path / 'videos'}", "features.weights=none",
            "features.image_size=64", f"features.store={tmp_path / 'store'}", "decode.sample_fps=5",
        ]  # fmt: skip
        extract = vidtag(home, "extract", *[a for s in sets for a in ("--set", s)])
        assert extract.returncode == 0, extract.stdout + extract.stderr
        assert extract.stdout.count(f"using the Prefect server at {record.url}") == 1
        names = {run["flow_id"] for run in _flow_runs(record.url)}
        assert names, "the extract flow run is not on the started server"
    finally:
        stopped = vidtag(home, "server", "stop")
    assert stopped.returncode == 0 and f"pid {record.pid}" in stopped.stdout
    assert not pid_file(home).exists()
    assert not _answers(port), f"something still answers on port {port}"
    assert _group_members(record.pid) == []
    down = vidtag(home, "server", "status")
    assert down.returncode == 1 and "down" in down.stdout
