"""flows/common.py: the retry rule, a finished task's record, records in order."""

from __future__ import annotations

import pytest

from pipeline.jobs import VideoRecord


class _FailedState:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (FileNotFoundError(2, "No such file or directory"), False),
        (IsADirectoryError(21, "Is a directory"), False),
        (NotADirectoryError(20, "Not a directory"), False),
        (PermissionError(13, "Permission denied"), False),
        (ValueError("bad"), False),
        (OSError(5, "Input/output error"), True),
        (TimeoutError("network storage"), True),
    ],
)
def test_only_transient_io_errors_are_retried(error: BaseException, retried: bool) -> None:
    from flows.common import transient

    assert transient(None, None, _FailedState(error)) is retried


@pytest.mark.slow
def test_a_failed_task_is_collected_as_the_failed_record_with_its_reason(prefect_api) -> None:
    """Through a real flow: a permanent error is not retried and becomes a failed record."""
    from prefect import flow

    from flows.common import collect, per_video_task
    from pipeline.errors import UserError
    from pipeline.jobs import VideoRecord

    calls: list[str] = []

    @per_video_task("check-video", "check {video}")
    def check(video: str) -> VideoRecord:
        calls.append(video)
        if video == "bad.mp4":
            raise UserError("bad.mp4: not a video")
        return VideoRecord(video, "ok", label="stir")

    @flow
    def check_all(videos: list[str]) -> list[VideoRecord]:
        futures = check.map(videos)
        return [collect(f, VideoRecord(v, "failed")) for v, f in zip(videos, futures, strict=True)]

    records = check_all(["a.mp4", "bad.mp4"])
    assert records == [
        VideoRecord("a.mp4", "ok", label="stir"),
        VideoRecord("bad.mp4", "failed").failed("bad.mp4: not a video"),
    ]
    assert records[1].status == "failed" and records[1].error == "bad.mp4: not a video"
    assert sorted(calls) == ["a.mp4", "bad.mp4"]  # the user error was not retried


class _Events:
    def __init__(self) -> None:
        self.done: list[str] = []

    def videos(self, count: int) -> None:
        pass

    def frames(self, count: int) -> None:
        pass

    def video_done(self, record: VideoRecord) -> None:
        self.done.append(f"{record.video}:{record.status}")

    def epoch(self, epoch: int, metrics: dict) -> None:
        pass


@pytest.mark.parametrize(
    ("stored", "runs"),
    [({"a", "c"}, [["b", "a2"]]), (set(), [["a", "b", "c", "a2"]]), ({"a", "b", "c", "a2"}, [])],
    ids=["some stored", "none stored", "all stored"],
)
def test_records_keep_the_items_order_and_only_the_rest_are_run(stored, runs) -> None:
    from flows.common import records_in_order
    from pipeline.progress import reporting

    items = ["a", "b", "c", "a2"]  # a2: the same video listed twice by a manifest, say
    calls: list[list[str]] = []

    def skipped(item: str) -> VideoRecord | None:
        return VideoRecord(item, "skipped") if item in stored else None

    def run(pending: list[str]):
        calls.append(pending)
        for item in pending:
            yield VideoRecord(item, "ok")

    events = _Events()
    with reporting(events):
        records = records_in_order(items, skipped, run)
    assert [r.video for r in records] == items
    assert [r.status for r in records] == ["skipped" if i in stored else "ok" for i in items]
    assert calls == runs  # no run at all when nothing is left to do
    skipped_first = [f"{i}:skipped" for i in items if i in stored]
    assert events.done == skipped_first + [f"{i}:ok" for i in items if i not in stored]
