"""What the live-labelling tests (and benchmarks/live.py) share: short videos made by the ffmpeg
binary imageio-ffmpeg ships, an MPEG-TS sender over UDP on 127.0.0.1 that also keeps a copy of
exactly the packets it sends, and a small causal frame model."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLASSES = ["background", "stir", "pour"]


def ffmpeg_exe() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video(path: Path, seconds: float, size: str = "160x120", rate: int = 30) -> Path:
    """A moving test pattern, H.264 with B-frames, a keyframe every 15 frames."""
    pattern = f"testsrc2=size={size}:rate={rate}"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", pattern, "-t", str(seconds),
         "-c:v", "libx264", "-g", "15", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def udp_socket_inodes(port: int) -> set[str]:
    """Inodes of the sockets bound to UDP ``port`` (Linux /proc/net/udp): which receiver is up."""
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        pytest.skip("needs /proc/net/udp to see when the receiver is listening")
    inodes = set()
    for line in lines:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


def wait_for_receiver(port: int, not_in: set[str] = frozenset(), timeout: float = 30.0) -> set:
    """Wait until a socket (other than ``not_in``) listens on ``port``: sending earlier loses
    packets. Returns the listening inodes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inodes = udp_socket_inodes(port) - set(not_in)
        if inodes:
            return inodes
        time.sleep(0.01)
    raise TimeoutError(f"nothing listened on udp port {port} within {timeout} s")


@contextlib.contextmanager
def udp_sender(video: Path, port: int, copy: Path | None = None) -> Iterator[subprocess.Popen]:
    """ffmpeg sending ``video`` in real time as MPEG-TS to udp://127.0.0.1:port; ``copy`` gets
    the very same packets (the tee muxer), for labelling offline the frames sent live."""
    url = f"udp://127.0.0.1:{port}?pkt_size=1316"
    target = f"[f=mpegts]{url}" + (f"|[f=mpegts]{copy}" if copy is not None else "")
    process = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-re", "-i", str(video), "-map", "0:v", "-c", "copy",
         "-f", "tee", target],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)


def causal_model(dim: int = 512, seed: int = 0, image_size: int = 64, sample_fps: float = 5.0):
    """A random unidirectional GRU tagger over resnet18 (weights none) features."""
    import torch

    from models.rnn import build_model
    from pipeline.features import ExtractorSpec
    from pipeline.tracking.model_io import TrainedModel
    from pipeline.video.decode import DECODER_VERSION

    torch.manual_seed(seed)
    cfg = {"cell": "gru", "hidden": 16, "layers": 2, "bidirectional": False, "dropout": 0.0}
    module = build_model("frame", dim, len(CLASSES), cfg).eval()
    with torch.no_grad():  # larger logits: decisive labels that still change over time
        module.head.weight.mul_(20.0)
    spec = ExtractorSpec(
        "resnet18", "none:seed0", image_size, sample_fps, None, "fp32", DECODER_VERSION
    )
    return TrainedModel(module, "frame", CLASSES, spec, "background")


def loaded(model, uri: str = "causal-test-model"):
    from pipeline.labeling.predict import LoadedModel, model_fingerprint

    return LoadedModel(model, uri, None, None, model_fingerprint(model))
