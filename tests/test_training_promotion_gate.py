"""The promotion gate end to end: real training runs into one registered model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.training.promotion import beats, split_metrics
from tests.conftest import tiny_config

NAME = "gate-clip"


@pytest.mark.parametrize(
    ("new", "old", "margin", "expected"),
    [(0.9, 0.8, 0.0, True), (0.8, 0.8, 0.0, False), (0.7, 0.8, 0.0, False),
     (0.85, 0.8, 0.1, False), (0.95, 0.8, 0.1, True)],
)  # fmt: skip
def test_a_new_version_must_beat_the_candidate_by_more_than_the_margin(
    new, old, margin, expected
) -> None:
    assert beats(new, old, margin) is expected


def test_split_metrics_keeps_one_split_without_its_prefix() -> None:
    metrics = {"test_accuracy": 0.5, "test_f1_macro": 0.4, "val_accuracy": 0.9, "best_epoch": 3}
    assert split_metrics(metrics, "test") == {"accuracy": 0.5, "f1_macro": 0.4}


@pytest.fixture(scope="module")
def stored(clip_dataset: Path, tmp_path_factory):
    """Features of every clip video in one store; the config of an order-blind model."""
    from pipeline.features.extract import extract_one

    root = tmp_path_factory.mktemp("gate")
    blind = tiny_config(
        root, clip_dataset, clip_dataset / "labels.csv", "clip",
        **{"model.cell": "none", "model.pooling": "mean", "tracking.registered_model": NAME},
    )  # fmt: skip
    for video in sorted(clip_dataset.rglob("*.mp4")):
        extract_one(video, blind)
    return blind


def _train(cfg, promote: bool = False, **changes):
    import mlflow

    from pipeline.training.job import run_training

    cfg = cfg.model_copy(deep=True)
    for key, value in changes.items():
        section, field = key.split(".")
        setattr(getattr(cfg, section), field, value)
    previous = mlflow.get_tracking_uri()
    try:
        return run_training(cfg, promote=promote)
    finally:
        mlflow.set_tracking_uri(previous)


def _resplit(cfg, folder: Path) -> Path:
    """The labels with other splits: per class, test -> val -> train -> test (one video)."""
    import csv

    rows = list(csv.DictReader(Path(cfg.data.annotations).open()))
    moved: set[tuple[str, str]] = set()
    rotate = {"test": "val", "val": "train", "train": "test"}
    for row in rows:
        row["video"] = f"videos/{row['video']}"
        if (row["label"], row["split"]) not in moved:
            moved.add((row["label"], row["split"]))
            row["split"] = rotate[row["split"]]
    (folder / "videos").symlink_to(Path(cfg.data.annotations).parent, target_is_directory=True)
    path = folder / "resplit.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["video", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _aliases(cfg) -> dict[str, str]:
    from mlflow import MlflowClient

    aliases = MlflowClient(cfg.tracking.uri).get_registered_model(NAME).aliases
    return {alias: str(version) for alias, version in aliases.items()}


@pytest.mark.slow
def test_a_worse_run_stays_challenger_and_a_better_one_takes_candidate(stored, tmp_path) -> None:
    from mlflow import MlflowClient

    first = _train(stored)  # order-blind: cannot tell the reversed pairs apart
    assert (first.registered_version, first.promotion) == ("1", "promoted")
    assert first.promotion_reason == "no candidate yet"
    assert _aliases(stored) == {"candidate": "1", "challenger": "1"}

    gru = _train(stored, **{"model.cell": "gru", "model.pooling": "last"})
    assert gru.promotion == "promoted", gru.promotion_reason
    assert "on the same test split" in gru.promotion_reason
    assert _aliases(stored) == {"candidate": "2", "challenger": "2"}

    # Another test split: the candidate is evaluated again on it before the comparison.
    worse = _train(stored, **{"data.annotations": _resplit(stored, tmp_path)})
    assert worse.promotion == "kept", worse.promotion_reason
    assert "evaluated again on this run's test split" in worse.promotion_reason
    assert _aliases(stored) == {"candidate": "2", "challenger": "3"}
    run = MlflowClient(stored.tracking.uri).get_run(worse.run_id)
    assert run.data.tags["promotion"] == "kept"
    assert run.data.tags["promotion.candidate_version"] == "2"
    new, old = (run.data.metrics[k] for k in ("promotion_new_score", "promotion_candidate_score"))
    assert new <= old


@pytest.mark.slow
def test_another_extractor_is_promoted_only_when_asked(stored) -> None:
    from pipeline.features.extract import extract_one

    other = stored.model_copy(deep=True)
    other.tracking.registered_model = "gate-extractor"
    other.train.epochs = 2
    assert _train(other).promotion == "promoted"
    other.features.image_size = 48  # another extractor key: features extracted for it
    for video in sorted(Path(other.data.videos).rglob("*.mp4")):
        extract_one(video, other)
    kept = _train(other)
    assert kept.promotion == "kept" and "the extractor changed" in kept.promotion_reason
    assert "--promote" in kept.promotion_reason
    forced = _train(other, promote=True)
    assert forced.promotion == "promoted" and "--promote" in forced.promotion_reason


def test_frame_models_are_compared_on_what_labelling_gives() -> None:
    from pipeline.training.promotion import has_smoothed, promotion_score
    from pipeline.training.task import FRAME

    metrics = {"frame_accuracy": 0.9, "f1_50": 0.5, "edit": 0.4,
               "smoothed_frame_accuracy": 0.92, "smoothed_f1_50": 0.8}  # fmt: skip
    assert has_smoothed(metrics) and not has_smoothed({"f1_50": 0.5})
    assert promotion_score(FRAME, metrics, smoothed=True) == pytest.approx(0.5 * (0.92 + 0.8))
    assert promotion_score(FRAME, metrics, smoothed=False) == pytest.approx(0.5 * (0.9 + 0.5))
