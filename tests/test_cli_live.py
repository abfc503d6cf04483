"""pipeline/cli/live.py: `vidtag label --live`: the status line, refusals, and a real stream
stopped by SIGTERM that closes its open segment and prints the summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.cli.live import status_line
from pipeline.labeling.live import LiveStatus
from tests.conftest import REPO
from tests.helpers_labeling import random_model, save_dir
from tests.helpers_live import (
    causal_model,
    free_udp_port,
    make_video,
    udp_sender,
    wait_for_receiver,
)


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (LiveStatus(75.5, "stir", 0.8123, 0.42, 377, 12, 0, True),
         "00:01:15.500  stir 0.81   lag 0.42 s   steps 377   segments 12"),
        (LiveStatus(3600.0, None, None, 0.0, 0, 0, -1, False),
         "01:00:00.000  waiting for the stream (reconnecting) …"),
    ],
)  # fmt: skip
def test_the_status_line_shows_label_score_and_lag(status, shown):
    assert status_line(status).plain == shown


@pytest.mark.slow  # loads the model and its libraries (~6 s)
def test_a_bidirectional_model_is_refused_naming_the_model(tmp_path):
    folder = save_dir(tmp_path / "bi", random_model("frame"))  # hidden 8, bidirectional
    result = CliRunner().invoke(
        app, ["label", "--live", "udp://127.0.0.1:9", "-m", str(folder), "-o", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert f"{folder} cannot label a live stream" in " ".join(result.output.split())
    assert "bidirectional" in result.output
    assert not list(tmp_path.glob("*.jsonl"))


@pytest.mark.parametrize("args", [[], ["inbox/", "--live", "udp://127.0.0.1:9"]])
def test_label_takes_a_folder_or_live_source_but_not_both(tmp_path, args):
    result = CliRunner().invoke(app, ["label", *args, "-m", str(tmp_path), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--live SOURCE" in result.output


@pytest.mark.slow
def test_sigterm_stops_a_live_run_cleanly_with_a_summary(tmp_path):
    video = make_video(tmp_path / "clip.mp4", seconds=8)
    model = causal_model()
    folder = save_dir(tmp_path / "causal", model)
    port = free_udp_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    command = [
        sys.executable, "-m", "pipeline.cli.app", "label", "--live", f"udp://127.0.0.1:{port}",
        "-m", str(folder), "-o", str(tmp_path / "out"),
        "--set", f"features.store={tmp_path / 'store'}", "--set", "features.device=cpu",
        "--set", "label.live_window_s=0", "--set", "label.min_segment_s=0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_for_receiver(port, timeout=120)
        with udp_sender(video, port):
            jsonl = tmp_path / "out" / f"127.0.0.1-{port}.segments.jsonl"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and '"type":"segment"' not in _text(jsonl):
                time.sleep(0.1)  # the first segment closes: labelling is under way
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "label --live" in output and "ended: stopped" in output
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert records[0]["type"] == "start" and records[-1] == {
        "type": "end", "end_s": records[-1]["end_s"], "reason": "stopped"
    }  # fmt: skip
    segments = [r for r in records if r["type"] == "segment"]
    assert segments and records[-1]["end_s"] < 8.0  # stopped before the stream's end
    # The segment open at the stop was closed and written: the last one ends at the stop.
    assert records[-2]["type"] == "segment" or segments[-1]["end_s"] <= records[-1]["end_s"]


def _text(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
