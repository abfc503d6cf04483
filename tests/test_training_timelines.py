"""pipeline/training/timelines.py: truth-against-prediction figures of a frame run."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.colours import class_colours
from pipeline.training import timelines
from pipeline.training.timelines import (
    OVERVIEW_MAX_VIDEOS,
    overview_figure,
    runs,
    step_edges,
    timeline_figure,
    timeline_of,
)

CLASSES = ["background", "pour", "stir"]
COLOURS = class_colours(CLASSES, "background")


def scores_for(pred: list[int], sure: float = 0.8) -> np.ndarray:
    scores = np.full((len(pred), len(CLASSES)), (1 - sure) / (len(CLASSES) - 1))
    scores[np.arange(len(pred)), pred] = sure
    return scores


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([], []),
        ([2], [(0, 1, 2)]),
        ([0, 0, 1, 1, 1, 0], [(0, 2, 0), (2, 5, 1), (5, 6, 0)]),
    ],
)
def test_runs_are_half_open_spans_of_equal_labels(labels, expected) -> None:
    assert runs(np.array(labels, dtype=np.int64)) == expected


def test_each_sample_spans_to_the_next_and_the_last_one_the_median_step() -> None:
    np.testing.assert_allclose(step_edges(np.array([0.0, 0.2, 0.4, 0.7])), [0, 0.2, 0.4, 0.7, 0.9])


def test_timeline_takes_the_predicted_label_and_its_probability() -> None:
    timeline = timeline_of("a.mp4", [0.0, 0.1, 0.2], [1, 1, 2], scores_for([1, 2, 2], 0.7))
    assert timeline.pred.tolist() == [1, 2, 2]
    np.testing.assert_allclose(timeline.confidence, 0.7)
    assert timeline.accuracy == pytest.approx(2 / 3)


def test_timeline_with_too_few_sample_times_names_the_video() -> None:
    with pytest.raises(ValueError, match="b.mp4: 2 sample times for 3 predicted frames"):
        timeline_of("b.mp4", [0.0, 0.1], [1, 1, 1], scores_for([1, 1, 1]))


def ribbon_colours(axes) -> list[tuple[str, int]]:
    """(colour, span count) of each broken_barh collection, in drawing order."""
    from matplotlib.colors import to_hex

    return [(to_hex(c.get_facecolor()[0]), len(c.get_paths())) for c in axes.collections]


def test_video_figure_draws_both_ribbons_in_class_colours_and_shades_wrong_frames() -> None:
    true = [0, 0, 1, 1, 1, 2, 2, 0]
    pred = [0, 1, 1, 1, 1, 2, 0, 0]
    timeline = timeline_of("kitchen/a.mp4", np.arange(8) / 10, true, scores_for(pred))
    figure = timeline_figure(timeline, CLASSES, COLOURS)
    ribbons, curve = figure.axes
    drawn = ribbon_colours(ribbons)
    # truth: background (2 spans), pour, stir; prediction: background (2 spans), pour, stir
    assert sorted(drawn) == sorted([
        (COLOURS["background"], 2), (COLOURS["pour"], 1), (COLOURS["stir"], 1),
    ] * 2)  # fmt: skip
    assert len(curve.patches) == 2  # two wrong runs shaded: frame 1 and frame 6
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == CLASSES
    assert "kitchen/a.mp4: frame accuracy 75.0%" in figure.get_suptitle()


def test_overview_puts_the_least_accurate_video_on_top() -> None:
    good = timeline_of("good.mp4", np.arange(4) / 5, [1, 1, 2, 2], scores_for([1, 1, 2, 2]))
    bad = timeline_of("bad.mp4", np.arange(4) / 5, [1, 1, 2, 2], scores_for([2, 2, 2, 2]))
    figure = overview_figure([good, bad], CLASSES, COLOURS, "val")
    (axes,) = figure.axes
    names = [t.get_text() for t in axes.get_yticklabels()]
    assert names == ["good.mp4  100%", "bad.mp4  50%"]  # bottom to top
    assert figure.get_suptitle().startswith("2 val videos:")


def test_overview_shows_at_most_the_cap_and_says_so(monkeypatch) -> None:
    assert OVERVIEW_MAX_VIDEOS == 200
    monkeypatch.setattr(timelines, "OVERVIEW_MAX_VIDEOS", 4)  # the same code path, fewer rows
    many = [
        timeline_of(f"v{i}.mp4", [0.0, 0.2], [1, 1], scores_for([1, 2 if i < 3 else 1]))
        for i in range(6)
    ]
    figure = overview_figure(many, CLASSES, COLOURS)
    names = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert names == ["v3.mp4  100%", "v2.mp4  50%", "v1.mp4  50%", "v0.mp4  50%"]
    assert "6 test videos, least accurate 4 of 6" in figure.get_suptitle()
