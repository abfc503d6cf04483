"""pipeline/labeling/watch.py: a video is labelled once, only after it is complete; a damaged
one becomes a failed row once it has stayed unchanged; a restart relabels nothing."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from pipeline.labeling.watch import InboxWatcher, load_watch_model
from tests.conftest import tiny_config
from tests.helpers_video import write_video
from tests.helpers_watch import copy_slowly, resnet18_model_dir


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path: Path):
    cfg = tiny_config(tmp_path, tmp_path / "inbox", None, "frame")
    (tmp_path / "inbox").mkdir()
    loaded = load_watch_model(str(resnet18_model_dir(tmp_path / "model")), cfg)
    return cfg, loaded


def watcher(tmp_path: Path, setup, clock: Clock, **options) -> InboxWatcher:
    cfg, loaded = setup
    return InboxWatcher(tmp_path / "inbox", tmp_path / "out", cfg, loaded, clock=clock, **options)


def summary(output: Path) -> dict[str, dict[str, str]]:
    with open(output / "summary.csv", newline="") as handle:
        return {row["video"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_a_damaged_file_waits_while_it_may_be_copying_then_fails(tmp_path, setup) -> None:
    clock = Clock()
    inbox_watcher = watcher(tmp_path, setup, clock, damaged_after_s=10)
    (tmp_path / "inbox" / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    (tmp_path / "inbox" / "notes.txt").write_text("not a video")
    assert inbox_watcher.poll() == []  # first seen: maybe still being written
    clock.now = 1
    assert inbox_watcher.poll() == []  # unchanged but unreadable: a stalled copy, so far
    clock.now = 11
    (event,) = inbox_watcher.poll()
    assert event.record.status == "failed" and "bad.mp4" in event.record.error
    assert summary(tmp_path / "out")["bad.mp4"]["status"] == "failed"
    clock.now = 30
    assert inbox_watcher.poll() == []  # handled in this content: never again
    (tmp_path / "inbox" / "bad.mp4").unlink()
    inbox_watcher.poll()
    assert summary(tmp_path / "out") == {}  # gone from the inbox, gone from the summary


@pytest.mark.slow
def test_a_slow_copy_is_labelled_once_after_it_is_complete_and_not_after_restart(
    tmp_path, setup
) -> None:
    clock = Clock()
    source = write_video(tmp_path / "source.mp4", "mp4v", frames=60)
    inbox_watcher = watcher(tmp_path, setup, clock, damaged_after_s=10)
    polls: list[list] = []

    def two_polls() -> None:  # a copy that stalls longer than a poll interval
        for _ in range(2):
            clock.now += 1
            polls.append(inbox_watcher.poll())

    (tmp_path / "inbox" / "sub").mkdir()
    copy_slowly(source, tmp_path / "inbox" / "sub" / "a.mp4", between=two_polls)
    assert len(polls) == 6 and all(events == [] for events in polls), polls
    clock.now += 1
    assert inbox_watcher.poll() == []  # the last chunk: changed since the previous look
    clock.now += 1
    (event,) = inbox_watcher.poll()
    assert (event.record.video, event.record.status) == ("sub/a.mp4", "ok")
    assert event.after_complete_s == 1
    assert (tmp_path / "out" / "sub" / "a.labels.json").is_file()
    assert summary(tmp_path / "out")["sub/a.mp4"]["status"] == "ok"
    clock.now += 1
    assert inbox_watcher.poll() == []

    # A restart (the real loop this time) finds the video labelled: a skipped row, no work.
    cfg, loaded = setup
    restarted = InboxWatcher(tmp_path / "inbox", tmp_path / "out", cfg, loaded, poll_s=0.05)
    stop = threading.Event()
    restarted.on_event = lambda event: stop.set()
    result = restarted.run(stop, run_for_s=30)
    assert [r.status for r in result.records] == ["skipped"]
    assert summary(tmp_path / "out")["sub/a.mp4"]["status"] == "skipped"


def test_only_a_whole_container_reads_whole(tmp_path: Path) -> None:
    from pipeline.labeling.watch import _reads_whole
    from tests.helpers_video import faststart

    whole = write_video(tmp_path / "whole.mp4", "mp4v", frames=30)
    data = whole.read_bytes()
    front = faststart(data)  # the index first: a part of it opens, with frames missing
    parts = {"half.mp4": data[: len(data) // 2], "front.mp4": front[: len(front) * 2 // 3]}
    for name, part in (*parts.items(), ("empty.mp4", b"")):
        (tmp_path / name).write_bytes(part)
        assert not _reads_whole(tmp_path / name)
    assert _reads_whole(whole)
