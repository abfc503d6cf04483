"""Extraction throughput (videos/min) on a local Dask cluster of 1 and 2 worker processes.

Each worker is one process with one thread (torch uses one core in it), loads resnet18 once
and reuses it for every video it gets. The flows talk to a real Prefect server, started here
on 127.0.0.1 with a temp home unless PREFECT_API_URL is set. Every run writes a fresh store;
the numbers include the cluster start (workers import torch and build the backbone).

Usage: python benchmarks/scale.py [--videos 24] [--workers 1 2] [--image-size 224]
Last line: ``workers=1 <R1> videos/min, workers=2 <R2> videos/min``.

A large folder: ``python benchmarks/scale.py --clips 2000`` runs ``vidtag extract`` (a
subprocess, as a user would) over that many 1-s 64x64 synthetic clips, first with the local
runner, then on a ``dask scheduler`` with 2 ``dask worker`` processes (127.0.0.1), both against
one real Prefect server. It prints videos/min, the peak RSS of the flow process and of each
worker until 10% of the clips were stored and over the whole run (flat: <= 1.2x), the Prefect
and MLflow database sizes, and whether each summary accounts for every clip.
Last line: ``clips=N complete=True local <R> videos/min rss x<r>, dask x2 <R> ... rss x<r>``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.servers, flows


def measure(folder: Path, store: Path, workers: int, image_size: int) -> tuple[float, dict]:
    from flows.extract import extract_features
    from pipeline.config import load_config

    sets = {
        "data.videos": folder, "decode.sample_fps": 5, "features.weights": "none",
        "features.image_size": image_size, "features.compile": "off", "features.store": store,
        "runner.kind": "dask", "runner.workers": workers,
    }  # fmt: skip
    cfg = load_config(None, [f"{k}={v}" for k, v in sets.items()])
    started = time.perf_counter()
    summary = extract_features(cfg, print_summary=False)
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--clips", type=int, help="the large-folder run over this many clips")
    args = parser.parse_args()
    if args.clips:
        large_folder(args.clips, workers=max(args.workers))
        return

    from flows.prefect_env import configure

    configure()
    from pipeline.synth.dataset import write_dataset
    from tests.servers import running_prefect_server

    with (
        tempfile.TemporaryDirectory(prefix="vidtag-scale-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        if not os.environ.get("PREFECT_API_URL"):
            server = stack.enter_context(running_prefect_server())
            os.environ["PREFECT_API_URL"] = server.url
        write_dataset(root / "videos", task="clip", videos=args.videos, seed=3)
        frames = None
        rates = []
        for workers in args.workers:
            seconds, summary = measure(
                root / "videos", root / f"store{workers}", workers, args.image_size
            )
            assert summary["failed"] == 0, summary["failures"]
            frames = summary["frames"]
            rate = summary["ok"] / seconds * 60
            rates.append(f"workers={workers} {rate:.1f} videos/min")
            print(
                f"workers={workers}: {summary['ok']} videos, {frames} frames in {seconds:.1f} s "
                f"-> {rate:.1f} videos/min, {frames / seconds:.1f} frames/s",
                flush=True,
            )
        print(", ".join(rates))


# --- A large folder: `vidtag extract` over many tiny clips, memory sampled as it goes. ---------

RSS_SAMPLE_S = 0.25


@dataclass
class Run:
    """One `vidtag extract` over the folder: its throughput and the peak RSS it reached."""

    name: str
    clips: int
    seconds: float = 0.0
    seconds_at_10: float = 0.0
    # peak RSS (bytes) per process ("flow", "worker-1", ...) until 10% of the clips were stored,
    # and over the whole run
    peak_at_10: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # the summary's statuses
    stored: int = 0

    def sample(self, rss: dict[str, int], done: int) -> None:
        for name, value in rss.items():
            self.peak[name] = max(self.peak.get(name, 0), value)
            if done <= self.clips // 10:
                self.peak_at_10[name] = max(self.peak_at_10.get(name, 0), value)

    def lines(self) -> list[str]:
        rate = self.clips / self.seconds * 60
        steady = (self.clips - self.clips // 10) / max(self.seconds - self.seconds_at_10, 1e-9)
        lines = [
            f"{self.name}: {self.clips} clips in {self.seconds:.0f} s -> {rate:.0f} videos/min "
            f"({steady * 60:.0f} videos/min after the first 10%); summary {self.counts}, "
            f"{self.stored} entries stored"
        ]
        for process, peak in sorted(self.peak.items()):
            at_10 = self.peak_at_10.get(process, peak)
            lines.append(
                f"  {process}: peak RSS {at_10 / 2**20:.0f} MB at 10%, {peak / 2**20:.0f} MB at "
                f"100% (x{peak / at_10:.2f})"
            )
        return lines

    def worst_ratio(self) -> float:
        return max(peak / self.peak_at_10.get(name, peak) for name, peak in self.peak.items())


def tree_rss(process) -> int:
    """RSS of ``process`` and its children (a nanny's worker), 0 once it is gone."""
    import psutil

    total = 0
    try:
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    except psutil.Error:
        pass
    return total


def stored_count(store: Path) -> int:
    return sum(
        1
        for key in (store.iterdir() if store.is_dir() else [])
        if key.is_dir()
        for entry in os.scandir(key)
        if entry.name.endswith(".safetensors")
    )


def run_extract(
    name: str, folder: Path, store: Path, env: dict, clips: int, sets: list[str], workers: dict
) -> Run:
    """`vidtag extract` on ``folder`` in a subprocess; RSS of it and ``workers`` sampled."""
    import psutil

    argv = [str(Path(sys.executable).parent / "vidtag"), "extract"]
    for item in [f"data.videos={folder}", f"features.store={store}", *COMMON_SETS, *sets]:
        argv += ["--set", item]
    result = Run(name, clips)
    started = time.perf_counter()
    log = store.parent / f"{name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    flow = psutil.Process(process.pid)
    while process.poll() is None:
        done = stored_count(store)
        if done <= clips // 10:
            result.seconds_at_10 = time.perf_counter() - started
        rss = {"flow": tree_rss(flow)}
        rss.update({worker: tree_rss(p) for worker, p in workers.items()})
        result.sample({k: v for k, v in rss.items() if v}, done)
        time.sleep(RSS_SAMPLE_S)
    result.seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(
            f"{name}: vidtag extract exited {process.returncode}:\n" + log.read_text()[-3000:]
        )
    result.stored = stored_count(store)
    return result


COMMON_SETS = [
    "decode.sample_fps=5", "features.weights=none", "features.image_size=64",
    "features.compile=off",
]  # fmt: skip


def summary_counts(api_url: str) -> dict[str, int]:
    """The statuses in the latest extract summary artifact on the Prefect server."""
    import json
    import urllib.request

    body = json.dumps(
        {"artifacts": {"key": {"any_": ["extract-summary"]}}, "sort": "CREATED_DESC", "limit": 1}
    ).encode()
    request = urllib.request.Request(
        f"{api_url}/artifacts/filter", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - local server
        (artifact,) = json.load(response)
    rows = json.loads(artifact["data"])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


@contextlib.contextmanager
def dask_workers(env: dict, count: int, folder: Path):
    """``dask scheduler`` and ``count`` ``dask worker`` processes on 127.0.0.1 (the README
    recipe on one machine); yields the scheduler address and {worker name: nanny process}."""
    import psutil

    from tests.servers import free_port, stop

    bin_dir = Path(sys.executable).parent
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = []
    try:
        with open(folder / "scheduler.log", "w") as log:
            processes.append(subprocess.Popen(
                [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))  # fmt: skip
        workers = {}
        for index in range(1, count + 1):
            with open(folder / f"worker-{index}.log", "w") as log:
                process = subprocess.Popen(
                    [str(bin_dir / "dask"), "worker", address, "--nworkers", "1", "--nthreads",
                     "1", "--no-dashboard", "--local-directory", str(folder / "dask")],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)  # fmt: skip
            processes.append(process)
            workers[f"worker-{index}"] = psutil.Process(process.pid)
        deadline = time.monotonic() + 180
        while not all(
            "Registered to" in (folder / f"worker-{i}.log").read_text() for i in range(1, count + 1)
        ):
            if time.monotonic() > deadline:
                raise SystemExit("dask workers did not register within 180 s")
            time.sleep(0.5)
        yield address, workers
    finally:
        for process in reversed(processes):
            stop(process)


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def large_folder(clips: int, workers: int) -> None:
    """`vidtag extract` over ``clips`` 1-s 64x64 clips, local runner then Dask."""
    from pipeline.synth.dataset import write_dataset
    from tests.servers import running_prefect_server

    with tempfile.TemporaryDirectory(prefix="vidtag-scale-large-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_dataset(root / "videos", task="clip", videos=clips, seed=11,
                      duration_s=(1.0, 1.0), sizes=[(64, 64)])  # fmt: skip
        print(f"{clips} clips written in {time.perf_counter() - started:.0f} s", flush=True)
        with running_prefect_server() as server:
            env = {**os.environ, "PREFECT_API_URL": server.url, "PYTHONPATH": str(REPO),
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_TRACKING_URI":
                   f"sqlite:///{root / 'mlflow.db'}"}  # fmt: skip
            runs = []
            local = run_extract("local", root / "videos", root / "store-local", env, clips, [], {})
            local.counts = summary_counts(server.url)
            runs.append(local)
            print("\n".join(local.lines()), flush=True)
            with dask_workers(env, workers, root) as (address, processes):
                sets = ["runner.kind=dask", f"runner.address={address}"]
                dask = run_extract(
                    f"dask x{workers}",
                    root / "videos",
                    root / "store-dask",
                    env,
                    clips,
                    sets,
                    processes,
                )
            dask.counts = summary_counts(server.url)
            runs.append(dask)
            print("\n".join(dask.lines()), flush=True)
            prefect_db = file_size(server.home / "prefect.db")
        mlflow_db = file_size(root / "mlflow.db")
        print(
            f"prefect.db {prefect_db / 2**20:.1f} MB after {2 * clips} task runs; mlflow.db "
            + (f"{mlflow_db / 2**20:.1f} MB" if mlflow_db else "not created (extract logs nothing)")
        )
        complete = all(r.counts.get("ok", 0) == clips == r.stored for r in runs)
        print(
            f"clips={clips} complete={complete} "
            + ", ".join(
                f"{r.name} {r.clips / r.seconds * 60:.0f} videos/min rss x{r.worst_ratio():.2f}"
                for r in runs
            )
        )


if __name__ == "__main__":
    main()
