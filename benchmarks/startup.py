"""Where a command's fixed time goes: medians of N fresh processes, side by side.

Measures ``vidtag --help``; ``import prefect|mlflow|torch|cv2`` alone; a trivial flow run with
no ``PREFECT_API_URL`` (Prefect's temporary server starts); and ``vidtag extract`` of a small
synthetic folder whose features are all stored (the whole CLI, wall time). Every figure is a
new Python process, as a user pays it. Compare two code trees by running this script with
``PYTHONPATH`` set to each.

    python benchmarks/startup.py --repeats 3 --videos 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = "from pipeline.cli import app; app()"
IMPORT = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"
FLOW = (
    "import time; t = time.perf_counter()\n"
    "from flows.prefect_env import configure, lean_flow_runs; configure()\n"
    "from prefect import flow\n"
    "with lean_flow_runs(): flow(lambda: 1, name='startup-probe')()\n"
    "print(time.perf_counter() - t)"
)


def env() -> dict[str, str]:
    """This environment without a Prefect API: every command starts the temporary server."""
    return {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}


def wall(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env(), check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def reported(args: list[str]) -> float:
    """The seconds the process prints on its last line (time inside it, start-up excluded)."""
    run = subprocess.run(args, env=env(), check=True, capture_output=True, text=True)
    return float(run.stdout.strip().splitlines()[-1])


def make_folder(folder: Path, videos: int) -> None:
    """``videos`` 2-s 160x120 MPEG-4 clips, each different (the store keys by content)."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(videos):
        path = folder / f"clip{index}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
        base = rng.integers(0, 255, (120, 160, 3), np.uint8)
        for frame in range(20):
            writer.write(np.roll(base, frame * 4, axis=1))
        writer.release()


def stored_extract_config(root: Path, videos: int) -> Path:
    """A small config (random-init resnet18 at 64 px) whose folder is extracted once here."""
    from pipeline.config import load_config

    make_folder(root / "videos", videos)
    overrides = {
        "data.videos": root / "videos", "decode.sample_fps": 5, "features.weights": "none",
        "features.image_size": 64, "features.compile": "off", "features.store": root / "store",
    }  # fmt: skip
    config = root / "startup.yaml"
    config.write_text(load_config(None, [f"{k}={v}" for k, v in overrides.items()]).to_yaml())
    subprocess.run([sys.executable, "-c", CLI, "extract", "-c", str(config)], env=env(), check=True,
                   capture_output=True)  # fmt: skip
    return config


def median(measure, repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--videos", type=int, default=3, help="videos in the stored folder")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="vidtag-startup-") as tmp:
        config = stored_extract_config(Path(tmp), args.videos)
        rows = [("vidtag --help (wall)", lambda: wall([python, "-c", CLI, "--help"]))]
        for module in ("prefect", "mlflow", "torch", "cv2"):
            command = [python, "-c", IMPORT.format(module)]
            rows.append((f"import {module}", lambda c=command: reported(c)))
        rows.append(("trivial flow, temporary server", lambda: reported([python, "-c", FLOW])))
        extract = [python, "-c", CLI, "extract", "-c", str(config)]
        videos = f"{args.videos} video" + ("" if args.videos == 1 else "s")
        rows.append((f"stored extract, {videos} (wall)", lambda: wall(extract)))
        print(f"{'measure':<40} {'median s':>9}   ({args.repeats} fresh processes each)")
        for name, measure in rows:
            print(f"{name:<40} {median(measure, args.repeats):>9.2f}", flush=True)


if __name__ == "__main__":
    main()
