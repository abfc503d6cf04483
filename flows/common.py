"""What the per-video flows share: the retry rule, reading a finished task's record (as soon as
its task ends), and the records of a folder in order with the videos that have nothing to do
skipped before mapping."""

from __future__ import annotations

import queue
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from pipeline.errors import UserError
from pipeline.jobs import VideoRecord
from pipeline.progress import reporter

T = TypeVar("T")

# OSErrors that a retry a second later cannot fix: a wrong path, a folder, no permission.
PERMANENT_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def transient(task, task_run, state) -> bool:
    """Retry I/O hiccups (network storage); never a bad video, a bad path or a bad config."""
    try:
        state.result()
    except (UserError, *PERMANENT_OS_ERRORS):
        return False
    except OSError:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


def collect(future: PrefectFuture, failed_record: VideoRecord) -> VideoRecord:
    """A finished task's record; a failed task becomes ``failed_record`` with its reason."""
    try:
        future.wait()
    except Exception as exc:  # noqa: BLE001 - e.g. Dask's KilledWorker: one video, not the run
        return failed_record.failed(f"{type(exc).__name__}: {exc}")
    state = future.state
    if state.is_completed():
        return future.result()
    error = state.result(raise_on_failure=False)
    reason = str(error) if isinstance(error, BaseException) else (state.message or state.name)
    return failed_record.failed(reason or "failed")


def collect_in_order(
    futures: Sequence[PrefectFuture], failed_records: Sequence[VideoRecord]
) -> Iterator[VideoRecord]:
    """Each future's record (:func:`collect`), yielded in the futures' order.

    A result is read as soon as its task ends, whatever the order, and the future is dropped
    once read: a finished result left waiting on a Dask worker would be lost with that worker
    (Dask then runs the task again), and futures kept to the end would hold every result of a
    large folder in memory on the workers and here.
    """
    finished: queue.SimpleQueue[int] = queue.SimpleQueue()
    waiting = dict(enumerate(futures))
    del futures  # only `waiting` refers to them now: each goes once read
    for index, future in waiting.items():
        future.add_done_callback(lambda _, index=index: finished.put(index))
    ready: dict[int, VideoRecord] = {}
    next_index = 0
    while next_index < len(failed_records):
        index = finished.get()
        ready[index] = collect(waiting.pop(index), failed_records[index])
        while next_index in ready:
            yield ready.pop(next_index)
            next_index += 1


def ran_here(record: VideoRecord) -> VideoRecord:
    """``record`` stamped with where this task ran (a summary then shows which worker did what)."""
    return replace(record, host=this_host())


def this_host() -> str:
    """The Dask worker's address inside a Dask worker (host names repeat across containers and
    network namespaces; addresses do not), else this machine's host name."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # ValueError: not inside a Dask worker
        return socket.gethostname()


def per_video_task(name: str, run_name: str):
    """The task decorator of per-video work: transient I/O errors retried, nothing cached."""
    return task(
        name=name,
        task_run_name=run_name,
        retries=2,
        retry_delay_seconds=2,
        retry_condition_fn=transient,
        cache_policy=NO_CACHE,
    )


def records_in_order(
    items: Sequence[T],
    skipped: Callable[[T], VideoRecord | None],
    run: Callable[[list[T]], Iterable[VideoRecord]],
) -> list[VideoRecord]:
    """One record per item, in the items' order, each reported as it is known.

    ``skipped(item)`` is the record of an item with nothing to do (None: work to do): those cost
    no task run. The rest go to ``run(pending)``, which yields their records in order (it maps
    the tasks and collects each future), and only when there is any.
    """
    records: dict[int, VideoRecord] = {}  # by position: a manifest may list a video twice
    for index, item in enumerate(items):
        if (record := skipped(item)) is not None:
            records[index] = record
            reporter().video_done(record)
    positions = [index for index in range(len(items)) if index not in records]
    if positions:
        pending = [items[index] for index in positions]
        for index, record in zip(positions, run(pending), strict=True):
            records[index] = record
            reporter().video_done(record)
    return [records[index] for index in range(len(items))]
