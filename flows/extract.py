"""Prefect flow ``extract_features``: every video of a folder into the feature store.

Thin: discovery, per-video work and the summary are in ``pipeline/``; tasks pass paths and
small records, never arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import collect_in_order, per_video_task, ran_here, records_in_order
from flows.runner import WorkerNeeds, task_mapper
from pipeline.config import Config, absolute_paths
from pipeline.data.discovery import discover_videos
from pipeline.errors import UserError
from pipeline.features.extract import already_stored, extract_one, get_extractor
from pipeline.features.spec import spec_from_config
from pipeline.features.store import FeatureStore
from pipeline.jobs import JobSummary, VideoRecord
from pipeline.progress import reporter


@per_video_task("extract-video", "extract {video}")
def extract_video_task(video: str, config: Config) -> VideoRecord:
    return ran_here(extract_one(Path(video), config))


# runner.kind: local runs one video at a time in-process: each task already overlaps decode
# and inference, and on a small machine parallel tasks would only fight over the same cores.
# runner.kind: dask swaps in a DaskTaskRunner for the mapped tasks (flows/runner.py).
@flow(name="extract_features", task_runner=ThreadPoolTaskRunner(max_workers=1))
def extract_features(config: Config, print_summary: bool = True) -> dict[str, Any]:
    """Extract the features of every video in ``config.data.videos`` (skipping stored ones)."""
    if config.data.videos is None:
        raise UserError("data.videos is not set: give a folder of videos or a manifest")
    # Tasks may run on other machines or in workers started elsewhere: no relative paths.
    config = absolute_paths(config)
    videos = discover_videos(config.data.videos, config.data.extensions)
    reporter().videos(len(videos))
    spec = spec_from_config(config)
    store = FeatureStore(config.features.store)

    def run(pending: list[Path]) -> Iterator[VideoRecord]:
        # Built once before any video (local tasks reuse it): a bad backbone or weights that
        # cannot be fetched is one error, whatever started the flow, not one failure per video.
        get_extractor(spec, config)
        store.write_spec(spec.key(), spec.to_dict())
        # runner.kind picks the runner at run time (CLI, subflow of train, deployments alike).
        # Workers elsewhere must see the videos and the store at the same paths.
        needs = WorkerNeeds(paths=(str(config.data.videos), str(store.root.parent)))
        with task_mapper(config, needs) as map_tasks:
            failed = [VideoRecord(str(video), "failed") for video in pending]
            # The futures are handed over, not kept: each is dropped once its record is read.
            yield from collect_in_order(
                map_tasks(
                    extract_video_task, video=[str(v) for v in pending], config=unmapped(config)
                ),
                failed,
            )

    # Stored videos are skipped before any task is mapped: nothing to do costs no task run.
    records = records_in_order(videos, lambda v: already_stored(v, store, spec.key()), run)
    summary = JobSummary(job="extract", extractor_key=spec.key())
    for record in records:  # in discovery order, skipped or not
        summary.add(record)
    create_table_artifact(
        key="extract-summary", table=summary.rows(), description=summary.markdown()
    )
    if print_summary:
        print(summary.text())
    return summary.to_dict()
