"""``vidtag server start|stop|status``: one local Prefect server that every command reuses.

Without ``PREFECT_API_URL`` each flow run starts Prefect's temporary server (10-16 s cold);
``vidtag server start`` runs ``prefect server start`` on 127.0.0.1 in the background instead,
in its own process group (its uvicorn and service processes with it), and records it in the
Prefect home (``PREFECT_HOME``, default ``~/.prefect``):

- ``vidtag-server.pid``: JSON with the leader's pid, its start time (so a reused pid is never
  mistaken for the server), the port, the API URL and the log file;
- ``vidtag-server.log``: the server's output.

Commands that run flows call :func:`use_running_server` before Prefect is imported: when the
recorded server answers and the user chose no API of their own (``PREFECT_API_URL`` in the
environment or the active Prefect profile), ``PREFECT_API_URL`` is set for this process and
its children. Nothing here imports Prefect: the check costs one local HTTP request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.cli.server import _signal_group
from pipeline.errors import UserError

PID_FILE = "vidtag-server.pid"
LOG_FILE = "vidtag-server.log"
HOST = "127.0.0.1"


class ServerError(UserError):
    """The local Prefect server cannot be started, or something else holds its place."""


@dataclass(frozen=True)
class ServerRecord:
    """What ``vidtag server start`` writes to the PID file."""

    pid: int  # the process group leader (``prefect server start``); its pid is the group id
    port: int
    url: str  # the API URL (``http://127.0.0.1:<port>/api``)
    log: str
    started_at: float  # wall-clock seconds since the epoch
    process_start: str | None  # the kernel's start time of ``pid`` (None where unknown)


@dataclass(frozen=True)
class ServerStatus:
    state: str  # up | starting | down
    record: ServerRecord | None
    stale: bool = False  # a PID file named a process that is gone (and was removed)

    @property
    def up(self) -> bool:
        return self.state == "up"

    def describe(self) -> str:
        """One line for ``vidtag server status``."""
        if self.record is None or self.state == "down":
            suffix = " (a stale PID file was removed)" if self.stale else ""
            return f"Prefect server: down{suffix}"
        record = self.record
        uptime = _duration(time.time() - record.started_at)
        if self.state == "starting":
            return (
                f"Prefect server: starting (no answer yet) at {record.url}, pid {record.pid}, "
                f"log {record.log}"
            )
        return f"Prefect server: up at {record.url}, pid {record.pid}, uptime {uptime}"


def prefect_home() -> Path:
    """``PREFECT_HOME`` (``~`` expanded), default ``~/.prefect``, as Prefect itself reads it."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def pid_file(home: Path | None = None) -> Path:
    return (home or prefect_home()) / PID_FILE


# --- status ----------------------------------------------------------------------------------


def read_record(home: Path | None = None) -> ServerRecord | None:
    """The PID file's record; None when there is none. A file that is not a record (hand
    edited, truncated) is a ServerError naming it: never guess which process to stop."""
    path = pid_file(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return ServerRecord(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ServerError(
            f"{path} is not a vidtag server record ({exc}); remove it if no server runs"
        ) from None


def status(home: Path | None = None, timeout_s: float = 1.0) -> ServerStatus:
    """Whether the recorded server runs and answers; a stale PID file (its process gone or its
    pid reused by another program) is removed."""
    record = read_record(home)
    if record is None:
        return ServerStatus("down", None)
    if not _is_recorded_process(record):
        pid_file(home).unlink(missing_ok=True)
        return ServerStatus("down", record, stale=True)
    state = "up" if healthy(record.url, timeout_s) else "starting"
    return ServerStatus(state, record)


def healthy(url: str, timeout_s: float = 1.0) -> bool:
    """Whether the Prefect API at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_s) as response:  # noqa: S310
            return response.status == 200
    except (OSError, ValueError):
        return False


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``); None elsewhere or
    when it is gone. With the pid, it names one process for good: pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces, so split after it.
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, and not ours
        return True
    return True


def _is_recorded_process(record: ServerRecord) -> bool:
    """Whether the recorded leader still runs (the same process, not a reused pid)."""
    _reap(record.pid)
    if not _alive(record.pid):
        return False
    if record.process_start is None:
        return True
    return _process_start(record.pid) == record.process_start


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is this process's child (the server was started in
    this process, as in tests): a zombie would still look alive."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# --- start -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def prefect_executable() -> str:
    """The ``prefect`` command installed beside this Python (the same environment)."""
    beside = Path(sys.executable).with_name("prefect")
    return str(beside) if beside.exists() else "prefect"


def start(
    port: int | None = None, timeout_s: float = 90.0, home: Path | None = None
) -> ServerStatus:
    """Start ``prefect server start`` on 127.0.0.1 (``port`` or a free one) in the background,
    in its own process group, and wait until it answers. Already up: its status, unchanged.

    A server that exits or does not answer within ``timeout_s`` is stopped and a ServerError
    carries the end of its log.
    """
    home = home or prefect_home()
    current = status(home)
    if current.record is not None and current.state != "down":
        return current  # up, or starting: one server per Prefect home
    port = port or free_port()
    if _port_taken(port):
        raise ServerError(f"port {port} on {HOST} is in use: choose another with --port")
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_FILE
    command = [prefect_executable(), "server", "start", "--host", HOST, "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=server_env(home), cwd=home, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    record = ServerRecord(
        process.pid, port, f"http://{HOST}:{port}/api", str(log), time.time(),
        _process_start(process.pid),
    )  # fmt: skip
    from pipeline.fileio import atomic_write_text

    atomic_write_text(pid_file(home), json.dumps(asdict(record), indent=2) + "\n")
    try:
        _wait_healthy(record, process, timeout_s)
    except BaseException:
        stop(home)
        raise
    return ServerStatus("up", record)


def server_env(home: Path) -> dict[str, str]:
    """The server's environment: this one, its home fixed, no API of its own, no telemetry."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    return env


def _wait_healthy(record: ServerRecord, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"prefect server exited with status {process.returncode} before answering; "
                f"the end of its log {record.log}:\n{_log_tail(record.log)}"
            )
        if healthy(record.url):
            return
        time.sleep(0.25)
    raise ServerError(
        f"prefect server did not answer at {record.url} within {timeout_s:.0f} s (stopped); "
        f"the end of its log {record.log}:\n{_log_tail(record.log)}"
    )


def _log_tail(log: str, chars: int = 2000) -> str:
    try:
        return Path(log).read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(cannot read the log: {exc})"


# --- stop ------------------------------------------------------------------------------------


def stop(home: Path | None = None, grace_s: float = 10.0) -> ServerStatus:
    """Stop the recorded server's whole process group (SIGTERM, then SIGKILL after
    ``grace_s``) and remove the PID file. The status it had before (down: nothing to stop)."""
    before = status(home, timeout_s=0.5)
    record = before.record
    if record is not None and before.state != "down":
        _stop_group(record.pid, grace_s)
    pid_file(home).unlink(missing_ok=True)
    return before


def _stop_group(group: int, grace_s: float) -> None:
    if not _signal_group(group, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(group)
        if not _group_alive(group):
            return
        time.sleep(0.1)
    _signal_group(group, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(group):
        _reap(group)
        time.sleep(0.05)


def _group_alive(group: int) -> bool:
    """Whether any process of ``group`` is left that is not a zombie."""
    proc = Path("/proc")
    if not proc.is_dir():
        return _signal_group(group, 0)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":  # pgrp, state
                return True
    return False


# --- commands that run flows -----------------------------------------------------------------


def user_api_url() -> str | None:
    """The Prefect API the user chose: ``PREFECT_API_URL`` in the environment, else the active
    profile's in ``PREFECT_HOME/profiles.toml`` (read without importing Prefect)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml")
    try:
        profiles = tomllib.loads(path.expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


_announced: set[str] = set()


def use_running_server(say=print) -> str | None:
    """Point this process (and its children) at the running ``vidtag server``: its API URL, or
    None when none is up or the user chose their own API. ``say`` is told once per process.

    Call before Prefect is first imported: Prefect reads ``PREFECT_API_URL`` then.
    """
    if user_api_url():
        return None
    try:
        current = status(timeout_s=1.0)
    except ServerError:
        return None  # an unreadable PID file: `vidtag server status` says why
    if not current.up or current.record is None:
        return None
    url = current.record.url
    os.environ["PREFECT_API_URL"] = url
    if url not in _announced:
        _announced.add(url)
        say(f"using the Prefect server at {url} (vidtag server start)")
    return url


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
