"""Where per-video tasks run: in the flow's process (``local``) or on Dask (``dask``).

``runner.kind: dask`` runs the per-video tasks of extraction and labelling on prefect-dask's
``DaskTaskRunner``: a ``LocalCluster`` of ``runner.workers`` processes (one thread each: each
task already overlaps decoding and inference) or, with ``runner.address``, an existing
``dask scheduler``. Every worker process loads the backbone (or model) once and reuses it for
every video it gets (``pipeline.features.extract.get_extractor`` caches per process).

Dask workers report their task runs to Prefect themselves, so they need a real Prefect server
in ``PREFECT_API_URL``: under Prefect's temporary server every worker process would start its
own server and database, and the flow run would never see its tasks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.config import Config
from pipeline.errors import UserError

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

SERVER_HINT = (
    "start one with `prefect server start --host 127.0.0.1 --port 4200` and "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)


class RunnerError(UserError):
    """The configured task runner cannot be used as configured."""


def prefect_api_url() -> str | None:
    """The Prefect API this process talks to (env, profile or temporary settings), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def check_runner(cfg: Config) -> None:
    """Fail before any work when ``runner.kind: dask`` has no shared Prefect server."""
    if cfg.runner.kind != "dask" or prefect_api_url():
        return
    where = f"the Dask cluster at {cfg.runner.address}" if cfg.runner.address else "Dask"
    raise RunnerError(
        f"runner.kind=dask needs a Prefect server in PREFECT_API_URL: without one, every "
        f"worker process of {where} would start its own temporary Prefect server and database "
        f"and the flow would never see its tasks. Fix: {SERVER_HINT} (on every machine that "
        f"runs a `dask worker` too), or use --set runner.kind=local"
    )


def task_runner_for(cfg: Config, needs: WorkerNeeds | None = None) -> TaskRunner:
    """A fresh task runner for ``cfg.runner`` (not started: a flow or ``with`` starts it);
    the workers of an existing scheduler are first checked for what ``needs`` lists."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if cfg.runner.kind != "dask":
        # One video at a time: each task already overlaps decode and inference.
        return ThreadPoolTaskRunner(max_workers=1)
    check_runner(cfg)
    from prefect_dask import DaskTaskRunner

    _quiet_dask()
    if cfg.runner.address:
        check_workers(cfg.runner.address, needs or WorkerNeeds())
        return DaskTaskRunner(address=cfg.runner.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": cfg.runner.workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            # Spawned workers inherit os.environ; pass the API explicitly too, since it may
            # come from a Prefect profile or temporary settings rather than the environment.
            "env": {"PREFECT_API_URL": prefect_api_url(), **_DASK_QUIET},
        },
    )


_DASK_QUIET = {"DASK_LOGGING__DISTRIBUTED": "warning"}


def _quiet_dask() -> None:
    """Dask logs every worker and connection at INFO: keep the console to warnings."""
    import logging

    for name, value in _DASK_QUIET.items():
        os.environ.setdefault(name, value)
    logging.getLogger("distributed").setLevel(logging.WARNING)


@dataclass(frozen=True)
class WorkerNeeds:
    """What every worker of a cluster must see for the tasks to work: shared folders (at the
    same path as here) and servers (at an address that is not only this machine's)."""

    paths: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()  # http(s) servers, checked at <url>/health


@contextlib.contextmanager
def task_mapper(cfg: Config, needs: WorkerNeeds | None = None) -> Iterator[Callable[..., Any]]:
    """``map(task, **parameters) -> futures`` on the runner ``cfg.runner`` asks for.

    Inside a flow that already runs on Dask (one given a ``DaskTaskRunner`` through
    ``flow.with_options``) or with ``runner.kind: local`` this is ``task.map``; otherwise a Dask
    runner is started for the block and stopped after it, so collect the futures inside the
    block. Choosing here, at run time, makes the choice hold however the flow was started: the
    CLI, a subflow of ``train``, a served or a work-pool deployment (which re-import the flow
    with its decorator's runner).
    """
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    active = context.task_runner if context else None
    if cfg.runner.kind == "local" or _is_dask(active):
        yield lambda task, **parameters: task.map(**parameters)
        return
    with task_runner_for(cfg, needs) as runner:
        yield lambda task, **parameters: runner.map(task, parameters)


def _is_dask(runner: object) -> bool:
    """Whether ``runner`` is a DaskTaskRunner, without importing Dask (~1-2 s) to find out: a
    process that never imported prefect_dask has none."""
    import sys

    module = sys.modules.get("prefect_dask")
    return module is not None and isinstance(runner, module.DaskTaskRunner)


CONNECT_TIMEOUT_S = 20.0


def check_workers(address: str, needs: WorkerNeeds) -> None:
    """Fail clearly, before any task, when the scheduler is unreachable or a worker has no
    PREFECT_API_URL, cannot see a shared folder or cannot reach a server (a URL that says
    127.0.0.1, a folder that only exists on this machine)."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RunnerError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
            f"`dask scheduler` and check runner.address"
        ) from None
    try:
        answers = client.run(worker_problems, needs.paths, needs.urls)
    finally:
        client.close()
    if not answers:
        raise RunnerError(f"the Dask scheduler at {address} has no workers: start `dask worker`")
    missing = sorted(worker for worker, problems in answers.items() if NO_API in problems)
    if missing:
        raise RunnerError(
            f"Dask workers {', '.join(missing)} have no PREFECT_API_URL: each would start its "
            f"own temporary Prefect server. Start them with the shared server's URL, e.g. "
            f"`PREFECT_API_URL={prefect_api_url()} dask worker {address}`"
        )
    lines = [f"  {worker}: {problem}" for worker, problems in sorted(answers.items())
             for problem in problems]  # fmt: skip
    if lines:
        raise RunnerError(
            "Dask workers cannot do this run's tasks (shared folders must have the same path on "
            "every machine; servers need an address the workers reach, not 127.0.0.1):\n"
            + "\n".join(lines)
        )


NO_API = "no PREFECT_API_URL"
HEALTH_TIMEOUT_S = 10.0


def worker_problems(paths: Sequence[str], urls: Sequence[str]) -> list[str]:
    """What stops this process (a Dask worker) from running the tasks; empty when nothing."""
    import urllib.request

    problems = [] if os.environ.get("PREFECT_API_URL") else [NO_API]
    problems += [f"no folder or file {path} here" for path in paths if not os.path.exists(path)]
    for url in urls:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S):
                pass
        except OSError as exc:  # URLError, HTTPError, timeouts
            problems.append(f"cannot reach {url} ({getattr(exc, 'reason', exc)})")
    return problems
