"""The sampling plan's end: the last frame is shown until the video ends, not only at its own
timestamp, and sampling below the native rate is unchanged by that."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.video.plan import resized_shape, sample_plan

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


# --- tables over constant and variable rates ----------------------------------------------------

CFR_30 = np.arange(90) / 30.0
VFR = np.array([0.0, 0.067, 0.134, 0.196, 0.267, 0.333, 0.4, 0.468, 0.535])


@pytest.mark.parametrize(
    ("times", "fps", "max_frames", "expected"),
    [
        (CFR_30, None, None, list(range(90))),
        (CFR_30, 1, None, [0, 30, 60]),
        (CFR_30, 5, None, list(range(0, 90, 6))),
        (CFR_30, 7.5, None, list(range(0, 90, 4))),
        (CFR_30, 30, None, list(range(90))),
        (CFR_30, 60, None, list(range(90))),  # above native: each frame once
        (CFR_30, 1, 2, [0, 30]),
        (CFR_30, None, 3, [0, 30, 60]),
        (CFR_30, None, 4, [0, 22, 45, 67]),
        (VFR, 10, None, [0, 1, 3, 4, 6, 7, 8]),  # 0.2 s shows frame 3 (since 0.196 s)
        (VFR, 5, None, [0, 3, 6, 8]),  # 0.6 s: the last frame (0.535 s) is still shown
        (np.array([0.0]), 5, None, [0]),
        (np.zeros(0), 5, None, []),
    ],
)
def test_sample_plan_table(times, fps, max_frames, expected):
    plan = sample_plan(times, fps, max_frames)
    assert plan.dtype == np.int64
    assert plan.tolist() == expected


def test_sample_plan_picks_the_frame_shown_at_each_target():
    times = np.cumsum(np.random.default_rng(0).uniform(0.02, 0.09, 300))
    times -= times[0]
    for fps in (1, 3, 5, 7.5, 12):
        plan = sample_plan(times, fps, None)
        # Targets run until the last frame stops being shown (one typical interval after it).
        end = times[-1] + np.median(np.diff(times))
        targets = np.arange(int(np.ceil((end - 1e-3) * fps))) / fps
        shown = [np.flatnonzero(times <= t + 1e-3)[-1] for t in targets]  # 1 ms: see plan
        assert plan.tolist() == sorted(set(shown))


@pytest.mark.parametrize(("fps", "max_frames"), [(0, None), (-1, None), (None, 0)])
def test_sample_plan_rejects_bad_arguments(fps, max_frames):
    with pytest.raises(ValueError):
        sample_plan(CFR_30, fps, max_frames)


@pytest.mark.parametrize(
    ("hw", "size", "expected"),
    [((720, 1280), 224, (224, 398)), ((1280, 720), 224, (398, 224)), ((64, 96), None, (64, 96))],
)
def test_resized_shape_keeps_aspect(hw, size, expected):
    assert resized_shape(*hw, size) == expected
