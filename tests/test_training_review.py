"""pipeline/training/review.py: the review artifacts a finished run holds (timelines for a
frame run, the most confused pairs for a clip run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.training.review import artifact_names


def test_artifact_names_drop_the_extension_unless_two_videos_share_a_stem() -> None:
    names = artifact_names(["a/x.mp4", "a/y.mp4", "a/y.mov", "b/y.mp4"])
    assert names == {"a/x.mp4": "a/x", "a/y.mp4": "a/y.mp4", "a/y.mov": "a/y.mov", "b/y.mp4": "b/y"}


def finished_runs(cfg):
    from mlflow import MlflowClient

    client = MlflowClient(cfg.tracking.uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    return client, runs


@pytest.mark.slow
def test_a_frame_run_holds_a_timeline_per_test_video_and_the_overview(trained) -> None:
    from PIL import Image

    from pipeline.data.annotations import load_annotations
    from pipeline.data.datasets import assign_splits

    client, runs = finished_runs(trained.cfg)
    (run,) = [r for r in runs if r.data.tags.get("task") == "frame"]
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "timelines")}
    data = trained.cfg.data
    annotations = assign_splits(
        load_annotations(data), data.val_fraction, data.test_fraction, data.split_seed
    )
    test_videos = [item.video for item in annotations.items if item.split == "test"]
    assert 0 < len(test_videos) <= trained.cfg.tracking.timeline_videos
    expected = {f"timelines/{Path(v).with_suffix('').as_posix()}.png" for v in test_videos}
    # Videos sit in folders, so their PNGs are one level further down.
    listed = set()
    for path in paths:
        listed |= {a.path for a in client.list_artifacts(run.info.run_id, path)} or {path}
    assert listed == expected | {"timelines/overview.png"}, listed
    local = client.download_artifacts(run.info.run_id, "timelines/overview.png")
    with Image.open(local) as image:
        assert image.width >= 1000 and image.height >= 150


@pytest.mark.slow
def test_a_clip_run_holds_its_most_confused_pairs(clip_run) -> None:
    cfg, output = clip_run
    client, _ = finished_runs(cfg)
    run_id = output.split("MLflow run:")[1].split()[0]
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"confusions.json", "confusions.png"} <= names, names
    summary = json.loads(Path(client.download_artifacts(run_id, "confusions.json")).read_text())
    assert summary["split"] == "test" and summary["videos"] > 0
    assert summary["wrong"] >= sum(pair["count"] for pair in summary["pairs"])
    for pair in summary["pairs"]:
        assert pair["true"] != pair["predicted"] and pair["videos"]
