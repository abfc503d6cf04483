"""The reporter protocol: silent by default, ``reporting(...)`` installs one for a block and
restores the silent default after it (also on an error), and every event reaches it."""

from __future__ import annotations

import pytest

from pipeline.jobs import VideoRecord
from pipeline.progress import Reporter, SilentReporter, reporter, reporting, set_reporter


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def videos(self, count: int) -> None:
        self.events.append(("videos", count))

    def frames(self, count: int) -> None:
        self.events.append(("frames", count))

    def video_done(self, record: VideoRecord) -> None:
        self.events.append(("video_done", record.status))

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.events.append(("epoch", epoch, metrics))


EVENTS = [
    ("videos", (3,), ("videos", 3)),
    ("frames", (64,), ("frames", 64)),
    ("video_done", (VideoRecord("a.mp4", "ok"),), ("video_done", "ok")),
    ("epoch", (2, {"val_loss": 0.5}), ("epoch", 2, {"val_loss": 0.5})),
]


@pytest.mark.parametrize(("event", "args", "_seen"), EVENTS)
def test_the_default_reporter_is_silent(event: str, args: tuple, _seen) -> None:
    assert isinstance(reporter(), SilentReporter)
    assert getattr(reporter(), event)(*args) is None


@pytest.mark.parametrize(("event", "args", "seen"), EVENTS)
def test_reporting_sends_each_event_and_restores_the_default(event, args, seen) -> None:
    recorder = Recorder()
    with reporting(recorder) as installed:
        assert installed is recorder and reporter() is recorder
        getattr(reporter(), event)(*args)
    assert recorder.events == [seen] and isinstance(reporter(), SilentReporter)


def test_reporting_restores_the_default_after_an_error() -> None:
    with pytest.raises(RuntimeError), reporting(Recorder()):
        raise RuntimeError("boom")
    assert isinstance(reporter(), SilentReporter)


def test_set_reporter_none_is_the_silent_default() -> None:
    recorder = Recorder()
    set_reporter(recorder)
    try:
        assert reporter() is recorder
    finally:
        set_reporter(None)
    assert isinstance(reporter(), SilentReporter)


def test_the_silent_reporter_has_every_event_of_the_protocol() -> None:
    events = {name for name in vars(Reporter) if not name.startswith("_")}
    assert events == {"videos", "frames", "video_done", "epoch"}
    assert all(callable(getattr(SilentReporter(), name)) for name in events)
