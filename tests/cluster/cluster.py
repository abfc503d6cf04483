"""The README's "Several machines" recipe on three namespaced hosts of this machine.

Host ``a`` runs ``prefect server start``, ``mlflow server`` (SQLite backend, artifacts served)
and ``dask scheduler``; hosts ``b`` and ``c`` run one ``dask worker`` each with
``PREFECT_API_URL`` and ``MLFLOW_TRACKING_URI`` pointing at ``a``. Every host has its own
``PREFECT_HOME`` (as separate machines would); the shared folder is a temp dir, the same path
everywhere. vidtag commands run on ``a`` through :meth:`Cluster.vidtag`.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.netns import Hosts, hosts
from tests.servers import prefect_env

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
PREFECT_PORT, MLFLOW_PORT, SCHEDULER_PORT = 4200, 5000, 8786  # each host has its own ports
WORKERS = ("b", "c")
START_TIMEOUT_S = 150


@dataclass
class Cluster:
    net: Hosts
    shared: Path  # the shared folder: videos, feature store, label output
    logs: Path
    workers: dict[str, subprocess.Popen]

    @property
    def a(self) -> str:
        return self.net.addresses["a"]

    @property
    def prefect_api(self) -> str:
        return f"http://{self.a}:{PREFECT_PORT}/api"

    @property
    def mlflow_uri(self) -> str:
        return f"http://{self.a}:{MLFLOW_PORT}"

    @property
    def scheduler(self) -> str:
        return f"tcp://{self.a}:{SCHEDULER_PORT}"

    def env(self, host: str) -> dict[str, str]:
        return host_env(host, self.shared, self.prefect_api, self.mlflow_uri)

    def vidtag(self, *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
        """``vidtag ARGS`` on host a, to the end."""
        argv = [str(BIN / "vidtag"), *args]
        return self.net.run("a", argv, self.env("a"), self.shared, timeout_s)

    def spawn_vidtag(self, *args: str, log: str) -> subprocess.Popen:
        argv = [str(BIN / "vidtag"), *args]
        return self.net.spawn("a", argv, self.env("a"), self.logs / log, self.shared)

    def api(self, path: str, body: dict) -> list | dict:
        """POST ``body`` to the Prefect API on a (from inside a: nothing else can reach it)."""
        argv = ["curl", "-sf", "-X", "POST", f"{self.prefect_api}/{path}",
                "-H", "Content-Type: application/json", "-d", json.dumps(body)]  # fmt: skip
        done = self.net.run("a", argv, self.env("a"), self.shared, timeout_s=30)
        if done.returncode != 0:
            raise RuntimeError(f"Prefect API {path}: curl exit {done.returncode} {done.stdout}")
        return json.loads(done.stdout)

    def get(self, url: str) -> dict:
        """GET ``url`` from inside host a (JSON)."""
        done = self.net.run("a", ["curl", "-sf", url], self.env("a"), self.shared, timeout_s=30)
        if done.returncode != 0:
            raise RuntimeError(f"GET {url}: curl exit {done.returncode} {done.stdout}")
        return json.loads(done.stdout)

    def task_runs(self, flow_run_id: str | None = None) -> list[dict]:
        body: dict = {"limit": 200, "sort": "EXPECTED_START_TIME_ASC"}
        if flow_run_id:
            body["flow_runs"] = {"id": {"any_": [flow_run_id]}}
        runs: list[dict] = []
        while True:
            page = self.api("task_runs/filter", {**body, "offset": len(runs)})
            runs += page
            if len(page) < body["limit"]:
                return runs

    def flow_runs(self, name: str) -> list[dict]:
        body = {"flows": {"name": {"any_": [name]}}, "sort": "START_TIME_DESC", "limit": 50}
        return self.api("flow_runs/filter", body)


def host_env(host: str, shared: Path, prefect_api: str, mlflow_uri: str) -> dict[str, str]:
    """What a process on ``host`` sees: its own Prefect home, the servers on a, no proxy."""
    home = shared / "hosts" / host
    home.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in prefect_env(home / "prefect").items()
        if not key.lower().endswith("_proxy")
    }
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL")  # only the server on a has a database
    env.update(
        PYTHONPATH=str(REPO),
        PREFECT_API_URL=prefect_api,
        MLFLOW_TRACKING_URI=mlflow_uri,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        TORCHINDUCTOR_CACHE_DIR=str(home / "torchinductor"),
        HOME=str(home),
        DASK_DISTRIBUTED__WORKER__DAEMON="false",
    )
    return env


def wait_until(check, what: str, timeout_s: float, processes=()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a process exited:\n{log.read_text()[-3000:]}")
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not ready after {timeout_s} s")


def _answers(net: Hosts, url: str, env: dict[str, str]) -> bool:
    done = subprocess.run(
        net.command("a", ["curl", "-sf", "-o", "/dev/null", url]), env=env, capture_output=True
    )
    return done.returncode == 0


@contextlib.contextmanager
def running_cluster(shared: Path) -> Iterator[Cluster]:
    """Hosts a, b, c with the servers and workers of the recipe, all stopped at the end."""
    logs = shared / "logs"
    logs.mkdir(parents=True)
    with hosts(["a", *WORKERS]) as net:
        a = net.addresses["a"]
        prefect_api, mlflow_uri = f"http://{a}:{PREFECT_PORT}/api", f"http://{a}:{MLFLOW_PORT}"
        env = {host: host_env(host, shared, prefect_api, mlflow_uri) for host in net.addresses}
        server_home = shared / "servers"
        server_home.mkdir()
        prefect_server_env = {
            **env["a"],
            "PREFECT_API_DATABASE_CONNECTION_URL": (
                f"sqlite+aiosqlite:///{server_home / 'prefect.db'}"
            ),
        }
        started = [
            net.spawn("a", [str(BIN / "prefect"), "server", "start", "--host", "0.0.0.0",
                            "--port", str(PREFECT_PORT)],
                      prefect_server_env, logs / "prefect.log", server_home),
            net.spawn("a", [str(BIN / "mlflow"), "server", "--host", "0.0.0.0",
                            "--port", str(MLFLOW_PORT), "--workers", "1",
                            "--backend-store-uri", f"sqlite:///{server_home / 'mlflow.db'}",
                            "--serve-artifacts",
                            "--artifacts-destination", str(server_home / "artifacts")],
                      {**env["a"], "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                      logs / "mlflow.log", server_home),
            net.spawn("a", [str(BIN / "dask"), "scheduler", "--host", a,
                            "--port", str(SCHEDULER_PORT), "--no-dashboard"],
                      env["a"], logs / "scheduler.log", server_home),
        ]  # fmt: skip
        watched = list(zip(started, [logs / "prefect.log", logs / "mlflow.log"], strict=False))
        for url in (f"{prefect_api}/health", f"{mlflow_uri}/health"):
            wait_until(lambda u=url: _answers(net, u, env["a"]), url, START_TIMEOUT_S, watched)
        workers = {}
        for host in WORKERS:
            log = logs / f"worker-{host}.log"
            workers[host] = net.spawn(
                host,
                [str(BIN / "dask"), "worker", f"tcp://{a}:{SCHEDULER_PORT}", "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard", "--host", net.addresses[host],
                 "--name", host, "--local-directory", str(shared / "hosts" / host / "dask")],
                env[host], log, shared,
            )  # fmt: skip
        for host, process in workers.items():
            log = logs / f"worker-{host}.log"
            wait_until(
                lambda log=log: "Registered to" in log.read_text(errors="replace"),
                f"dask worker on {host}", START_TIMEOUT_S, [(process, log)],
            )  # fmt: skip
        yield Cluster(net, shared, logs, workers)
