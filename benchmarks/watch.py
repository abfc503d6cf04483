"""How soon ``vidtag watch`` labels a video after its copy into the inbox completes.

Starts ``vidtag watch`` (a frame tagger over resnet18 features with random weights: the
extractor's real cost at ``--image-size``, sampled at 5 fps), waits until it is watching, then
copies ``--videos`` different 5-s clips into the inbox one after another, each slowly (4
chunks with pauses longer than the poll interval, as a network copy does). The figure per clip:
seconds from the copy's last write to its ``labels.json`` appearing; the median is the
benchmark line. Issue 15 asks for <= 5 s on a warm process.

    python benchmarks/watch.py --videos 3 --poll 0.5
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import CLI, write_clip  # noqa: E402


def model_folder(folder: Path, image_size: int) -> Path:
    import torch

    from models.rnn import build_model, model_config_dict
    from pipeline.features import ExtractorSpec
    from pipeline.tracking.model_io import save_model_dir
    from pipeline.video.decode import DECODER_VERSION

    torch.manual_seed(0)
    module = build_model("frame", 512, 3, {"hidden": 64, "layers": 1}).eval()
    spec = ExtractorSpec("resnet18", "none:seed0", image_size, 5.0, None, "fp32", DECODER_VERSION)
    classes = ["background", "a", "b"]
    return save_model_dir(folder, module, model_config_dict(module), spec, classes, "background")


def copy_slowly(source: Path, target: Path, chunks: int, pause_s: float) -> float:
    """``source`` into ``target`` in ``chunks`` writes with pauses; when the last one ended."""
    data = source.read_bytes()
    size = -(-len(data) // chunks)
    with open(target, "wb") as out:
        for start in range(0, len(data), size):
            out.write(data[start : start + size])
            out.flush()
            if start + size < len(data):
                time.sleep(pause_s)
    return time.monotonic()


def wait_for(path: Path, timeout_s: float = 300) -> float:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=3, help="clips copied in, one by one")
    parser.add_argument("--poll", type=float, default=0.5, help="vidtag watch --poll")
    parser.add_argument("--image-size", type=int, default=224, help="the backbone's input")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidtag-watch-") as tmp:
        root = Path(tmp)
        (root / "inbox").mkdir()
        model = model_folder(root / "model", args.image_size)
        clips = [root / "clips" / f"clip{index}.mp4" for index in range(args.videos)]
        for index, clip in enumerate(clips):
            write_clip(clip, 5.0, seed=index, fps=25)
        log = root / "watch.log"
        command = [
            sys.executable, "-c", CLI, "watch", str(root / "inbox"), "--model", str(model),
            "--out", str(root / "out"), "--poll", str(args.poll),
            "--set", f"features.store={root / 'store'}", "--set", "features.compile=off",
        ]  # fmt: skip
        env = {**os.environ, "PREFECT_HOME": str(root / "prefect")}
        with open(log, "w") as out:
            watch = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            while "watching" not in log.read_text():
                if watch.poll() is not None or time.monotonic() - started > 300:
                    raise SystemExit(f"vidtag watch did not start:\n{log.read_text()}")
                time.sleep(0.05)
            print(
                f"vidtag watch ready in {time.monotonic() - started:.1f} s (model loaded; load "
                f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
            latencies = []
            for clip in clips:
                done = copy_slowly(clip, root / "inbox" / clip.name, 4, args.poll * 1.5)
                labelled = wait_for(root / "out" / f"{clip.stem}.labels.json")
                latencies.append(labelled - done)
                print(f"{clip.name}: labelled {latencies[-1]:.2f} s after its copy completed")
        finally:
            watch.terminate()
            watch.wait(60)
        print(
            f"completion-to-labelled latency, median of {len(latencies)} 5-s clips "
            f"(poll {args.poll:g} s, resnet18 {args.image_size} px at 5 fps): "
            f"{statistics.median(latencies):.2f} s"
        )


if __name__ == "__main__":
    main()
