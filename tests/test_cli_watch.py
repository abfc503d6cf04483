"""pipeline/cli/watch.py: `vidtag watch` as a user runs it: a video copied slowly into the
inbox is labelled once, after it is complete; a restart relabels nothing; SIGTERM stops it
with a summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers_video import write_video
from tests.helpers_watch import copy_slowly, resnet18_model_dir

pytestmark = pytest.mark.slow  # each test starts vidtag watch (torch, the model) in a process


def start_watch(tmp_path: Path, log: Path) -> subprocess.Popen:
    sets = ["features.weights=none", "features.image_size=64", "features.compile=off",
            f"features.store={tmp_path / 'store'}"]  # fmt: skip
    command = [
        sys.executable, "-c", "from pipeline.cli.app import app; app()", "watch",
        str(tmp_path / "inbox"), "--model", str(tmp_path / "model"), "--out", str(tmp_path / "out"),
        "--poll", "0.2", *[a for s in sets for a in ("--set", s)],
    ]  # fmt: skip
    with open(log, "w") as out:
        return subprocess.Popen(
            command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_for(log: Path, text: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not said within {timeout_s} s:\n{log.read_text()}")


def stop(process: subprocess.Popen, log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    return log.read_text()


def test_watch_labels_a_slow_copy_once_and_a_restart_relabels_nothing(tmp_path: Path) -> None:
    resnet18_model_dir(tmp_path / "model")
    (tmp_path / "inbox").mkdir()
    source = write_video(tmp_path / "source.mp4", "mp4v", frames=90)
    log = tmp_path / "watch.log"
    watch = start_watch(tmp_path, log)
    try:
        wait_for(log, "watching", watch)
        # Pauses longer than the poll interval: the watcher sees an unchanged, partial file.
        copy_slowly(source, tmp_path / "inbox" / "a.mp4", chunks=4, pause_s=0.6)
        wait_for(log, "labelled a.mp4", watch)
        labels = tmp_path / "out" / "a.labels.json"
        written = labels.stat().st_mtime_ns
        time.sleep(1.0)  # several more polls: nothing happens to a labelled video
        output = stop(watch, log)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert output.count("labelled a.mp4") == 1 and "failed a.mp4" not in output, output
    assert "SIGTERM: stopping" in output
    assert "1 video labelled, 0 skipped (already labelled), 0 failed" in output
    assert labels.stat().st_mtime_ns == written

    again = start_watch(tmp_path, log)
    try:
        wait_for(log, "skipped a.mp4", again)
        output = stop(again, log)
    finally:
        if again.poll() is None:
            again.kill()
    assert "labelled a.mp4" not in output and "0 videos labelled, 1 skipped" in output, output
    assert labels.stat().st_mtime_ns == written
