"""Deployments and schedules: ``vidtag serve`` and the entry points ``prefect.yaml`` deploys.

``serve_schedules`` checks every entry of a schedules file (``pipeline/schedules.py``: flow,
config, parameters against the flow's signature), then registers them with the Prefect server
in ``PREFECT_API_URL`` and serves them with ``prefect.serve`` in this process. Schedules only
run on a real server (``prefect server start``), never on Prefect's temporary one, so serving
without one fails at once (after the file is checked, so its mistakes show first). Stopping
serve leaves the schedules active (``pause_on_shutdown=False``): runs that come due meanwhile
wait as Late until serve starts again; on restart they collapse to the latest one per deployment
(``collapse_missed_runs``), so a night away does not start the same job several times.

The ``*_from_file`` flows take a config *file* and overrides instead of a whole config, for
``prefect deploy`` (``prefect.yaml``), where parameters are static YAML and the config is
read on the worker at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.runner import SERVER_HINT, check_runner, prefect_api_url
from flows.schedules import (
    ScheduleEntry,
    entry_flow,
    flow_parameters,
    import_flow,
    load_schedules,
)
from pipeline.config import load_config, validate_tree
from pipeline.errors import UserError
from pipeline.jobs import plural


class NoServerError(UserError):
    """No Prefect server answers at PREFECT_API_URL."""


def require_server(timeout_s: float = 5.0) -> str:
    """The URL of the Prefect server in PREFECT_API_URL; a NoServerError when none answers."""
    import urllib.error
    import urllib.request

    url = prefect_api_url()
    if not url:
        raise NoServerError(
            "PREFECT_API_URL is not set: schedules never run on Prefect's temporary server. "
            f"Run a Prefect server: {SERVER_HINT}"
        )
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s):  # noqa: S310
            return url
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise NoServerError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({exc}). {SERVER_HINT}"
        ) from None


def build_deployment(entry: ScheduleEntry, schedules_file: Path):
    """A served deployment (RunnerDeployment) of ``entry``'s flow with its schedule.

    Offline: every check happens here, nothing is sent to the server yet.
    """
    prefect_flow = entry_flow(entry, schedules_file)
    parameters = flow_parameters(entry, prefect_flow, schedules_file)
    if parameters.get("config") is not None:
        source = f"{schedules_file}: deployment {entry.name!r}: config"
        check_runner(validate_tree(parameters["config"], source))
    return prefect_flow.to_deployment(
        name=entry.name,
        schedules=[entry.schedule()],
        parameters=parameters,
        description=entry.description,
        tags=["vidtag", *entry.tags],
    )


def build_deployments(schedules_file: str | Path) -> list[Any]:
    path = Path(schedules_file)
    return [build_deployment(entry, path) for entry in load_schedules(path)]


def serve_schedules(schedules_file: str | Path, limit: int | None = None) -> None:
    """Register and serve every deployment of ``schedules_file`` until interrupted."""
    from prefect import serve

    deployments = build_deployments(schedules_file)  # the whole file checked, offline
    require_server()
    for name, cancelled in collapse_missed_runs(deployments).items():
        print(f"{name}: {plural(cancelled, 'missed run')} cancelled, the latest one kept")
    serve(*deployments, pause_on_shutdown=False, limit=limit, print_starting_message=True)


def collapse_missed_runs(deployments: list[Any], now: Any = None) -> dict[str, int]:
    """Cancel every run of ``deployments`` that came due while serve was down but the latest.

    Prefect schedules runs ahead; while nothing serves them they wait (state Late) and all start
    when serve is back, and Prefect 3.9 has no "catch up: no" setting. Called before serving, so
    the runner only sees what is left: per deployment, the latest past-due run. Deployments the
    server does not know yet have nothing to collapse. Returns deployment -> runs cancelled
    (only those with at least one).
    """
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Cancelled

    now = now or datetime.now(timezone.utc)
    cancelled: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            name = deployment.full_name
            try:
                known = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            due = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[known.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    ),
                    expected_start_time=FlowRunFilterExpectedStartTime(before_=now),
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            )
            for run in due[1:]:  # due[0]: the latest, kept
                message = f"missed while vidtag serve was down; {due[0].name} runs instead"
                client.set_flow_run_state(run.id, Cancelled(message=message), force=True)
            if len(due) > 1:
                cancelled[name] = len(due) - 1
    return cancelled


# --- entry points for `prefect deploy` (prefect.yaml) ------------------------------------------


@flow(name="extract_features_from_file")
def extract_from_file(config_file: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """``extract_features`` with the config read from ``config_file`` on the worker."""
    from flows.extract import extract_features

    return extract_features(load_config(config_file, overrides or []))


@flow(name="train_from_file")
def train_from_file(
    config_file: str, overrides: list[str] | None = None, promote: bool = False
) -> dict[str, Any]:
    """``train`` (extraction subflow, training, MLflow run) from ``config_file``."""
    from flows.train import train

    return train(load_config(config_file, overrides or []), promote=promote)


@flow(name="label_folder_from_file")
def label_from_file(
    config_file: str,
    overrides: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``label_folder`` from ``config_file``; ``parameters`` go to that flow as they are."""
    label_folder = import_flow("flows.label:label_folder")
    return label_folder(config=load_config(config_file, overrides or []), **(parameters or {}))
