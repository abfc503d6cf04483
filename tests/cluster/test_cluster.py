"""The "Several machines" recipe of the README, run for real: hosts a (Prefect server, MLflow
server, Dask scheduler, vidtag), b and c (one ``dask worker`` each) as network namespaces on a
private range; videos, feature store and labels on a shared folder.

Extraction spreads over both workers, training logs to the MLflow server on a, labelling loads
``models:/…@candidate`` on the workers through that server; then worker c is SIGKILLed while it
holds a video (its claim lock) and the run must finish on b with every video accounted for
once, nothing written twice and nothing corrupt.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.cluster import MLFLOW_PORT, Cluster
from tests.cluster.netns import kill_group

pytestmark = pytest.mark.slow

MODEL = "cluster-clip"
CONFIG = "cluster.yaml"


def write_config(cluster: Cluster) -> Path:
    """A tiny config on the shared folder: Dask at a's scheduler, MLflow at a's server."""
    from tests.conftest import tiny_config

    shared = cluster.shared
    cfg = tiny_config(
        shared, shared / "train", shared / "train" / "labels.csv", "clip",
        **{"train.epochs": 4, "train.patience": 4, "tracking.uri": cluster.mlflow_uri,
           "tracking.registered_model": MODEL, "runner.kind": "dask",
           "runner.address": cluster.scheduler},
    )  # fmt: skip
    path = shared / CONFIG
    path.write_text(cfg.to_yaml())
    return path


@pytest.fixture(scope="module")
def config(cluster: Cluster) -> Path:
    from pipeline.synth.dataset import write_dataset

    write_dataset(cluster.shared / "train", task="clip", videos=18, seed=5, duration_s=(1.0, 1.5))
    return write_config(cluster)


def summary_rows(cluster: Cluster, flow: str, key: str) -> tuple[dict, list[dict]]:
    """The latest run of ``flow`` and the rows of its summary artifact (with each video's host)."""
    run = cluster.flow_runs(flow)[0]
    body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [run["id"]]}}}
    (artifact,) = cluster.api("artifacts/filter", body)
    return run, json.loads(artifact["data"])


def worker_hosts(cluster: Cluster) -> dict[str, str]:
    """Worker address prefix (tcp://<ip>:) -> host name."""
    return {f"tcp://{address}:": host for host, address in cluster.net.addresses.items()}


def hosts_of(cluster: Cluster, rows: list[dict]) -> list[str | None]:
    prefixes = worker_hosts(cluster)
    return [
        next((h for p, h in prefixes.items() if (row["host"] or "").startswith(p)), None)
        for row in rows
    ]


def check_store(store: Path) -> int:
    """Every entry of the store reads back whole (checksums); returns how many there are."""
    from pipeline.features.store import FeatureStore

    features = FeatureStore(store)
    entries = list(features.entries())
    for entry in entries:
        assert features.get(entry.video_key, entry.extractor_key) is not None, entry.path
    return len(entries)


def test_extract_runs_on_both_workers(cluster: Cluster, config: Path) -> None:
    done = cluster.vidtag("extract", "-c", str(config))
    assert done.returncode == 0, done.stdout[-4000:]
    run, rows = summary_rows(cluster, "extract_features", "extract-summary")
    assert run["state_type"] == "COMPLETED"
    assert len(rows) == 18 and {row["status"] for row in rows} == {"ok"}, rows
    assert set(hosts_of(cluster, rows)) == {"b", "c"}  # both workers got videos
    assert check_store(cluster.shared / "store") == 18
    task_runs = cluster.task_runs(run["id"])
    assert len(task_runs) == 18 and {t["state_type"] for t in task_runs} == {"COMPLETED"}


def test_train_logs_to_the_server_and_labelling_loads_the_model_on_the_workers(
    cluster: Cluster, config: Path
) -> None:
    from pipeline.synth.dataset import write_dataset

    trained = cluster.vidtag("train", "-c", str(config), "--promote")
    assert trained.returncode == 0, trained.stdout[-4000:]
    alias = cluster.get(
        f"{cluster.mlflow_uri}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=candidate"
    )
    assert alias["model_version"]["name"] == MODEL
    # The server wrote the artifacts (--serve-artifacts): the client needed no shared folder.
    assert any((cluster.shared / "servers" / "artifacts").rglob("*.safetensors"))
    write_dataset(cluster.shared / "inbox", task="clip", videos=6, seed=6, duration_s=(1.0, 1.5))
    out = cluster.shared / "labels"
    labelled = cluster.vidtag(
        "label", str(cluster.shared / "inbox"), "--model", f"models:/{MODEL}@candidate",
        "--out", str(out), "-c", str(config),
    )  # fmt: skip
    assert labelled.returncode == 0, labelled.stdout[-4000:]
    run, rows = summary_rows(cluster, "label_folder", "label-summary")
    assert len(rows) == 6 and {row["status"] for row in rows} == {"ok"}, rows
    assert set(hosts_of(cluster, rows)) <= {"b", "c"} and None not in hosts_of(cluster, rows)
    for row in rows:
        document = json.loads((out / row["video"]).with_suffix(".labels.json").read_text())
        assert document["model"]["uri"] == f"models:/{MODEL}@candidate"


def test_a_server_url_the_workers_cannot_reach_fails_before_any_task(
    cluster: Cluster, config: Path
) -> None:
    """127.0.0.1 on host a is a's own MLflow server, but on b and c it is nothing."""
    done = cluster.vidtag(
        "label", str(cluster.shared / "inbox"), "--model", f"models:/{MODEL}@candidate",
        "--out", str(cluster.shared / "labels-loopback"), "-c", str(config),
        "--set", f"tracking.uri=http://127.0.0.1:{MLFLOW_PORT}",
    )  # fmt: skip
    assert done.returncode != 0
    text = " ".join(done.stdout.split())  # the console wraps long lines
    assert f"cannot reach http://127.0.0.1:{MLFLOW_PORT}" in text, done.stdout[-3000:]
    assert cluster.net.addresses["b"] in text and cluster.net.addresses["c"] in text
    assert not (cluster.shared / "labels-loopback" / "summary.csv").exists()


class OutputWatch:
    """Every inode each ``*.labels.json`` under ``folder`` had while the run went on: an atomic
    rewrite renames a new file over the old, so a video written twice shows two inodes."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.inodes = folder, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def scan(self) -> None:
        for path in self.folder.rglob("*.labels.json"):
            try:
                self.inodes.setdefault(path, set()).add(path.stat().st_ino)
            except FileNotFoundError:
                pass

    def _watch(self) -> None:
        while not self.stop.is_set():
            self.scan()
            time.sleep(0.05)

    def finish(self) -> dict[Path, set[int]]:
        self.stop.set()
        self.thread.join()
        self.scan()
        return self.inodes


def holds_a_claim(group: int) -> bool:
    """True while a process of ``group`` holds a flock (a claim: it is working on a video)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[1] == "FLOCK" and fields[4].isdigit():
            try:
                if os.getpgid(int(fields[4])) == group:
                    return True
            except ProcessLookupError:
                continue
    return False


def test_a_worker_killed_mid_run_loses_nothing(cluster: Cluster, config: Path) -> None:
    from pipeline.synth.dataset import write_dataset

    videos = 12
    inbox, out = cluster.shared / "inbox-kill", cluster.shared / "labels-kill"
    write_dataset(inbox, task="clip", videos=videos, seed=7, duration_s=(2.0, 3.0))
    watch = OutputWatch(out)
    run = cluster.spawn_vidtag(
        "label", str(inbox), "--model", f"models:/{MODEL}@candidate", "--out", str(out),
        "-c", str(config), log="label-kill.log",
    )  # fmt: skip
    worker_c = cluster.workers["c"]
    deadline = time.monotonic() + 150
    # Kill c after the first videos are done, while it is working on one (holding its claim).
    while len(watch.inodes) < 2 or not holds_a_claim(worker_c.pid):
        assert run.poll() is None and time.monotonic() < deadline, "c never caught mid-video"
        time.sleep(0.02)
    kill_group(worker_c, signal.SIGKILL)
    worker_c.wait(10)
    run.wait(240)
    inodes = watch.finish()
    log = (cluster.logs / "label-kill.log").read_text()
    assert run.returncode == 0, log[-4000:]

    flow_run, rows = summary_rows(cluster, "label_folder", "label-summary")
    # Every video once, none failed; a video c finished but whose result died with it is run
    # again on b and finds its outputs current: "skipped", still written once.
    assert sorted(row["video"] for row in rows) == sorted({row["video"] for row in rows})
    assert len(rows) == videos and {row["status"] for row in rows} <= {"ok", "skipped"}, rows
    assert set(hosts_of(cluster, rows)) <= {"b", "c"}
    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == videos and {row["status"] for row in summary} <= {"ok", "skipped"}
    # Nothing written twice, nothing half-written.
    assert len(inodes) == videos and all(len(seen) == 1 for seen in inodes.values()), inodes
    for path in inodes:
        json.loads(path.read_text())
    assert check_store(cluster.shared / "store") == 18 + 6 + videos
    # Prefect: one task run per video, each ended Completed (none left Running or Crashed).
    task_runs = cluster.task_runs(flow_run["id"])
    names = sorted(t["name"] for t in task_runs)
    assert names == sorted(f"label {row['video']}" for row in rows), names
    assert {t["state_type"] for t in task_runs} == {"COMPLETED"}, [
        (t["name"], t["state_name"]) for t in task_runs
    ]
    assert flow_run["state_type"] == "COMPLETED"
