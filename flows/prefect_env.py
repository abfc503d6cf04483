"""Prefect settings for vidtag's commands: quiet console, no telemetry, lean local runs.

Call :func:`configure` before the first ``import prefect`` in a process: Prefect reads most
settings from the environment when it is imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator


def configure(verbose: bool = False, run_logs: bool = True) -> None:
    """Quiet Prefect for a command; ``run_logs=False`` (the extract/train/label commands, which
    print their own summary of every failure) also keeps flow and task runs' ERROR records and
    tracebacks off the console unless ``verbose``."""
    level = "INFO" if verbose else "WARNING"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", level)
    if not verbose and not run_logs:
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "CRITICAL")
        # The temporary server's services log cancelled event flushes as tracebacks when a
        # quick run (every video already stored) shuts it down: nothing the user can act on.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "false")
    # A telemetry write races the temporary server's database ("database is locked").
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Slow, shared machines take more than the default 20 s to start the temporary server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    # httpx logs every API request at INFO; MLflow logs database migrations and registrations.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not verbose:
        # Prefect's events worker warns that it is still sending the run's last events to the
        # server as the process exits, on every command run against a `vidtag server`.
        logging.getLogger("EventsWorker").setLevel(logging.ERROR)
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)


@contextlib.contextmanager
def lean_flow_runs() -> Iterator[None]:
    """No flow-run heartbeats (~1 s saved per flow run under the temporary server)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
