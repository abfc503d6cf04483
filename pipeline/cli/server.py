"""Servers a command starts (``vidtag ui``'s MLflow server): run in their own process group,
and the whole group stopped when the command ends or is told to stop, so nothing outlives it."""

from __future__ import annotations

from typing import Any

_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def run_server(command: list[str], env: dict[str, str], grace_s: float = 10.0) -> int:
    """Run a server (``mlflow ui``) in its own process group until it exits or this process is
    told to stop; either way the whole group (uvicorn/gunicorn workers included) is stopped.

    The server's own session keeps a terminal's Ctrl-C away from it: vidtag receives SIGINT,
    SIGTERM or SIGHUP and stops the group itself (SIGTERM, then SIGKILL after ``grace_s``), so
    no worker outlives the command. Returns the server's exit status (0 when stopped here).
    """
    import signal
    import subprocess

    def stop_here(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    process = subprocess.Popen(command, env=env, start_new_session=True)
    previous = {}
    for name in _STOP_SIGNALS:
        number = getattr(signal, name)
        previous[number] = signal.signal(number, stop_here)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        stop_group(process, grace_s)


def stop_group(process: Any, grace_s: float = 10.0) -> None:
    """SIGTERM the process group led by ``process``; SIGKILL whatever is left after ``grace_s``."""
    import signal
    import time

    group = process.pid  # start_new_session: the leader's pid is the group id
    if not _signal_group(group, signal.SIGTERM):
        process.wait()
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so that it does not count as a member
        if not _signal_group(group, 0):
            return
        time.sleep(0.1)
    _signal_group(group, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to every process of ``group``; False when the group has no process left."""
    import os

    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True
