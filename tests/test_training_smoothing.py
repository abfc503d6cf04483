"""pipeline/training/smoothing.py: the merge length chosen on validation videos, and the
metrics of what labelling gives at native frames."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.frames import NativeFrames, frame_bounds
from pipeline.training.metrics import frame_metrics
from pipeline.training.smoothing import (
    MIN_SEGMENT_GRID,
    NativeVideo,
    Selection,
    select_min_segment,
    smoothed_metrics,
)
from tests.helpers_labeling import one_hot

BG, A, B = 0, 1, 2


def steps(*runs: tuple[int, int]) -> list[int]:
    return [label for label, count in runs for _ in range(count)]


def video(truth_steps: list[int], pred_steps: list[int]) -> NativeVideo:
    """Samples at 5 fps of a 10 fps video: each step covers two native frames (0.2 s)."""
    frames = 2 * len(truth_steps)
    native = NativeFrames(np.arange(0, frames, 2), frame_bounds(None, frames, 10.0, frames / 10))
    truth = np.repeat(truth_steps, 2).astype(np.int64)
    return NativeVideo("v.mp4", one_hot(pred_steps), native, truth)


# Truth: a short true A segment (0.8 s) and a long B (3 s). The prediction adds a 0.2 s B
# flicker in the background and a 0.4 s A flicker inside B: merging at 0.5 s removes both and
# gives the truth exactly; at 1 s and above the true 0.8 s A goes too.
TRUTH = steps((BG, 5), (A, 4), (BG, 6), (B, 15))
NOISY = steps((BG, 5), (A, 4), (BG, 2), (B, 1), (BG, 3), (B, 5), (A, 2), (B, 8))


def test_the_grid_value_with_the_best_f1_50_on_validation_wins() -> None:
    selection = select_min_segment([video(TRUTH, NOISY)])
    assert selection.source == "validation" and set(selection.scores) == set(MIN_SEGMENT_GRID)
    f1 = {value: scores["f1_50"] for value, scores in selection.scores.items()}
    assert f1[0.5] == f1[0.75] == 1.0  # both flickers merged away, the short A kept
    assert f1[0.0] < f1[0.3] < 1.0  # 0.3 s removes only the 0.2 s flicker
    assert f1[1.0] < 1.0 and f1[2.0] < 1.0  # the true 0.8 s segment merged away
    assert selection.min_segment_s == 0.5  # the tie with 0.75 goes to the shorter length


def test_equal_scores_choose_the_shortest_length() -> None:
    clean = steps((BG, 10), (A, 20), (B, 20))  # every run >= 2 s: no length changes anything
    selection = select_min_segment([video(clean, clean)])
    assert selection.min_segment_s == 0.0
    assert all(s["f1_50"] == 1.0 and s["edit"] == 1.0 for s in selection.scores.values())


def test_smoothed_metrics_at_zero_score_every_native_frame_of_the_raw_steps() -> None:
    noisy = video(TRUTH, NOISY)
    raw = frame_metrics([np.repeat(NOISY, 2)], [noisy.truth], background=(0,))
    assert smoothed_metrics([noisy], 0.0) == raw
    assert smoothed_metrics([noisy], 0.5)["frame_accuracy"] == 1.0


def test_selection_needs_validation_videos_and_says_how_it_chose() -> None:
    with pytest.raises(ValueError, match="no validation videos"):
        select_min_segment([])
    chosen = select_min_segment([video(TRUTH, NOISY)])
    assert "0.5 s, chosen on 1 validation videos (F1@50 1.000" in chosen.describe(1)
    fallback = Selection(0.3, "fallback", {})
    assert "no validation videos" in fallback.describe() and "0.3 s" in fallback.describe()
    assert "from the config" in Selection(0.7, "config", {}).describe()
