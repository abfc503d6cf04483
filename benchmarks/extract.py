"""Feature extraction throughput, all measured in one run on the same video.

(a) model only: vidtag's extractor on pre-decoded, pre-sized frames (eager, then compiled)
(d) decode only: the same sampling (5 fps) and resize as the pipeline
(b) vidtag's pipeline end to end (decode thread + batched bf16 inference + store write)
(c) a naive baseline written the way the popular `video_features` scripts do it: OpenCV reads
    every frame, per-frame PIL transforms, fp32 batches of 32 (sampling in the read loop)
(c') the same loop the way video_features ships it for a target fps: it first re-encodes the
    video to 5 fps with the ffmpeg command line (``-filter:v fps=fps=5``), then reads every frame
    of that file. Printed for context; R2 stays measured against (c), the faster of the two.

resnet18 at 224 on a generated 2-minute 360p H.264 video (30 fps, sampled at 5 fps). On 2 cores
decode and inference share the CPU, so the honest bound is the serial one, 1 / (1/a + 1/d).
Last line: ``pipeline/serial_bound=<R1> pipeline/naive=<R2>``.

Usage: python benchmarks/extract.py [--seconds 120] [--repeats 3] [--no-compile]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.config import load_config
from pipeline.features.extractor import FeatureExtractor, extract_video
from pipeline.features.spec import spec_from_config
from pipeline.video.decode import iter_chunks

SAMPLE_FPS = 5.0


def make_h264(path: Path, seconds: int) -> str:
    """A 360p 30 fps H.264 file (imageio-ffmpeg's bundled ffmpeg); MPEG-4 if that is absent."""
    try:
        import imageio_ffmpeg

        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                "-i", f"testsrc2=size=640x360:rate=30:duration={seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path),
            ],
            check=True,
        )  # fmt: skip
        return "H.264 (libx264)"
    except (ImportError, subprocess.CalledProcessError, OSError):
        import cv2

        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (360, 640, 3), np.uint8)
        for index in range(seconds * 30):
            writer.write(np.roll(base, index * 3, axis=1))
        writer.release()
        return "MPEG-4 part 2 (no H.264 encoder: pip install imageio-ffmpeg)"


def timed(func, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def decode_only(video: Path, size: int) -> int:
    """Frames decoded, chunk by chunk as the pipeline gets them (nothing kept)."""
    chunks = iter_chunks(video, sample_fps=SAMPLE_FPS, size=size, chunk_frames=64)
    return sum(len(chunk.frames) for chunk in chunks)


def decode_all(video: Path, size: int) -> np.ndarray:
    chunks = iter_chunks(video, sample_fps=SAMPLE_FPS, size=size, chunk_frames=64)
    return np.concatenate([chunk.frames for chunk in chunks])


def naive_features(video: Path, model: torch.nn.Module, step: int | None = None) -> int:
    """The video_features pattern: read every frame, PIL transforms one by one, fp32.

    Keeps every ``step``-th frame (default: the one that gives SAMPLE_FPS); 1 keeps them all.
    """
    import cv2
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    capture = cv2.VideoCapture(str(video))
    if step is None:
        step = round(capture.get(cv2.CAP_PROP_FPS) / SAMPLE_FPS)
    batch, count, index = [], 0, 0
    with torch.no_grad():
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                batch.append(transform(Image.fromarray(rgb)))
            index += 1
            if len(batch) == 32:
                model(torch.stack(batch))
                count += len(batch)
                batch = []
        if batch:
            model(torch.stack(batch))
            count += len(batch)
    capture.release()
    return count


def video_features_as_shipped(video: Path, model: torch.nn.Module, ffmpeg: str) -> int:
    """video_features' own route to a target fps: re-encode with ffmpeg, then read every frame."""
    reencoded = video.with_name(f"{video.stem}_new_fps.mp4")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "panic", "-y", "-i", str(video), "-an",
         "-filter:v", f"fps=fps={SAMPLE_FPS:g}", str(reencoded)],
        check=True,
    )  # fmt: skip
    try:
        return naive_features(reencoded, model, step=1)
    finally:
        reencoded.unlink()


def ffmpeg_exe() -> str | None:
    """An ffmpeg binary: imageio-ffmpeg's bundled one, else one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench_360p.mp4"
        codec = make_h264(video, args.seconds)
        print(f"video: {args.seconds} s 640x360 30 fps, {codec}; sampled at {SAMPLE_FPS} fps")
        cfg = load_config(
            None,
            ["features.weights=none", "features.compile=off", f"features.store={tmp}/store"],
        )
        spec = spec_from_config(cfg)
        eager = FeatureExtractor(spec, batch_size=32, compile_mode="off")
        print(f"precision {spec.precision}, decode size {eager.decode_size}, crop 224")

        # (d) decode only
        d_time, samples = timed(lambda: decode_only(video, eager.decode_size), args.repeats)
        frames = decode_all(video, eager.decode_size)  # the inputs of (a)
        d = samples / d_time
        # (a) model only, eager then compiled, on the decoded frames
        eager.embed(frames[:64])  # warm-up: oneDNN kernels
        a_time, _ = timed(lambda: eager.embed(frames), args.repeats)
        a = samples / a_time
        a_compiled = None
        if not args.no_compile:
            compiled = FeatureExtractor(spec, batch_size=32, compile_mode="on")
            started = time.perf_counter()
            compiled.embed(frames[:32])
            compile_s = time.perf_counter() - started
            if compiled.compiled:
                ac_time, _ = timed(lambda: compiled.embed(frames), args.repeats)
                a_compiled = samples / ac_time
                print(f"torch.compile: first call {compile_s:.1f} s")
        # (b) pipeline, eager (what `compile: auto` does for a job this short)
        b_time, result = timed(lambda: extract_video(video, eager), args.repeats)
        assert len(result.indices) == samples
        b = samples / b_time
        b_compiled = None
        if a_compiled is not None:
            bc_time, _ = timed(lambda: extract_video(video, compiled), args.repeats)
            b_compiled = samples / bc_time
        # (c) naive baseline
        import torchvision

        naive_model = torchvision.models.resnet18(weights=None).eval()
        naive_model.fc = torch.nn.Identity()
        c_time, count = timed(lambda: naive_features(video, naive_model), max(1, args.repeats - 1))
        c = count / c_time
        c_shipped = None
        ffmpeg = ffmpeg_exe()
        if ffmpeg is not None:
            cs_time, cs_count = timed(
                lambda: video_features_as_shipped(video, naive_model, ffmpeg),
                max(1, args.repeats - 1),
            )
            c_shipped = cs_count / cs_time

    serial = 1 / (1 / a + 1 / d)
    print(f"{'measure':<44}{'frames/s':>10}")
    rows = [
        ("(a) model only, eager bf16 channels_last", a),
        ("(a) model only, compiled", a_compiled),
        ("(d) decode only (5 fps, resize at decode)", d),
        ("serial bound 1/(1/a+1/d), eager", serial),
        ("(b) vidtag pipeline, eager", b),
        ("(b) vidtag pipeline, compiled", b_compiled),
        ("(c) naive video_features-style loop", c),
        ("(c') video_features as shipped (re-encode)", c_shipped),
    ]
    for name, value in rows:
        print(f"{name:<44}{'n/a' if value is None else f'{value:10.1f}':>10}")
    best_model = a_compiled or a
    print(f"ceiling for pipeline/naive if decoding cost nothing: (a)/(c)={best_model / c:.2f}")
    if c_shipped is not None:
        best_b = max(b, b_compiled or 0.0)
        ratio = best_b / c_shipped
        print(f"against video_features as shipped: pipeline/video_features={ratio:.2f}")
    if a_compiled is not None and b_compiled is not None:
        serial_c = 1 / (1 / a_compiled + 1 / d)
        print(f"compiled: pipeline/serial_bound={b_compiled / serial_c:.2f} "
              f"pipeline/naive={b_compiled / c:.2f}")  # fmt: skip
    print(f"pipeline/serial_bound={b / serial:.2f} pipeline/naive={b / c:.2f}")


if __name__ == "__main__":
    main()
