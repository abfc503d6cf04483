"""What the per-video flows share: the retry rule and reading a finished task's record."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from pipeline.errors import UserError
from pipeline.jobs import VideoRecord

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
    future.wait()
    state = future.state
    if state.is_completed():
        return future.result()
    error = state.result(raise_on_failure=False)
    reason = str(error) if isinstance(error, BaseException) else (state.message or state.name)
    return failed_record.failed(reason or "failed")


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
