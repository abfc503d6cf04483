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


def test_a_record_is_stamped_with_the_host_it_ran_on_outside_dask() -> None:
    import socket

    from flows.common import ran_here

    record = ran_here(VideoRecord("a.mp4", "ok"))
    assert record.host == socket.gethostname() and record.video == "a.mp4"


def _wrapped_futures(count: int):
    """Real Prefect futures over plain concurrent futures, completed by the test."""
    import concurrent.futures
    import uuid

    from prefect.futures import PrefectConcurrentFuture

    plain = [concurrent.futures.Future() for _ in range(count)]
    return plain, [PrefectConcurrentFuture(uuid.uuid4(), future) for future in plain]


def test_records_are_read_as_their_tasks_end_and_yielded_in_order() -> None:
    from prefect.states import Completed

    from flows.common import collect_in_order

    plain, futures = _wrapped_futures(3)
    failed = [VideoRecord(name, "failed") for name in ("a", "b", "c")]
    records = collect_in_order(futures, failed)
    plain[2].set_result(Completed(data=VideoRecord("c", "ok")))
    plain[0].set_result(Completed(data=VideoRecord("a", "ok")))
    assert next(records) == VideoRecord("a", "ok")
    # c ended before b and was read then (its future dropped), but waits for b to be yielded.
    plain[1].set_exception(RuntimeError("Attempted to run task on 4 different workers"))
    assert list(records) == [
        failed[1].failed("RuntimeError: Attempted to run task on 4 different workers"),
        VideoRecord("c", "ok"),
    ]
