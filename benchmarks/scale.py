"""Extraction throughput (videos/min) on a local Dask cluster of 1 and 2 worker processes.

Each worker is one process with one thread (torch uses one core in it), loads resnet18 once
and reuses it for every video it gets. The flows talk to a real Prefect server, started here
on 127.0.0.1 with a temp home unless PREFECT_API_URL is set. Every run writes a fresh store;
the numbers include the cluster start (workers import torch and build the backbone).

Usage: python benchmarks/scale.py [--videos 24] [--workers 1 2] [--image-size 224]
Last line: ``workers=1 <R1> videos/min, workers=2 <R2> videos/min``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.servers, flows


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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
