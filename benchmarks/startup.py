"""Where a command's fixed time goes: medians of N fresh processes, side by side.

Measures ``vidtag --help``; ``python -c "import torch"`` (the yardstick) and ``import
prefect|mlflow|cv2`` alone; a trivial flow run with no ``PREFECT_API_URL`` (Prefect's
temporary server starts); then, each without and with ``vidtag server start``: ``vidtag
extract`` of a small synthetic folder whose features are all stored, and ``vidtag label`` of
one 5-s clip into a new output folder (its features extracted too: the whole job) with a local
model folder (random resnet18 weights: the extractor's cost, not a trained model's). Every
figure is the wall time of a new process, as a user pays it, beside its CPU time (user +
system: on a loaded machine the fairer figure; the server's own CPU is not counted); the last
lines give the ratios to ``import torch`` that issue 15 asks for (stored extract <= 2x,
one-clip label <= 3x, with the server up), by wall and by CPU time. Compare two code trees
by running this script with ``PYTHONPATH`` set to each.

    python benchmarks/startup.py --repeats 3 --videos 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

CLI = "from pipeline.cli import app; app()"
IMPORT = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"
FLOW = (
    "import time; t = time.perf_counter()\n"
    "from flows.prefect_env import configure, lean_flow_runs; configure()\n"
    "from prefect import flow\n"
    "with lean_flow_runs(): flow(lambda: 1, name='startup-probe')()\n"
    "print(time.perf_counter() - t)"
)


def env(home: Path) -> dict[str, str]:
    """This environment without a Prefect API, with a Prefect home of its own: with no
    ``vidtag server`` there, every command starts the temporary server."""
    clean = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**clean, "PREFECT_HOME": str(home), "PREFECT_PROFILES_PATH": str(home / "none")}


class Figure(NamedTuple):
    seconds: float  # wall time (or the time the process reports)
    cpu_s: float  # user + system CPU seconds of the process (a loaded machine's fairer figure)


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(args: list[str], environment: dict[str, str]) -> Figure:
    cpu, started = _cpu_of_children(), time.perf_counter()
    subprocess.run(args, env=environment, check=True, capture_output=True, text=True)
    return Figure(time.perf_counter() - started, _cpu_of_children() - cpu)


def reported(args: list[str], environment: dict[str, str]) -> Figure:
    """The seconds the process prints on its last line (time inside it, start-up excluded)."""
    cpu = _cpu_of_children()
    run = subprocess.run(args, env=environment, check=True, capture_output=True, text=True)
    return Figure(float(run.stdout.strip().splitlines()[-1]), _cpu_of_children() - cpu)


def write_clip(path: Path, seconds: float, seed: int, fps: int = 10) -> None:
    """A ``seconds``-long 160x120 MPEG-4 clip, different per seed (the store keys by content)."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    base = np.random.default_rng(seed).integers(0, 255, (120, 160, 3), np.uint8)
    for frame in range(int(seconds * fps)):
        writer.write(np.roll(base, frame * 4, axis=1))
    writer.release()


def small_config(root: Path, videos: Path, store: Path) -> Path:
    """Random-init resnet18 at 64 px, no compile: the extractor's fixed costs, not its work."""
    from pipeline.config import load_config

    overrides = {
        "data.videos": videos, "decode.sample_fps": 5, "features.weights": "none",
        "features.image_size": 64, "features.compile": "off", "features.store": store,
    }  # fmt: skip
    config = root / f"{videos.name}.yaml"
    config.write_text(load_config(None, [f"{k}={v}" for k, v in overrides.items()]).to_yaml())
    return config


def model_folder(folder: Path) -> Path:
    """A frame tagger over resnet18 features (random weights, 64 px, 5 fps)."""
    import torch

    from models.rnn import build_model, model_config_dict
    from pipeline.features import ExtractorSpec
    from pipeline.tracking.model_io import save_model_dir
    from pipeline.video.decode import DECODER_VERSION

    torch.manual_seed(0)
    module = build_model("frame", 512, 3, {"hidden": 32, "layers": 1}).eval()
    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", DECODER_VERSION)
    classes = ["background", "a", "b"]
    return save_model_dir(folder, module, model_config_dict(module), spec, classes, "background")


class Server:
    """``vidtag server start`` in its own Prefect home, stopped at the end."""

    def __init__(self, home: Path) -> None:
        self.environment = env(home)

    def __enter__(self) -> Server:
        subprocess.run([sys.executable, "-c", CLI, "server", "start"], env=self.environment,
                       check=True, capture_output=True, timeout=180)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([sys.executable, "-c", CLI, "server", "stop"], env=self.environment,
                       check=True, capture_output=True, timeout=60)  # fmt: skip


def median(measure: Callable[[], Figure], repeats: int) -> Figure:
    figures = [measure() for _ in range(repeats)]
    return Figure(*(statistics.median(values) for values in zip(*figures, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--videos", type=int, default=3, help="videos in the stored folder")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="vidtag-startup-") as tmp:
        root = Path(tmp)
        bare, served = env(root / "bare-home"), env(root / "server-home")
        for index in range(args.videos):
            write_clip(root / "videos" / f"clip{index}.mp4", 2.0, seed=index)
        write_clip(root / "one" / "clip.mp4", 5.0, seed=1000)
        config = small_config(root, root / "videos", root / "store")
        subprocess.run([python, "-c", CLI, "extract", "-c", str(config)], env=bare, check=True,
                       capture_output=True)  # fmt: skip
        model = model_folder(root / "model")
        extract = [python, "-c", CLI, "extract", "-c", str(config)]
        runs = iter(range(10**6))

        def label(environment: dict[str, str]) -> Figure:
            """One clip into a new output folder and a new store: all of its work, every time."""
            run = next(runs)
            label_config = small_config(root, root / "one", root / f"label-store{run}")
            return wall([python, "-c", CLI, "label", str(root / "one"), "--model", str(model),
                         "--out", str(root / f"labels{run}"), "-c", str(label_config)],
                        environment)  # fmt: skip

        videos = f"{args.videos} video" + ("" if args.videos == 1 else "s")
        print(
            f"{'measure':<48} {'median s':>9} {'CPU s':>7}   ({args.repeats} fresh processes; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )

        def row(name: str, measure: Callable[[], Figure]) -> Figure:
            value = median(measure, args.repeats)
            print(f"{name:<48} {value.seconds:>9.2f} {value.cpu_s:>7.2f}", flush=True)
            return value

        row("vidtag --help (wall)", lambda: wall([python, "-c", CLI, "--help"], bare))
        torch_s = row("python -c 'import torch' (wall)",
                      lambda: wall([python, "-c", "import torch"], bare))  # fmt: skip
        for module in ("prefect", "mlflow", "cv2"):
            command = [python, "-c", IMPORT.format(module)]
            row(f"import {module}", lambda c=command: reported(c, bare))
        row("trivial flow, temporary server", lambda: reported([python, "-c", FLOW], bare))
        figures = {}
        for server, environment in (("temporary server", bare), ("vidtag server", served)):
            up = Server(root / "server-home") if server == "vidtag server" else nullcontext()
            with up:
                figures["extract", server] = row(
                    f"stored extract, {videos}, {server} (wall)", lambda e=environment:
                    wall(extract, e))  # fmt: skip
                figures["label", server] = row(
                    f"label one 5-s clip, {server} (wall)", lambda e=environment: label(e)
                )
        for kind, index in (("wall", 0), ("CPU", 1)):
            extract_ratio = figures["extract", "vidtag server"][index] / torch_s[index]
            label_ratio = figures["label", "vidtag server"][index] / torch_s[index]
            print(
                f"with vidtag server, {kind}: stored extract / import torch = "
                f"{extract_ratio:.2f} (goal <= 2), one-clip label / import torch = "
                f"{label_ratio:.2f} (goal <= 3)"
            )


if __name__ == "__main__":
    main()
