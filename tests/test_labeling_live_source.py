"""Live sources: online sampling equals offline sampling; real streams served over UDP
(MPEG-TS) by ffmpeg on 127.0.0.1 are labelled live exactly as the same packets offline, a cut
stream resumes with a gap record, and a file being written is followed to its end."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.labeling.live import label_live
from pipeline.labeling.live_source import OnlineSampler, source_kind, source_name
from pipeline.labeling.predict import label_video
from pipeline.video.plan import sample_plan
from tests.helpers_live import (
    causal_model,
    ffmpeg_exe,
    free_udp_port,
    loaded,
    make_video,
    udp_sender,
    udp_socket_inodes,
    wait_for_receiver,
)


def native_times(kind: str, frames: int = 200) -> np.ndarray:
    rng = np.random.default_rng(frames)
    if kind == "vfr":  # uneven intervals of 10-80 ms
        return np.concatenate([[0.0], np.cumsum(rng.uniform(0.01, 0.08, frames - 1))])
    rate = {"30": 30.0, "25": 25.0, "29.97": 30000 / 1001, "4": 4.0}[kind]
    return np.arange(frames) / rate


@pytest.mark.parametrize("ahead", [0, 17])  # 17: a file's frames, read before they are taken
@pytest.mark.parametrize("kind", ["30", "25", "29.97", "4", "vfr"])
@pytest.mark.parametrize("sample_fps", [5.0, 7.0, 10.0, None])
def test_online_sampling_picks_the_frames_offline_sampling_picks(kind, sample_fps, ahead):
    times = native_times(kind)
    step = float(np.median(np.diff(times)))
    end = times[-1] + step
    expected = sample_plan(times, sample_fps, None, duration_s=end)
    sampler, picked, held, longest = OnlineSampler(sample_fps), [], [], 0.0
    for index, time_s in enumerate(times):
        if index:  # the reader's own longest interval, ahead of the sampler's
            longest = min(1.0, max(longest, time_s - times[index - 1]))
        keep = sampler.wants(time_s, longest or None)
        held.append((index, time_s, np.zeros(1) if keep else None))
        while len(held) > ahead:
            picked += [s.index for s in sampler.push(*held.pop(0))]
    for frame in held:
        picked += [s.index for s in sampler.push(*frame)]
    picked += [s.index for s in sampler.finish(end)]
    assert picked == expected.tolist()
    assert sampler.missed == 0  # pixels were kept for every frame picked


@pytest.mark.parametrize(
    ("source", "kind", "name"),
    [
        ("rtsp://cam1.lab:8554/live?token=x", "url", "cam1.lab-8554-live"),
        ("udp://127.0.0.1:5000", "url", "127.0.0.1-5000"),
        ("/dev/video0", "device", "video0"),
        ("2", "device", "video2"),
        ("/data/rig/session.ts", "file", "session"),
    ],
)
def test_sources_are_told_apart_and_named(source, kind, name):
    assert (source_kind(source), source_name(source)) == (kind, name)


# --- real streams ------------------------------------------------------------------------------


def live_config(tmp_path: Path, *extra: str):
    # batch 4 both ways: live and offline features then come from the same batch shape.
    return load_config(
        None,
        [f"features.store={tmp_path / 'store'}", "features.batch_size=4",
         "label.live_give_up_s=1.5", *extra],
    )  # fmt: skip


def label_in_thread(source: str, cfg, model, out: Path, **kwargs) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        result["summary"] = label_live(source, cfg, loaded(model), out, timeout_s=1.0, **kwargs)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def records(out: Path) -> list[dict]:
    (jsonl,) = out.glob("*.segments.jsonl")
    text = jsonl.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def shifted(segments: list[dict], seconds: float, frames: int) -> list[dict]:
    return [
        {**s, "start_s": round(s["start_s"] + seconds, 6), "end_s": round(s["end_s"] + seconds, 6),
         "start_frame": s["start_frame"] + frames, "end_frame": s["end_frame"] + frames}
        for s in segments
    ]  # fmt: skip


def strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("type", "session")}


def assert_same_segments(live: list[dict], offline: list[dict]) -> None:
    """Labels, times and frames exactly; scores to float rounding (the offline GRU runs over
    the whole sequence at once, and averages in float32)."""
    assert [{**s, "score": None} for s in live] == [{**s, "score": None} for s in offline]
    assert [s["score"] for s in live] == pytest.approx([s["score"] for s in offline], abs=2e-5)


@pytest.mark.slow
def test_a_udp_stream_is_labelled_live_as_its_packets_are_offline(tmp_path):
    video = make_video(tmp_path / "clip.mp4", seconds=3)
    model, cfg, port = causal_model(), live_config(tmp_path), free_udp_port()
    thread, result = label_in_thread(f"udp://127.0.0.1:{port}", cfg, model, tmp_path / "live")
    wait_for_receiver(port, timeout=120)
    with udp_sender(video, port, copy=tmp_path / "sent.ts") as sender:
        sender.wait(timeout=30)
    thread.join(timeout=300)
    assert not thread.is_alive(), "the live run did not end"
    summary = result["summary"]
    assert (summary["sessions"], summary["gaps"], summary["failed"]) == (1, 0, False)
    assert summary["steps"] == 15  # 3 s at 5 fps
    _, offline = label_video(tmp_path / "sent.ts", cfg, model)
    live = records(tmp_path / "live")
    assert [r["type"] for r in live] == ["start", *["segment"] * len(offline.segments), "end"]
    assert_same_segments([strip(r) for r in live[1:-1]], offline.segments)
    assert len(offline.segments) >= 2  # the labels change: the comparison means something


@pytest.mark.slow
def test_a_stream_cut_midway_resumes_and_records_the_gap(tmp_path):
    first, second = (make_video(tmp_path / f"part{i}.mp4", seconds=2) for i in (1, 2))
    model, cfg, port = causal_model(seed=1), live_config(tmp_path), free_udp_port()
    thread, result = label_in_thread(f"udp://127.0.0.1:{port}", cfg, model, tmp_path / "live")
    listening = wait_for_receiver(port, timeout=120)
    with udp_sender(first, port, copy=tmp_path / "sent1.ts") as sender:
        sender.wait(timeout=30)
    # The reader notices the silence (1 s read timeout), closes and listens again.
    wait_for_receiver(port, not_in=listening)
    time.sleep(0.3)
    with udp_sender(second, port, copy=tmp_path / "sent2.ts") as sender:
        sender.wait(timeout=30)
    thread.join(timeout=300)
    assert not udp_socket_inodes(port)  # the reader let go of the port
    summary = result["summary"]
    assert (summary["sessions"], summary["gaps"], summary["steps"]) == (2, 1, 20)
    live = records(tmp_path / "live")
    (gap,) = [r for r in live if r["type"] == "gap"]
    assert 2.0 <= gap["start_s"] < gap["end_s"]  # from the end of part 1 to the restart
    assert summary["gap_s"] == pytest.approx(gap["end_s"] - gap["start_s"], abs=1e-5)
    segments = [r for r in live if r["type"] == "segment"]
    for session, sent, shift in [(0, "sent1.ts", (0.0, 0)), (1, "sent2.ts", (gap["end_s"], 60))]:
        _, offline = label_video(tmp_path / sent, cfg, model)
        mine = [strip(r) for r in segments if r["session"] == session]
        assert_same_segments(mine, shifted(offline.segments, *shift))
        assert all(r["end_s"] <= gap["start_s"] for r in segments if r["session"] == 0)


@pytest.mark.slow
def test_a_file_being_written_is_followed_to_its_end(tmp_path):
    video = make_video(tmp_path / "clip.mp4", seconds=3)
    whole = tmp_path / "whole.ts"  # an MPEG-TS recording, as a recorder writes it
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(video), "-c", "copy", "-f", "mpegts", str(whole)],
        check=True,
    )
    data = whole.read_bytes()
    growing = tmp_path / "rig" / "session.ts"
    growing.parent.mkdir()
    growing.write_bytes(data[: len(data) // 3])
    model, cfg = causal_model(seed=2), live_config(tmp_path, "label.live_give_up_s=2")
    thread, result = label_in_thread(str(growing), cfg, model, tmp_path / "live")
    for part in (2, 3):  # the recorder writes the rest in two bursts
        time.sleep(1.0)
        with growing.open("ab") as handle:
            handle.write(data[len(data) * (part - 1) // 3 : len(data) * part // 3])
    thread.join(timeout=300)
    assert not thread.is_alive(), "the live run did not end"
    summary = result["summary"]
    assert (summary["sessions"], summary["gaps"], summary["steps"]) == (1, 0, 15)
    assert "stopped growing" in summary["ended"]
    _, offline = label_video(whole, cfg, model)
    live = records(tmp_path / "live")
    assert_same_segments([strip(r) for r in live if r["type"] == "segment"], offline.segments)
