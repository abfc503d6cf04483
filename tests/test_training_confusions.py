"""pipeline/training/confusions.py: the most confused pairs of a clip run, with videos."""

from __future__ import annotations

import numpy as np

from pipeline.training.confusions import confused_pairs, confusions_figure

CLASSES = ["clap", "pour", "stir"]


def one_hot(pred: list[int], sure: list[float]) -> list[np.ndarray]:
    rows = []
    for p, s in zip(pred, sure, strict=True):
        row = np.full(len(CLASSES), (1 - s) / 2)
        row[p] = s
        rows.append(row)
    return rows


def test_pairs_are_counted_ordered_and_carry_their_videos_most_confident_first() -> None:
    videos = ["a", "b", "c", "d", "e", "f"]
    true = [1, 1, 1, 2, 2, 0]
    pred = [2, 2, 1, 1, 2, 0]
    summary = confused_pairs(videos, true, pred, one_hot(pred, [0.6, 0.9, 0.8, 0.5, 0.7, 0.9]),
                             CLASSES)  # fmt: skip
    assert summary["videos"] == 6 and summary["wrong"] == 3
    first, second = summary["pairs"]
    assert (first["true"], first["predicted"], first["count"]) == ("pour", "stir", 2)
    assert first["fraction_of_true"] == 2 / 3
    assert [v["video"] for v in first["videos"]] == ["b", "a"]  # 0.9 before 0.6
    assert (second["true"], second["predicted"], second["count"]) == ("stir", "pour", 1)


def test_top_and_examples_bound_the_summary() -> None:
    true = [0] * 4 + [1] * 2 + [2]
    pred = [1] * 4 + [0] * 2 + [0]
    summary = confused_pairs([str(i) for i in range(7)], true, pred, one_hot(pred, [0.5] * 7),
                             CLASSES, top=2, examples=3)  # fmt: skip
    assert [(p["true"], p["count"], len(p["videos"])) for p in summary["pairs"]] == [
        ("clap", 4, 3), ("pour", 2, 2),
    ]  # fmt: skip


def test_figure_names_the_example_videos(tmp_path) -> None:
    pred = [2, 0]
    summary = confused_pairs(["x/one.mp4", "x/two.mp4"], [1, 0], pred, one_hot(pred, [0.8, 0.9]),
                             CLASSES)  # fmt: skip
    figure = confusions_figure(summary)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts == ["100% of pour: x/one.mp4"]
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["pour → stir"]
    figure.savefig(tmp_path / "c.png")


def test_a_run_without_mistakes_says_so() -> None:
    summary = confused_pairs(["a"], [0], [0], one_hot([0], [0.9]), CLASSES)
    assert summary["pairs"] == []
    texts = [t.get_text() for t in confusions_figure(summary).axes[0].texts]
    assert texts == ["no video was confused"]
