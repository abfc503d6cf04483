"""Live labelling units: the stepper equals offline prediction, the segmenter equals offline
segments (window longer than the stream) and never revises what is final, the output files."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest
import torch

from models.rnn import build_model
from pipeline.errors import UserError
from pipeline.labeling.live import LiveOutputs, LiveSegmenter, LiveStepper
from pipeline.labeling.segments import labels_from_frames
from pipeline.tracking.model_io import TrainedModel
from pipeline.video.decode import VideoInfo
from tests.helpers_labeling import CLASSES, parse_vtt, random_model

D = 8


def causal_model(cell: str = "gru", seed: int = 0) -> TrainedModel:
    model = random_model("frame", seed)
    torch.manual_seed(seed)
    cfg = {"cell": cell, "hidden": 8, "layers": 2, "bidirectional": False, "dropout": 0.0}
    model.module = build_model("frame", D, len(CLASSES), cfg).eval()
    return model


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn", "none"])
def test_stepping_a_few_frames_at_a_time_equals_offline_prediction(cell):
    model = causal_model(cell)
    features = np.random.default_rng(0).normal(size=(23, D)).astype(np.float32)
    offline = model.predict_proba([features])[0]  # (T, C)
    stepper = LiveStepper(model, "models:/m/1")
    live = np.concatenate([stepper.step(features[a:b]) for a, b in [(0, 1), (1, 5), (5, 23)]])
    np.testing.assert_allclose(live, offline, atol=1e-5)
    assert (live.argmax(1) == offline.argmax(1)).all()
    stepper.reset()  # a fresh sequence after a gap: the same predictions again
    np.testing.assert_allclose(stepper.step(features[:4]), offline[:4], atol=1e-5)


@pytest.mark.parametrize(
    ("task", "bidirectional", "reason"),
    [
        ("frame", True, "models:/m/1 cannot label a live stream: its gru is bidirectional"),
        ("clip", False, "models:/m/1 is a clip model"),
    ],
)
def test_a_model_that_cannot_stream_is_refused_with_the_reason(task, bidirectional, reason):
    model = random_model(task)
    model.module = build_model(task, D, 3, {"hidden": 8, "bidirectional": bidirectional})
    with pytest.raises(UserError, match=reason):
        LiveStepper(model, "models:/m/1")


def noisy_steps(steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) probabilities whose argmax flickers, and uneven native indices (30 fps)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(rng.integers(0, 3, size=steps), rng.integers(1, 5, steps))[:steps]
    probs = rng.dirichlet(np.ones(3), size=steps) * 0.5
    probs[np.arange(steps), labels] += 0.5
    indices = np.concatenate([[0], np.cumsum(rng.integers(4, 9, size=steps - 1))])
    return probs.astype(np.float32), indices


def feed(segmenter: LiveSegmenter, probs, indices, times, frames: int, duration: float):
    """Step by step, as the live loop does; -> (final segments in order, (segment, now) pairs)."""
    final, written = [], []
    for step, (index, time_s) in enumerate(zip(indices, times, strict=True)):
        segmenter.add(int(index), float(time_s), probs[step])
        now = float(time_s)
        for segment in segmenter.update(int(index) + 1, now):
            final.append(segment)
            written.append((segment, now))
    final += segmenter.close(frames, duration)
    return final, written


@pytest.mark.parametrize("min_segment_s", [0.0, 0.4, 1.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_a_window_longer_than_the_stream_segments_equal_offline(min_segment_s, seed):
    probs, indices = noisy_steps(60, seed)
    frames = int(indices[-1]) + 5
    native_times = np.arange(frames) / 30.0
    info = VideoInfo("v.ts", frames, 30.0, frames / 30.0, 64, 48, 0, "h264", "opencv")
    offline = labels_from_frames(
        probs, indices, native_times[indices], native_times, CLASSES, "background", info,
        min_segment_s,
    )  # fmt: skip
    segmenter = LiveSegmenter(CLASSES, "background", min_segment_s, window_s=1e9)
    live, _ = feed(segmenter, probs, indices, native_times[indices], frames, info.duration_s)
    assert live == offline.segments


@pytest.mark.parametrize("window_s", [0.0, 2.0])
def test_segments_older_than_the_window_are_final_and_the_tail_stays_small(window_s):
    probs, indices = noisy_steps(3000, seed=3)  # ~20 min of flicker at 30 fps
    times = indices / 30.0
    segmenter = LiveSegmenter(CLASSES, "background", 0.5, window_s)
    longest_tail = 0
    final, written = [], []
    for step, (index, time_s) in enumerate(zip(indices, times, strict=True)):
        segmenter.add(int(index), float(time_s), probs[step])
        for segment in segmenter.update(int(index) + 1, float(time_s)):
            final.append(segment)
            written.append((segment, float(time_s)))
        longest_tail = max(longest_tail, len(segmenter.tail))
    assert written and all(seg["end_s"] <= now - window_s + 1e-6 for seg, now in written)
    starts = [seg["start_s"] for seg in final]
    assert starts == sorted(starts)
    assert all(a["end_s"] <= b["start_s"] for a, b in pairwise(final))
    # The tail holds what the window may still revise and the open segment's runs: a few
    # runs (steps here last 4-8 native frames), never the stream.
    assert longest_tail <= 16 + window_s * 30 / 4


def test_outputs_append_whole_lines_and_rewrite_the_vtt(tmp_path):
    outputs = LiveOutputs(tmp_path, "cam")
    outputs.record({"type": "start"})
    segment = {"label": "stir", "start_s": 0.0, "end_s": 1.5, "start_frame": 0,
               "end_frame": 45, "score": 0.75}  # fmt: skip
    outputs.segments([segment], session=0)
    outputs.record({"type": "gap", "start_s": 1.5, "end_s": 4.0, "session": 1})
    outputs.segments([{**segment, "start_s": 4.0, "end_s": 5.0, "label": "pour"}], session=1)
    outputs.close()
    text = (tmp_path / "cam.segments.jsonl").read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["type"] for r in records] == ["start", "segment", "gap", "segment"]
    assert records[1] == {"type": "segment", "session": 0, **segment}
    cues = parse_vtt((tmp_path / "cam.vtt").read_text())
    assert [(c[0], c[1]) for c in cues] == [(0.0, 1.5), (4.0, 5.0)]
    assert cues[1][2].startswith("pour")
    with pytest.raises(UserError, match="already exists"):
        LiveOutputs(tmp_path, "cam")
    LiveOutputs(tmp_path, "cam", overwrite=True).close()
    assert (tmp_path / "cam.segments.jsonl").read_text() == ""


def test_a_missing_file_source_is_one_clear_error(tmp_path):
    from pipeline.config import Config
    from pipeline.labeling.live import label_live
    from tests.helpers_live import causal_model, loaded

    with pytest.raises(UserError, match=r"rig/nope\.ts: no such file \(a live source is a URL"):
        label_live(str(tmp_path / "rig" / "nope.ts"), Config(), loaded(causal_model()), tmp_path)
    assert not list(tmp_path.iterdir())


def test_intra_op_threads_are_restored_after_a_live_run():
    from pipeline.labeling.live import intra_op_threads

    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
