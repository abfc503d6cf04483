"""The sampling plan's end: the last frame is shown until the video ends, not only at its own
timestamp, and sampling below the native rate is unchanged by that."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.video.plan import sample_plan

EPS = 1e-3  # the plan's 1 ms timestamp tolerance (Matroska rounds times to whole ms)


def plan_to_last_timestamp(times: np.ndarray, fps: float) -> list[int]:
    """The plan before the fix: targets stopped at the last frame's timestamp."""
    count = int(np.floor((times[-1] - times[0]) * fps + EPS)) + 1
    targets = times[0] + np.arange(count) / fps
    shown = np.searchsorted(times, targets + EPS, side="right") - 1
    return sorted(set(shown.tolist()))


@pytest.mark.parametrize(
    ("frames", "native", "fps"),
    [(250, 25, 60), (250, 25, 25.5), (310, 30, 29.97), (90, 30, 45), (7, 24, 100)],
)
def test_above_or_near_native_rate_keeps_the_last_frame(frames, native, fps):
    times = np.arange(frames) / native
    assert sample_plan(times, fps, None).tolist() == list(range(frames))
    duration = frames / native
    assert sample_plan(times, fps, None, duration).tolist() == list(range(frames))


def test_above_native_rate_matches_every_frame_and_all_frames():
    times = np.arange(250) / 25
    every = sample_plan(times, None, None).tolist()
    assert sample_plan(times, 50, None).tolist() == every
    assert sample_plan(times, 60, None).tolist() == every


@pytest.mark.parametrize("frames", [299, 300, 301])
@pytest.mark.parametrize("fps", [1, 2, 5, 7, 10, 12.5, 15])
@pytest.mark.parametrize("matroska", [False, True], ids=["exact", "ms-rounded"])
def test_below_native_rate_only_adds_a_target_in_the_last_frames_interval(frames, fps, matroska):
    native = 30
    times = np.arange(frames) / native
    if matroska:
        times = np.round(times * 1000) / 1000
    duration = frames / native
    before = plan_to_last_timestamp(times, fps)
    after = sample_plan(times, fps, None, duration).tolist()
    assert sample_plan(times, fps, None).tolist() == after  # default end: last + median step
    targets = np.arange(int(np.ceil(duration * fps)) + 1) / fps
    in_last_interval = (targets > times[-1]) & (targets < duration - EPS)
    if in_last_interval.any():
        assert after == sorted({*before, frames - 1})
    else:
        assert after == before


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (None, [0, 3, 6, 8]),  # ends at 0.535 + median step 0.067: 0.6 shows the last frame
        (0.535, [0, 3, 6]),  # shown only at its timestamp: 0.6 is past the end
        (0.6, [0, 3, 6]),  # the end itself shows nothing
        (0.7, [0, 3, 6, 8]),
    ],
)
def test_variable_rate_end_follows_duration(duration, expected):
    vfr = np.array([0.0, 0.067, 0.134, 0.196, 0.267, 0.333, 0.4, 0.468, 0.535])
    assert sample_plan(vfr, 5, None, duration).tolist() == expected


def test_end_is_relative_to_the_first_frame_and_never_drops_a_frame():
    times = 2.0 + np.arange(10) / 10
    assert sample_plan(times, 20, None, 1.0).tolist() == list(range(10))
    assert sample_plan(times, 20, None, 0.1).tolist() == list(range(10))  # up to 0.9 anyway
    assert sample_plan(times, 3, None, 1.0).tolist() == [0, 3, 6]


def test_single_frame_is_kept():
    assert sample_plan(np.array([0.0]), 5, None).tolist() == [0]
    assert sample_plan(np.array([0.0]), 5, None, 0.04).tolist() == [0]


def test_max_frames_still_thins_the_longer_plan():
    times = np.arange(250) / 25
    assert sample_plan(times, 60, 2).tolist() == [0, 125]


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), -float("inf")])
def test_non_finite_sample_fps_is_a_value_error(fps):
    with pytest.raises(ValueError, match="sample_fps"):
        sample_plan(np.arange(10) / 10, fps, None)


@pytest.mark.parametrize("duration", [float("inf"), float("nan")])
def test_non_finite_duration_is_a_value_error(duration):
    with pytest.raises(ValueError, match="duration_s"):
        sample_plan(np.arange(10) / 10, 5, None, duration)
