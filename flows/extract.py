"""Prefect flow ``extract_features``: every video of a folder into the feature store.

Thin: discovery, per-video work and the summary are in ``pipeline/``; tasks pass paths and
small records, never arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.config import Config
from pipeline.discovery import discover_videos
from pipeline.errors import UserError
from pipeline.extraction import VideoResult, extract_one
from pipeline.features import spec_from_config
from pipeline.jobs import JobSummary
from pipeline.progress import reporter
from pipeline.store import FeatureStore


def _transient(task, task_run, state) -> bool:
    """Retry I/O hiccups (network storage); never a bad video or a bad config."""
    try:
        state.result()
    except UserError:
        return False
    except OSError:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(
    name="extract-video",
    task_run_name="extract {video}",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)
def extract_video_task(video: str, config: Config) -> dict[str, Any]:
    return extract_one(Path(video), config).to_dict()


# One video at a time in-process: each task already overlaps decode and inference, and on a
# small machine parallel tasks would only fight over the same cores.
@flow(name="extract_features", task_runner=ThreadPoolTaskRunner(max_workers=1))
def extract_features(config: Config, print_summary: bool = True) -> dict[str, Any]:
    """Extract the features of every video in ``config.data.videos`` (skipping stored ones)."""
    if config.data.videos is None:
        raise UserError("data.videos is not set: give a folder of videos or a manifest")
    videos = discover_videos(config.data.videos, config.data.extensions)
    spec = spec_from_config(config)
    FeatureStore(config.features.store).write_spec(spec.key(), spec.to_dict())
    futures = extract_video_task.map([str(v) for v in videos], unmapped(config))
    summary = JobSummary(job="extract", extractor_key=spec.key())
    for video, future in zip(videos, futures, strict=True):
        record = _collect(str(video), future)
        summary.add(record)
        reporter().video_done(record)
    create_table_artifact(
        key="extract-summary", table=summary.rows(), description=summary.markdown()
    )
    if print_summary:
        print(summary.text())
    return summary.to_dict()


def _collect(video: str, future: PrefectFuture) -> dict[str, Any]:
    """A finished task's record; a failed task becomes a `failed` record with its reason."""
    future.wait()
    state = future.state
    if state.is_completed():
        return future.result()
    error = state.result(raise_on_failure=False)
    reason = str(error) if isinstance(error, BaseException) else (state.message or state.name)
    return VideoResult(video, "failed", error=reason).to_dict()
