"""Prefect flow ``label_folder``: every video of a folder labelled by one trained model.

Thin: the folder plan is :func:`pipeline.labeling.plan_folder`, the per-video work (extraction
with the model's own extractor spec, prediction, output files) :func:`pipeline.labeling.label_one`;
tasks pass paths and small records, never arrays. The model is loaded once per process
(:func:`pipeline.labeling.get_model`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import collect_in_order, per_video_task, ran_here, records_in_order
from flows.runner import WorkerNeeds, task_mapper
from pipeline.config import Config, absolute_paths
from pipeline.jobs import JobSummary, VideoRecord
from pipeline.labeling.folder import PlannedVideo, already_labelled, label_one, plan_folder
from pipeline.labeling.outputs import (
    INDEX_HTML,
    SUMMARY_COLUMNS,
    SUMMARY_CSV,
    summary_csv_text,
    write_if_changed,
)
from pipeline.labeling.page import index_html
from pipeline.labeling.predict import check_spec, get_model
from pipeline.progress import reporter
from pipeline.tracking.registry import resolve_model


@per_video_task("label-video", "label {relative}")
def label_video_task(
    video: str,
    relative: str,
    base: str,
    output: str,
    config: Config,
    model: str,
    source: str,
    tracking: str,
) -> VideoRecord:
    # `source` is the version the flow pinned `model` to: an alias moving mid-run changes nothing.
    loaded = replace(get_model(source, tracking), uri=model)
    return ran_here(label_one(Path(video), relative, base, Path(output), config, loaded))


# One video at a time in-process, as in extract_features: each task already overlaps decode
# and inference.
@flow(name="label_folder", task_runner=ThreadPoolTaskRunner(max_workers=1))
def label_folder(
    input: str,
    model: str,
    output: str,
    config: Config | None = None,
    overwrite: bool | None = None,
    print_summary: bool = True,
    truth: str | None = None,
) -> dict[str, Any]:
    """Label every video under ``input`` (folder, manifest or file) with ``model`` into ``output``.

    ``model``: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/<id>/model`` or
    a local model folder. ``overwrite`` (default ``config.label.overwrite``) relabels videos
    whose outputs are current. ``truth``: an annotation file or folder (any training format)
    the review page compares the labels with. Returns the job summary plus the paths of
    summary.csv and index.html.
    """
    from pipeline.tracking.mlflow import require_store, resolve_uri

    # Tasks may run on other machines or in workers started elsewhere: no relative paths.
    cfg = absolute_paths(config or Config())
    if overwrite is not None:
        cfg.label.overwrite = overwrite
    videos = plan_folder(Path(input), cfg.data.extensions)
    reporter().videos(len(videos))
    tracking = resolve_uri(cfg)
    if not Path(model).expanduser().is_dir():
        require_store(tracking)  # labelling only reads: never create an empty store
    pinned = resolve_model(model, tracking).source  # one version for the whole run
    loaded = replace(get_model(pinned, tracking), uri=model)
    check_spec(loaded.model.spec)
    annotations = _truth(truth, loaded, Path(input), cfg)  # a bad file fails before any work
    out = Path(output).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)

    def skipped(video: PlannedVideo) -> VideoRecord | None:
        return already_labelled(video.path, video.relative, video.base, out, cfg, loaded)

    def run(pending: list[PlannedVideo]) -> Iterator[VideoRecord]:
        # runner.kind picks the runner at run time (flows/runner.py), as in extract_features.
        # Workers elsewhere load the model from `tracking` and read/write these folders.
        needs = WorkerNeeds(
            paths=(input, str(out)),
            urls=(tracking,) if tracking.startswith(("http://", "https://")) else (),
        )
        with task_mapper(cfg, needs) as map_tasks:
            failed = [VideoRecord(v.relative, "failed", path=str(v.path)) for v in pending]
            # The futures are handed over, not kept: each is dropped once its record is read.
            yield from collect_in_order(map_tasks(
                label_video_task, video=[str(v.path) for v in pending],
                relative=[v.relative for v in pending], base=[v.base for v in pending],
                output=unmapped(str(out)), config=unmapped(cfg), model=unmapped(model),
                source=unmapped(pinned), tracking=unmapped(tracking),
            ), failed)  # fmt: skip

    # Labelled videos are skipped before any task is mapped: they cost no task run.
    records = records_in_order(videos, skipped, run)
    summary = JobSummary(job="label", extractor_key=loaded.model.spec.key())
    for record in records:  # in discovery order, skipped or not
        summary.add(record)
    return _finish(summary, out, loaded.describe(), print_summary, annotations)


def _truth(truth: str | None, loaded, input: Path, cfg: Config):
    """The ``truth`` annotations for this model's task, or None."""
    if truth is None:
        return None
    from pipeline.labeling.folder import input_root
    from pipeline.labeling.truth import load_truth

    model = loaded.model
    return load_truth(
        Path(truth), model.task, model.background, input_root(input), cfg.data.extensions
    )


def _finish(
    summary: JobSummary, out: Path, model: dict[str, Any], print_summary: bool, annotations=None
) -> dict[str, Any]:
    """summary.csv and index.html (rewritten only when their content changed), the artifact."""
    records = summary.records
    summary_csv, index = out / SUMMARY_CSV, out / INDEX_HTML
    write_if_changed(summary_csv, summary_csv_text(records))
    write_if_changed(index, index_html(out, records, model, annotations))
    table = [r.row((*SUMMARY_COLUMNS, "host")) for r in records]  # host: the artifact only
    create_table_artifact(key="label-summary", table=table, description=summary.markdown())
    if print_summary:
        print(summary.text())
        print(f"review page: {index}\nsummary: {summary_csv}")
    return {
        **summary.to_dict(),
        "output": str(out),
        "summary_csv": str(summary_csv),
        "index_html": str(index),
        "model": model,
    }


@flow(name="watch_inbox")
def watch_inbox(
    inbox: str,
    model: str,
    output: str,
    config: Config | None = None,
    poll_s: float = 0.5,
    damaged_after_s: float = 10.0,
    run_for_s: float | None = None,
) -> dict[str, Any]:
    """``vidtag watch`` as a deployment (``flow: watch`` in configs/schedules.yaml): label each
    new video of ``inbox`` once it is complete, for ``run_for_s`` seconds (None: until the run
    is cancelled). Videos are labelled by direct library calls in this flow run, with the model
    loaded once (:mod:`pipeline.labeling.watch`); the summary of the videos handled is returned
    and kept as the run's table artifact.
    """
    import threading

    from pipeline.labeling.watch import InboxWatcher, load_watch_model, warm_up

    cfg = (config or Config()).model_copy(deep=True)
    loaded = load_watch_model(model, cfg)
    warm_up(loaded, cfg)
    watcher = InboxWatcher(Path(inbox), Path(output), cfg, loaded, poll_s, damaged_after_s)
    summary = watcher.run(threading.Event(), run_for_s=run_for_s)
    return _finish(summary, watcher.output, loaded.describe(), print_summary=False)
