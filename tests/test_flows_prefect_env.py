"""flows/prefect_env.py: Prefect's settings put in the environment before prefect is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SETTINGS = (
    "PREFECT_LOGGING_LEVEL",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL",
    "PREFECT_SERVER_LOGGING_LEVEL",
    "PREFECT_LOGGING_LOG_PRINTS",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
)


def _configured(code: str, **env: str) -> dict:
    """Run ``code`` (after ``from flows.prefect_env import configure``) in a fresh process whose
    environment holds none of SETTINGS but ``env``; it prints a JSON document."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    script = "import json, os, sys\nfrom flows.prefect_env import configure\n" + code
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**clean, **env},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


QUIET_RUNS = {
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "CRITICAL",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
}
ALWAYS = {
    "PREFECT_LOGGING_LOG_PRINTS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


@pytest.mark.parametrize(
    ("verbose", "run_logs", "expected"),
    [
        (False, True, {"PREFECT_LOGGING_LEVEL": "WARNING", **ALWAYS}),
        (False, False, {"PREFECT_LOGGING_LEVEL": "WARNING", **QUIET_RUNS, **ALWAYS}),
        (True, False, {"PREFECT_LOGGING_LEVEL": "INFO", **ALWAYS}),  # verbose: run logs shown
        (True, True, {"PREFECT_LOGGING_LEVEL": "INFO", **ALWAYS}),
    ],
)
def test_configure_sets_exactly_these_settings(verbose, run_logs, expected) -> None:
    code = (
        f"configure(verbose={verbose}, run_logs={run_logs})\n"
        f"print(json.dumps({{k: os.environ[k] for k in {SETTINGS!r} if k in os.environ}}))\n"
    )
    assert _configured(code) == expected


def test_configure_keeps_what_the_user_set() -> None:
    code = f"configure()\nprint(json.dumps({{k: os.environ.get(k) for k in {SETTINGS!r}}}))\n"
    found = _configured(
        code, PREFECT_LOGGING_LEVEL="DEBUG", PREFECT_SERVER_ANALYTICS_ENABLED="true"
    )
    assert found["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    assert found["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"
    assert found["PREFECT_LOGGING_LOG_PRINTS"] == "false"


def test_prefect_imported_after_configure_reads_the_settings() -> None:
    code = (
        "configure(run_logs=False)\n"
        "assert 'prefect' not in sys.modules  # configure itself never imports prefect\n"
        "import prefect.settings as s\n"
        "print(json.dumps({'level': s.PREFECT_LOGGING_LEVEL.value(),\n"
        "                  'analytics': s.PREFECT_SERVER_ANALYTICS_ENABLED.value(),\n"
        "                  'prints': s.PREFECT_LOGGING_LOG_PRINTS.value()}))\n"
    )
    assert _configured(code) == {"level": "WARNING", "analytics": False, "prints": False}


def test_lean_flow_runs_turns_heartbeats_off_inside_the_block_only() -> None:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.prefect_env import lean_flow_runs

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        with lean_flow_runs():
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 30
