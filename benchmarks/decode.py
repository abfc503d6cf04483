"""Decode throughput and peak memory per backend on generated videos.

    .venv/bin/python benchmarks/decode.py [--quick]

Writes 360p/720p videos of 1 and 10 minutes (10 s and 60 s with --quick) into a temp dir, as
H.264 (libx264 through imageio-ffmpeg's bundled ffmpeg, a dev dependency; OpenCV's own build has
no H.264 encoder) and MPEG-4 part 2 (OpenCV 'mp4v'), then decodes each in a fresh process per
(backend, mode) so peak RSS is that decode's alone. The last line is the peak-RSS ratio of the
backend `auto` picks (named on the line before), decoding the long vs the short 360p file at
5 fps with short side 224 (H.264 when it could be written). decord's full-frame decode of the
10-minute 720p file is skipped: its memory grows with length (2.2-2.6 GB at 1 minute).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = {"all": {}, "5fps@224": {"sample_fps": 5, "size": 224}}
SIZES = {"360p": (640, 360), "720p": (1280, 720)}
FPS = 30


def codecs() -> list[str]:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        print("note: imageio-ffmpeg is not installed: no H.264 files (pip install imageio-ffmpeg)")
        return ["MPEG-4"]
    return ["H.264", "MPEG-4"]


def frames_of(size: tuple[int, int], seconds: int):
    width, height = size
    rng = np.random.default_rng(0)
    # Smooth texture that moves: realistic motion-compensated coding, not noise.
    base = cv2.resize(
        rng.integers(0, 255, (height // 8, width // 4, 3), np.uint8), (width * 2, height)
    )
    for index in range(seconds * FPS):
        shift = (index * 4) % width
        frame = np.ascontiguousarray(base[:, shift : shift + width])
        cv2.putText(
            frame, str(index), (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (255,) * 3, 3
        )
        yield frame


def write_video(path: Path, codec: str, size: tuple[int, int], seconds: int) -> None:
    if codec == "H.264":
        import imageio_ffmpeg

        writer = imageio_ffmpeg.write_frames(
            str(path), size, fps=FPS, codec="libx264", quality=None, pix_fmt_in="bgr24",
            pix_fmt_out="yuv420p", macro_block_size=1, output_params=["-preset", "veryfast"],
        )  # fmt: skip
        writer.send(None)
        for frame in frames_of(size, seconds):
            writer.send(frame)
        writer.close()
        return
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    for frame in frames_of(size, seconds):
        writer.write(frame)
    writer.release()


def worker(path: str, backend: str, mode: str) -> None:
    """Decode one file once; print frames/s and this process's peak RSS as JSON."""
    from pipeline.video.decode import iter_chunks

    started = time.perf_counter()
    stream = iter_chunks(path, backend=backend, **MODES[mode])  # probing happens here
    frames = sum(len(chunk.indices) for chunk in stream)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": frames, "fps": frames / seconds, "rss_mb": peak_mb,
                      "backend": stream.backend}))  # fmt: skip


def skipped(label: str, seconds: int, backend: str, mode: str) -> bool:
    """decord keeps growing on long full-frame decodes: 10-minute 720p would exhaust memory."""
    return backend == "decord" and mode == "all" and label == "720p" and seconds >= 600


def measure(path: Path, backend: str, mode: str) -> dict:
    command = [sys.executable, __file__, "--worker", str(path), backend, mode]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s and 60 s files")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    from pipeline.video._backends import decord_available

    backends = ["opencv"] + (["decord"] if decord_available() else [])
    short, long = (10, 60) if args.quick else (60, 600)
    with tempfile.TemporaryDirectory(prefix="vidtag_bench_") as tmp_dir:
        tmp = Path(tmp_dir)
        header = ("file", "backend", "mode", "frames", "frames/s", "peak RSS MB")
        print("{:<22}{:<14}{:<10}{:>8}{:>10}{:>13}".format(*header))
        ratio_rss, auto_backend = {}, "?"
        available = codecs()
        for codec in available:
            for label, size in SIZES.items():
                for seconds in (short, long):
                    path = tmp / f"{label}_{seconds}s.mp4"
                    write_video(path, codec, size, seconds)
                    name = f"{codec} {label} {seconds}s"
                    runs = [(b, m) for b in backends for m in MODES]
                    if label == "360p":  # the acceptance measurement: what `auto` decodes with
                        runs.append(("auto", "5fps@224"))
                    for backend, mode in runs:
                        if skipped(label, seconds, backend, mode):
                            print(f"{name:<22}{backend:<14}{mode:<10}  skipped: memory grows "
                                  "with length (2.2-2.6 GB at 60 s 720p)", flush=True)  # fmt: skip
                            continue
                        row = measure(path, backend, mode)
                        shown = backend if backend != "auto" else f"auto={row['backend']}"
                        print(f"{name:<22}{shown:<14}{mode:<10}{row['frames']:>8}"
                              f"{row['fps']:>10.1f}{row['rss_mb']:>13.1f}", flush=True)  # fmt: skip
                        if backend == "auto" and codec == available[0]:
                            ratio_rss[seconds], auto_backend = row["rss_mb"], row["backend"]
                    path.unlink()
        rss_long, rss_short = ratio_rss[long], ratio_rss[short]
        print(
            f"auto decodes with {auto_backend} ({available[0]} 360p, 5 fps, short side 224): "
            f"peak RSS {rss_long:.1f} MB at {long} s, {rss_short:.1f} MB at {short} s"
        )
        print(f"rss_10min/rss_1min={ratio_rss[long] / ratio_rss[short]:.3f}")


if __name__ == "__main__":
    main()
