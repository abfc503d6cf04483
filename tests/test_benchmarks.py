"""The benchmark scripts run end to end on tiny inputs and print their figures' last line.

Only the output's shape is checked: timings are never asserted (the machines are noisy).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.montage import SOURCES
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # whole benchmark scripts (extraction, training) in subprocesses


def _run(script: str, args: list[str], tmp_path: Path) -> list[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()


def test_extract_benchmark_prints_every_measure_and_the_ratios(tmp_path: Path) -> None:
    lines = _run("extract.py", ["--seconds", "2", "--repeats", "1", "--no-compile"], tmp_path)
    text = "\n".join(lines)
    for measure in ("(a) model only", "(d) decode only", "(b) vidtag pipeline", "(c) naive"):
        row = next(line for line in lines if line.startswith(measure))
        assert float(row.split()[-1]) > 0, row
    assert re.search(r"ceiling for pipeline/naive .*=\d+\.\d\d$", text, re.MULTILINE)
    assert re.fullmatch(r"pipeline/serial_bound=\d+\.\d\d pipeline/naive=\d+\.\d\d", lines[-1])
    # Its generated video and feature store are removed (importing torchvision leaves an empty
    # torchinductor cache folder in TMPDIR, which is torch's own).
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "args",
    [["--repeats", "1", "--batch", "4", "--min-len", "8", "--max-len", "16", "--dim", "16",
      "--hidden", "8", "--classes", "3"]],
)  # fmt: skip
def test_train_benchmark_prints_every_ratio(tmp_path: Path, args: list[str]) -> None:
    lines = _run("train.py", args, tmp_path)
    assert re.fullmatch(
        r"vidtag/packed=\d+\.\d+ vidtag/padded=\d+\.\d+ stages4/stages1=\d+\.\d+ "
        r"tcn/stages1=\d+\.\d+",
        lines[-1],
    )


def test_startup_benchmark_prints_one_row_per_measure(tmp_path: Path) -> None:
    lines = _run("startup.py", ["--repeats", "1", "--videos", "1"], tmp_path)
    assert lines[0].startswith("measure") and len(lines) == 13, lines
    names = ["vidtag --help", "python -c 'import torch'", "import prefect", "import mlflow",
             "import cv2", "trivial flow, temporary server"]  # fmt: skip
    for server in ("temporary server", "vidtag server"):
        names += [f"stored extract, 1 video, {server}", f"label one 5-s clip, {server}"]
    for line, name in zip(lines[1:-2], names, strict=True):  # seconds, then CPU seconds
        assert line.startswith(name) and re.search(r" \d+\.\d\d +\d+\.\d\d$", line), line
    for line, kind in zip(lines[-2:], ("wall", "CPU"), strict=True):
        assert re.fullmatch(
            rf"with vidtag server, {kind}: stored extract / import torch = \d+\.\d\d "
            r"\(goal <= 2\), one-clip label / import torch = \d+\.\d\d \(goal <= 3\)",
            line,
        ), line


def test_watch_benchmark_prints_the_latency_line(tmp_path: Path) -> None:
    lines = _run("watch.py", ["--videos", "1", "--poll", "0.3", "--image-size", "64"], tmp_path)
    assert re.search(r"copy completed$", lines[-2]), lines
    assert re.fullmatch(r"completion-to-labelled latency, .*: \d+\.\d\d s", lines[-1]), lines


@pytest.mark.skipif(not SOURCES.is_dir(), reason="the shared real videos are absent")
def test_quality_benchmark_prints_one_row_per_model_and_the_ratio(tmp_path: Path) -> None:
    args = ["--train", "3", "--test", "2", "--image-size", "32", "--epochs", "2", "--seeds",
            "1", "--models", "none,gru,tcn"]  # fmt: skip
    lines = _run("quality.py", args, tmp_path)
    rows = [line.split()[0] for line in lines[2:-1]]
    assert [row.rstrip("*") for row in rows] == ["none", "gru", "tcn"], lines
    for line in lines[2:-1]:
        numbers = [float(v) for v in line.split()[1:] if v != "|"]
        assert len(numbers) == 12 and all(0 <= v <= 1 for v in numbers[:10]), line
    assert re.fullmatch(
        r"best_rnn_f1_50=\d\.\d{3} tcn_f1_50=\d\.\d{3} best_rnn/tcn=(\d+\.\d{3}|inf|nan)", lines[-1]
    )
    # The montages and their features lived in a temporary folder, removed at the end.
    assert not [p for p in tmp_path.rglob("*.mp4")] and not list(tmp_path.rglob("*.safetensors"))


def test_review_page_benchmark_prints_size_and_opening_times(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("Chromium is not installed")
    lines = _run("review_page.py", ["--videos", "20", "--repeats", "1"], tmp_path)
    figures = json.loads(lines[-1])
    assert figures["videos"] == 20 and 0 < figures["size_mb"] < 1
    assert figures["domcontentloaded_ms"] > 0 and figures["dcl_ratio_vs_tenth"] > 0


def test_live_benchmark_prints_lag_and_the_rss_ratio(tmp_path: Path) -> None:
    args = ["--seconds", "3", "--short-seconds", "3", "--long-minutes", "0.1", "--image-size", "64"]
    lines = _run("live.py", args, tmp_path)
    assert lines[1].startswith("(1) real time, 3-s UDP stream: 15/15 steps"), lines
    assert [line[:9] for line in lines[2:4]] == ["(2) short", "(2) long "]
    assert re.fullmatch(
        r"lag_max_s=\d+\.\d+ lag_growth_s=-?\d+\.\d+ rss_long/short=\d+\.\d+", lines[-1]
    )


def test_scale_benchmark_accounts_for_every_clip_with_both_runners(tmp_path: Path) -> None:
    lines = _run("scale.py", ["--clips", "10"], tmp_path)
    last = lines[-1]
    assert last.startswith("clips=10 complete=True local "), "\n".join(lines)
    assert re.search(r"dask x2 \d+ videos/min rss x\d+\.\d\d$", last), last
    for process in ("flow", "worker-1", "worker-2"):
        assert any(line.strip().startswith(f"{process}: peak RSS") for line in lines), process
