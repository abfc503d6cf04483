"""flows/common.py: the retry rule, and a finished task's record (a failed one included)."""

from __future__ import annotations

import pytest


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
