"""Live labelling: does it keep up with real time, and is its memory flat in stream length?

(1) Real time: ffmpeg serves a ``--seconds`` clip (640x360 H.264, 30 fps) in real time as
    MPEG-TS over UDP on 127.0.0.1; ``label_live`` labels it with resnet18 (random weights: none
    can be downloaded here; the cost is the same) at the config's image size and 5 fps, and a
    causal 2-layer GRU. Reported: the lag behind real time (median, p95, max, and the max over
    the first and the last quarter: a lag that grows is not real time), steps, frames/s.
    ``--threads 1`` runs one torch thread: on a machine shared past its cores, two OpenMP
    threads spin in barriers waiting for each other (a resnet18 batch measured 14x slower with
    2 threads than with 1 at a load of 16 on 2 cores).
(2) Memory: the same loop over a recording of 1 minute and of ``--long-minutes`` (the clip
    looped by ``ffmpeg -stream_loop``), read as fast as it is labelled (a file source), each in
    a fresh process; reported: peak RSS of each and their ratio.

    python benchmarks/live.py                       # 60-s stream, 1 vs 10 min, image 224
    python benchmarks/live.py --seconds 3 --short-seconds 4 --long-minutes 0.2 --image-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers_live import (  # noqa: E402
    causal_model,
    ffmpeg_exe,
    free_udp_port,
    udp_sender,
    wait_for_receiver,
)


def make_clip(path: Path, seconds: float) -> Path:
    """A moving pattern, 640x360 at 30 fps, H.264 with a keyframe every 2 s (a camera's)."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=640x360:rate=30", "-t", str(seconds), "-c:v", "libx264",
         "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def looped(clip: Path, seconds: float, out: Path) -> Path:
    """``clip`` repeated to ``seconds`` as one MPEG-TS recording (timestamps continue)."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(clip), "-t",
         str(seconds), "-c", "copy", "-f", "mpegts", str(out)],
        check=True,
    )  # fmt: skip
    return out


def config(tmp: Path, image_size: int):
    from pipeline.config import load_config

    threads = os.environ.get("VIDTAG_BENCH_THREADS")
    return load_config(
        None,
        [f"features.store={tmp / 'store'}", f"features.image_size={image_size}",
         "label.live_give_up_s=1.5", "label.overwrite=true", "decode.sample_fps=5",
         *([f"features.threads={threads}"] if threads else [])],
    )  # fmt: skip


def model(image_size: int):
    """resnet18 features -> a causal 2-layer GRU (256), as ``model.bidirectional: false``."""
    import torch

    from models.rnn import build_model

    trained = causal_model(image_size=image_size)
    torch.manual_seed(0)
    cfg = {"cell": "gru", "hidden": 256, "layers": 2, "bidirectional": False, "dropout": 0.0}
    trained.module = build_model("frame", 512, len(trained.classes), cfg).eval()
    from pipeline.features.spec import resolve_device, resolve_precision

    precision = resolve_precision("auto", resolve_device("auto"))
    trained.spec = trained.spec.__class__(**{**trained.spec.__dict__, "precision": precision})
    return trained


def loaded(trained):
    from tests.helpers_live import loaded as wrap

    return wrap(trained, "benchmark-causal-gru")


# --- children: one measurement per fresh process -----------------------------------------------


def child_realtime(seconds: float, image_size: int, tmp: Path) -> dict:
    from pipeline.labeling.live import label_live

    clip = make_clip(tmp / "clip.mp4", seconds)
    trained, cfg, port = model(image_size), config(tmp, image_size), free_udp_port()
    lags: list[tuple[float, float, float]] = []  # (wall, stream time, lag) per labelled batch
    result: dict = {}

    def on_status(status) -> None:
        if status.connected and status.steps:
            lags.append((time.perf_counter(), status.time_s, status.lag_s))

    def run() -> None:
        result["summary"] = label_live(
            f"udp://127.0.0.1:{port}", cfg, loaded(trained), tmp / "out", on_status=on_status,
            timeout_s=1.0,
        )  # fmt: skip

    thread = threading.Thread(target=run)
    thread.start()
    wait_for_receiver(port, timeout=120)
    started = time.perf_counter()
    with udp_sender(clip, port) as sender:
        sender.wait()
    sent = time.perf_counter()
    thread.join()
    wall = time.perf_counter() - started
    # Steps labelled after the sender finished: the last frame is decided only when the
    # stream is seen to end (a read timeout), which is not lag; reported apart.
    during = [(t, lag) for at, t, lag in lags if at <= sent]
    after = [lag for at, _, lag in lags if at > sent]
    times = np.array([t for t, _ in during])
    values = np.array([lag for _, lag in during])
    quarter = max(1, len(values) // 4)
    summary = result["summary"]
    return {
        "steps": summary["steps"],
        "expected_steps": int(round(seconds * 5)),
        "stream_s": float(times.max()) if times.size else 0.0,
        "wall_s": wall,
        "lag_median_s": float(np.median(values)),
        "lag_p95_s": float(np.percentile(values, 95)),
        "lag_max_s": float(values.max()),
        "lag_first_quarter_max_s": float(values[:quarter].max()),
        "lag_last_quarter_max_s": float(values[-quarter:].max()),
        "lag_after_end_max_s": float(max(after, default=0.0)),
        "gaps": summary["gaps"],
        "missed": summary["missed_frames"],
    }


def child_file(recording: Path, image_size: int, tmp: Path) -> dict:
    from pipeline.labeling.live import label_live

    trained, cfg = model(image_size), config(tmp, image_size)
    started = time.perf_counter()
    summary = label_live(str(recording), cfg, loaded(trained), tmp / "out", timeout_s=2.0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "steps": summary["steps"],
        "duration_s": summary["duration_s"],
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_kib / 1024,
    }


def in_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{run.stdout}\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="real-time stream length")
    parser.add_argument("--short-seconds", type=float, default=60.0, help="short recording")
    parser.add_argument(
        "--long-minutes", type=float, default=10.0, help="long recording (0: skip (2))"
    )
    parser.add_argument("--image-size", type=int, default=224, help="features.image_size")
    parser.add_argument(
        "--rss-image-size", type=int, default=None, help="image size of (2); default --image-size"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="features.threads (torch intra-op threads)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        os.environ["VIDTAG_BENCH_THREADS"] = str(args.threads)  # the children's config
    with tempfile.TemporaryDirectory(prefix="vidtag-live-bench-") as scratch:
        tmp = Path(scratch)
        if args.child:
            kind, *rest = args.child
            if kind == "realtime":
                figures = child_realtime(float(rest[0]), args.image_size, tmp)
            else:
                figures = child_file(Path(rest[0]), args.image_size, tmp)
            print(json.dumps(figures))
            return
        load = os.getloadavg()[0]
        print(
            f"cores: {os.cpu_count()}  load: {load:.1f}  threads: {args.threads or 'all'}  "
            f"image_size: {args.image_size}  sample_fps: 5"
        )
        rt = in_child("realtime", str(args.seconds), "--image-size", str(args.image_size))
        print(
            f"(1) real time, {args.seconds:g}-s UDP stream: {rt['steps']}/{rt['expected_steps']} "
            f"steps in {rt['wall_s']:.1f} s wall; lag median {rt['lag_median_s']:.3f} s, "
            f"p95 {rt['lag_p95_s']:.3f} s, max {rt['lag_max_s']:.3f} s; max in first quarter "
            f"{rt['lag_first_quarter_max_s']:.3f} s, last quarter "
            f"{rt['lag_last_quarter_max_s']:.3f} s; after the stream ended (its end seen by a "
            f"read timeout) {rt['lag_after_end_max_s']:.3f} s; gaps {rt['gaps']}"
        )
        if args.long_minutes <= 0:
            return
        clip = make_clip(tmp / "clip.mp4", min(60.0, args.short_seconds))
        rows = {}
        for label, seconds in (("short", args.short_seconds), ("long", args.long_minutes * 60)):
            recording = looped(clip, seconds, tmp / f"{label}.ts")
            size = str(args.rss_image_size or args.image_size)
            rows[label] = in_child("file", str(recording), "--image-size", size)
            row = rows[label]
            print(
                f"(2) {label:5} recording {seconds:g} s (image {size}): {row['steps']} steps in "
                f"{row['seconds']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB"
            )
        ratio = rows["long"]["peak_rss_mb"] / rows["short"]["peak_rss_mb"]
        growth = rt["lag_last_quarter_max_s"] - rt["lag_first_quarter_max_s"]
        lag = rt["lag_max_s"]
        print(f"lag_max_s={lag:.3f} lag_growth_s={growth:.3f} rss_long/short={ratio:.3f}")


if __name__ == "__main__":
    main()
