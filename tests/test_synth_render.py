"""Rendering: reversed pairs are exact reversals of each other (in memory and nearly so after
encoding), and every class looks unlike every other and unlike the background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.synth.dataset import sample_clip_video, write_video
from pipeline.synth.render import (
    BACKGROUND,
    CLIP_CLASSES,
    FRAME_CLASSES,
    REVERSED_PAIRS,
    ClipVideo,
    FrameVideo,
    Segment,
    VideoSpec,
    render_clip,
    render_frame_video,
)
from tests.helpers_video import read_all_bgr

SIZES = ((96, 72), (112, 64))  # small frames: the module stays fast


# --- reversed pairs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("forward", "backward"), REVERSED_PAIRS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reversed_pair_is_exact_reversal_in_memory(forward: str, backward: str, seed: int) -> None:
    video = sample_clip_video(np.random.default_rng(seed), forward, (0.5, 1.5), SIZES)
    frames = render_clip(video)
    reversed_frames = render_clip(video._replace(label=backward))
    np.testing.assert_array_equal(frames[::-1], reversed_frames)
    assert not np.array_equal(frames, reversed_frames), "a pair must differ in order"


@pytest.mark.parametrize(("forward", "backward"), REVERSED_PAIRS)
def test_reversed_pair_is_reversal_after_encoding(
    tmp_path: Path, forward: str, backward: str
) -> None:
    video = sample_clip_video(np.random.default_rng(7), forward, (1.0, 1.5), SIZES)
    decoded = {}
    for label in (forward, backward):
        clip = video._replace(label=label)
        write_video(iter(render_clip(clip)), clip.spec, tmp_path / f"{label}.mp4")
        decoded[label] = read_all_bgr(tmp_path / f"{label}.mp4").astype(np.float32)
    reversal_error = np.abs(decoded[forward][::-1] - decoded[backward]).mean()
    order_difference = np.abs(decoded[forward] - decoded[backward]).mean()
    assert reversal_error < 3.0  # lossy mp4v: close, not equal
    assert order_difference > 5 * reversal_error


def test_classes_differ_from_each_other_and_background() -> None:
    """A cheap stand-in for pooled features: each class's mean colour over time is far from
    every other class's, and each frame-task class is far from the plain background."""
    spec = VideoSpec(width=96, height=72, fps=15, frames=15, seed=3, noise=5)
    look = sample_clip_video(np.random.default_rng(0), CLIP_CLASSES[0]).look
    clip_means = {
        name: render_clip(ClipVideo(spec, name, look)).mean(axis=(1, 2)) for name in CLIP_CLASSES
    }
    frame_means = {
        name: render_frame_video(FrameVideo(spec, (Segment(0, spec.frames, name, look),))).mean(
            axis=(1, 2)
        )
        for name in FRAME_CLASSES
    }
    frame_means[BACKGROUND] = render_frame_video(FrameVideo(spec, ())).mean(axis=(1, 2))
    for means in (clip_means, frame_means):
        names = list(means)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert np.abs(means[a] - means[b]).max() > 10, (a, b)
