"""pipeline/cli/console.py: progress bars driven by reporter events, and the job summaries."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from pipeline.cli.console import (
    ProgressReporter,
    print_failures,
    progress_bar,
    summary_table,
)
from pipeline.jobs import VideoRecord


def _console() -> Console:
    return Console(file=io.StringIO(), width=200, color_system=None)


def _bars(reporter: ProgressReporter) -> dict[str, tuple[float | None, float]]:
    """description -> (total, completed) of every bar."""
    return {t.description: (t.total, t.completed) for t in reporter.progress.tasks}


def test_events_fill_the_videos_and_frames_bars() -> None:
    console = _console()
    with progress_bar(console) as progress:
        reporter = ProgressReporter(progress, "labelling videos", announce=lambda n: f"{n} videos")
        assert _bars(reporter) == {"labelling videos": (None, 0), "frames": (None, 0)}
        reporter.videos(3)
        reporter.frames(40)
        reporter.frames(2)
        reporter.video_done(VideoRecord("a.mp4", "ok"))
        reporter.video_done(VideoRecord("b.mp4", "failed", error="bad"))
        assert _bars(reporter) == {"labelling videos": (3, 2), "frames": (None, 42)}
    assert "3 videos" in console.file.getvalue()  # announced above the bars


def test_epochs_get_their_own_bar_with_the_shown_metrics() -> None:
    with progress_bar(_console()) as progress:
        reporter = ProgressReporter(progress, epochs=10)
        reporter.epoch(1, {"train_loss": 1.5, "val_accuracy": 0.25, "lr": 0.1})
        reporter.epoch(2, {"train_loss": 1.0, "val_accuracy": 0.5, "lr": 0.1})
        (bar,) = [t for t in progress.tasks if t.id == reporter.epoch_bar]
    assert (bar.total, bar.completed) == (10, 2)
    assert bar.description == "epoch 2: train_loss=1.000 val_accuracy=0.500"  # no lr


SUMMARY = {"videos": 5, "ok": 2, "skipped": 2, "failed": 1, "frames": 1234, "frames_per_s": 56.78}


@pytest.mark.parametrize(
    ("summary", "row"),
    [
        (SUMMARY, ["5", "2", "2", "1", "1234", "56.8"]),
        ({**SUMMARY, "ok": 0, "frames": 0, "frames_per_s": 0.0}, ["5", "0", "2", "1", "0", "0.0"]),
    ],
)
def test_summary_table_shows_the_counts(summary, row) -> None:
    console = _console()
    console.print(summary_table(summary, "extract_features"))
    lines = console.file.getvalue().splitlines()
    assert "extract_features" in lines[0]
    cells = [re.findall(r"[\w./]+", line) for line in lines]  # the words, not the box lines
    assert ["videos", "ok", "skipped", "failed", "frames", "frames/s"] in cells
    assert cells.count(row) == 1


def test_failures_are_one_line_each() -> None:
    console = _console()
    failures = [{"video": "a [1].mp4", "error": "not a video"}, {"video": "b.mp4", "error": "x"}]
    print_failures(console, failures)
    assert console.file.getvalue().splitlines() == [
        "failed a [1].mp4: not a video",  # brackets are not rich markup here
        "failed b.mp4: x",
    ]


def test_not_a_terminal_prints_plain_lines_instead_of_bars() -> None:
    """A pipe or log file gets one line per finished video and epoch, no cut bar."""
    console = _console()
    assert not console.is_terminal
    with progress_bar(console) as progress:
        assert progress.disable
        reporter = ProgressReporter(progress, epochs=2)
        reporter.videos(2)
        reporter.frames(10)
        reporter.video_done(VideoRecord("a [1].mp4", "ok"))
        reporter.video_done(VideoRecord("b.mp4", "failed", error="not a video"))
        reporter.epoch(1, {"train_loss": 1.5})
    assert console.file.getvalue().splitlines() == [
        "1/2 ok a [1].mp4",
        "2/2 failed b.mp4: not a video",
        "epoch 1/2: train_loss=1.500",
    ]


def test_a_terminal_gets_bars_and_no_plain_lines() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=True)
    with progress_bar(console) as progress:
        assert not progress.disable
        reporter = ProgressReporter(progress)
        reporter.videos(1)
        reporter.video_done(VideoRecord("a.mp4", "ok"))
    assert "1/1 ok a.mp4" not in console.file.getvalue()
