"""pipeline/training/job.py: the training job's steps (prepare, build, fit or restore,
evaluate and log, register) and what one run leaves in MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import tiny_config


@pytest.mark.slow
def test_run_holds_params_tags_metrics_and_artifacts(clip_run) -> None:
    from mlflow import MlflowClient

    cfg, output = clip_run
    client = MlflowClient(cfg.tracking.uri)
    run_id = output.split("MLflow run:")[1].split()[0]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.cell"] == "gru" and run.data.params["train.lr"] == "0.003"
    for tag in ("task", "extractor_key", "dataset_fingerprint", "git_commit"):
        assert tag in run.data.tags
    history = client.get_metric_history(run_id, "val_accuracy")
    assert len(history) >= 2 and all(0 <= m.value <= 1 for m in history)
    names = {a.path for a in client.list_artifacts(run_id)}
    for artifact in ("config.yaml", "classes.json", "test_confusion_matrix.png"):
        assert artifact in names, names
    assert "test_per_class_report.txt" in names


@pytest.mark.slow
def test_the_runs_checkpoint_describes_its_model_and_config(clip_run) -> None:
    from models.rnn import build_model
    from pipeline.training.job import require_test_checkpoint
    from pipeline.training.loop import checkpoint_info

    cfg, _ = clip_run
    checkpoint = require_test_checkpoint(cfg)  # this config's checkpoint
    info = checkpoint_info(checkpoint)
    assert info.config == cfg.flat()
    assert info.model_config["task"] == "clip" and info.model_config["cfg"]["hidden"] == 48
    build_model(**info.model_config).load_state_dict(
        torch.load(checkpoint, weights_only=True)["best_model"]
    )


@pytest.mark.slow
def test_test_only_logs_metrics_but_registers_nothing(clip_run, tmp_path) -> None:
    from mlflow import MlflowClient

    cfg, _ = clip_run
    client = MlflowClient(cfg.tracking.uri)
    name = cfg.tracking.registered_model
    versions = sorted(v.version for v in client.search_model_versions(f"name='{name}'"))
    candidate = client.get_model_version_by_alias(name, "candidate").version
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    result = CliRunner().invoke(app, ["train", "-c", str(path), "--test-only"])
    assert result.exit_code == 0, result.output
    assert "test_accuracy" in result.output and "registered model" not in result.output
    assert sorted(v.version for v in client.search_model_versions(f"name='{name}'")) == versions
    assert client.get_model_version_by_alias(name, "candidate").version == candidate
    run = client.get_run(result.output.split("MLflow run:")[1].split()[0])
    assert run.info.status == "FINISHED" and "test_accuracy" in run.data.metrics
    linked = f"source_run_id = '{run.info.run_id}'"
    assert not client.search_logged_models([run.info.experiment_id], filter_string=linked)


def _one_video_per_class(root: Path, split_column: bool) -> Path:
    """Three classes of one (empty) video each: the splits fail before any video is read."""
    lines = ["video,label,split" if split_column else "video,label"]
    for label in ("cook", "wash", "stir"):
        (root / label).mkdir(parents=True)
        (root / label / "a.mp4").write_bytes(b"")
        lines.append(f"{label}/a.mp4,{label}" + (",train" if split_column else ""))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def test_an_empty_validation_split_says_how_splits_were_assigned(tmp_path) -> None:
    from pipeline.training.job import EmptySplit, prepare

    labels = _one_video_per_class(tmp_path / "videos", split_column=False)
    with pytest.raises(EmptySplit) as error:
        prepare(tiny_config(tmp_path, tmp_path / "videos", labels, "clip"))
    message = str(error.value)
    assert message.startswith("the validation split is empty"), message
    assert "vidtag extract" not in message and "without features" not in message
    for fragment in ("data.val_fraction=0.15", "3 of them with a single video", "`split`"):
        assert fragment in message, message


def test_an_empty_given_validation_split_names_the_split_column(tmp_path) -> None:
    from pipeline.training.job import EmptySplit, prepare

    labels = _one_video_per_class(tmp_path / "videos", split_column=True)
    with pytest.raises(EmptySplit) as error:
        prepare(tiny_config(tmp_path, tmp_path / "videos", labels, "clip"))
    message = str(error.value)
    assert message.startswith("the validation split is empty: the annotations' "), message
    for fragment in ("data.val_fraction=0.15 carved none out of the 3", "data.val_fraction: 0"):
        assert fragment in message, message


def _two_videos_per_class(root: Path) -> Path:
    """Two classes of two (fake) videos, one in train and one in val each."""
    lines = ["video,label,split"]
    for label in ("cook", "wash"):
        (root / label).mkdir(parents=True)
        for name, split in (("a.mp4", "train"), ("b.mp4", "val")):
            (root / label / name).write_bytes(f"not a video: {label}/{name}".encode())
            lines.append(f"{label}/{name},{label},{split}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def test_one_checkpoint_per_dataset_and_config(tmp_path) -> None:
    from pipeline.training.job import checkpoint_path

    cfg = tiny_config(tmp_path, tmp_path, None, "clip")
    other = tiny_config(tmp_path, tmp_path, None, "clip", **{"train.lr": 0.1})
    path = checkpoint_path(cfg, "f" * 8)
    assert path == checkpoint_path(cfg, "f" * 8) and path.name == "last.pt"
    assert path.parent.parent == tmp_path / "checkpoints"
    assert path.parent.name.startswith("f" * 8)
    assert checkpoint_path(other, "f" * 8) != path != checkpoint_path(cfg, "e" * 8)


def test_test_only_needs_this_configs_checkpoint(tmp_path) -> None:
    from pipeline.errors import UserError
    from pipeline.training.job import require_test_checkpoint

    labels = _two_videos_per_class(tmp_path / "videos")
    cfg = tiny_config(tmp_path, tmp_path / "videos", labels, "clip")
    with pytest.raises(UserError, match="--test-only: no checkpoint at .*last.pt; train first"):
        require_test_checkpoint(cfg)


def test_videos_without_features_are_noted_and_training_needs_some(tmp_path) -> None:
    from pipeline.features import spec_from_config
    from pipeline.features.store import FeatureStore
    from pipeline.training.job import MissingFeatures, feature_loader, prepare

    labels = _two_videos_per_class(tmp_path / "videos")
    cfg = tiny_config(tmp_path, tmp_path / "videos", labels, "clip")
    missing: list[str] = []
    load = feature_loader(FeatureStore(cfg.features.store), spec_from_config(cfg), missing)
    features, indices, times = load(tmp_path / "videos" / "cook" / "a.mp4")
    assert (features.shape[0], len(indices), len(times)) == (0, 0, 0)
    assert missing == [str(tmp_path / "videos" / "cook" / "a.mp4")]
    with pytest.raises(MissingFeatures, match=r"\(4 without features\); run `vidtag extract`"):
        prepare(cfg)


DIM = 8
STEPS = 40  # 8 s at 5 fps


def _train_and_test_frame_dataset(root: Path, cfg_of, bundles: bool = False) -> object:
    """Frame labels with a `split` column marking only train (12 videos) and test (4), as the
    standard action-segmentation splits ship them, and their features already in the store
    (synthetic: class a and class b steps lie apart), so training needs no decoding.
    ``bundles``: no `split` column; MS-TCN bundles `videos/splits/{train,test}.split1.bundle`
    say the same with the feature files' `.txt` names."""
    import numpy as np

    from pipeline.features import spec_from_config
    from pipeline.features.store import FeatureStore
    from pipeline.video.decode import VideoInfo

    videos = root / "videos"
    videos.mkdir(parents=True)
    lines = ["video,start,end,label,split"]
    for index in range(16):
        name = f"v{index:02d}.mp4"
        (videos / name).write_bytes(f"not a video {index}".encode())
        cut = 2.0 + 4.0 * (index % 4) / 3  # a until the cut, b after: strata a and b
        split = "test" if index % 4 == index // 4 else "train"  # one per cut in test
        lines += [f"{name},0,{cut:.3f},a,{split}", f"{name},{cut:.3f},8,b,{split}"]
    if bundles:
        (videos / "splits").mkdir()
        for split in ("train", "test"):
            names = [f"{line.split(',')[0][:-4]}.txt" for line in lines[1::2]
                     if line.endswith(split)]  # fmt: skip
            (videos / "splits" / f"{split}.split1.bundle").write_text("\n".join(names) + "\n")
        lines = [line.rsplit(",", 1)[0] for line in lines]
    (videos / "labels.csv").write_text("\n".join(lines) + "\n")
    cfg = cfg_of(videos, videos / "labels.csv")
    store, key = FeatureStore(cfg.features.store), spec_from_config(cfg).key()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, DIM))
    for index in range(16):
        times = np.arange(STEPS) / 5.0
        labels = (times >= 2.0 + 4.0 * (index % 4) / 3).astype(int)
        features = centres[labels] + rng.normal(0, 0.3, (STEPS, DIM))
        path = videos / f"v{index:02d}.mp4"
        info = VideoInfo(str(path), STEPS * 6, 30.0, STEPS / 5, 64, 48, 0, "h264", "opencv")
        store.put(store.video_key(path), key, features, np.arange(STEPS) * 6, times, {}, info=info)
    return cfg


def _frame_cfg(tmp_path: Path, bundles: bool = False, **sets: object):
    sets = {"train.epochs": 6, "train.patience": 2, "train.lr": 0.01, **sets}
    return _train_and_test_frame_dataset(
        tmp_path,
        lambda videos, labels: tiny_config(tmp_path, videos, labels, "frame", **sets),
        bundles,
    )


@pytest.mark.slow
def test_a_split_column_of_train_and_test_only_trains_and_tests(tmp_path, caplog) -> None:
    from mlflow import MlflowClient

    from pipeline.training.job import prepare, run_training

    cfg = _frame_cfg(tmp_path, **{"data.val_fraction": 0.25})
    prepared = prepare(cfg)
    assert [len(prepared.splits[name]) for name in ("train", "val", "test")] == [9, 3, 4]
    scored = {i.video for i in prepared.annotations.items if i.split in ("val", "test")}
    assert set(prepared.native) == scored  # their native frames, for test_smoothed_*
    assert {native.count for native in prepared.native.values()} == {STEPS * 6}
    with caplog.at_level("INFO", logger="pipeline.training.job"):
        outcome = run_training(cfg)
    assert "validation: 3 videos carved out of the training videos" in caplog.text
    assert outcome.early_stopping and outcome.test_metrics["test_frame_accuracy"] > 0.8
    run = MlflowClient(cfg.tracking.uri).get_run(outcome.run_id)
    assert run.data.tags["early_stopping"] == "on" and "val_loss" in run.data.metrics
    # label.min_segment_s auto: chosen on the validation videos, logged, stored with the model.
    assert outcome.min_segment_s_source == "validation" and "chosen on 3 validation" in caplog.text
    chosen = outcome.min_segment_s
    assert run.data.params["label.min_segment_s"] == "auto"
    assert float(run.data.params["labeling.min_segment_s"]) == chosen
    assert run.data.metrics["min_segment_s"] == chosen
    assert run.data.tags["min_segment_s_source"] == "validation"
    for name in ("frame_accuracy", "edit", "f1_10", "f1_25", "f1_50"):
        assert 0 <= run.data.metrics[f"test_smoothed_{name}"] <= 1
        assert f"val_smoothed_{name}" in run.data.metrics
    assert outcome.test_metrics["test_smoothed_f1_50"] == run.data.metrics["test_smoothed_f1_50"]
    assert _stored_options(cfg, outcome) == {"min_segment_s": chosen}

    # A number in the training config is stored as it is; the promotion gate compares the
    # two versions on what labelling gives (smoothed), each at its own merge length.
    fixed = run_training(cfg.model_copy(update={"label": cfg.label.model_copy(
        update={"min_segment_s": 0.7})}))  # fmt: skip
    assert (fixed.min_segment_s, fixed.min_segment_s_source) == (0.7, "config")
    assert _stored_options(cfg, fixed) == {"min_segment_s": 0.7}
    assert fixed.promotion_reason.startswith("smoothed score ")
    assert "(on the same test split)" in fixed.promotion_reason
    client = MlflowClient(cfg.tracking.uri)
    artifacts = {a.path for a in client.list_artifacts(fixed.run_id)}
    assert "min_segment_s_selection.json" not in artifacts
    assert "min_segment_s_selection.json" in {
        a.path for a in client.list_artifacts(run.info.run_id)
    }
    assert "val_smoothed_f1_50" not in client.get_run(fixed.run_id).data.metrics


def _stored_options(cfg, outcome) -> dict:
    import mlflow

    from pipeline.tracking.mlflow import load_model

    mlflow.set_tracking_uri(cfg.tracking.uri)
    return load_model(outcome.model_uri).options


@pytest.mark.slow
def test_val_fraction_zero_trains_every_epoch_and_keeps_the_last(tmp_path, caplog) -> None:
    from mlflow import MlflowClient

    from pipeline.training.job import run_training

    cfg = _frame_cfg(tmp_path, **{"data.val_fraction": 0, "train.lr": 1e-9})  # never improves
    with caplog.at_level("INFO", logger="pipeline.training.job"):
        outcome = run_training(cfg)
    assert "training 6 epochs without early stopping" in caplog.text
    assert not outcome.early_stopping and outcome.epochs_run == outcome.best_epoch == 6
    client = MlflowClient(cfg.tracking.uri)
    run = client.get_run(outcome.run_id)
    assert run.data.tags["early_stopping"] == "off" and "val_loss" not in run.data.metrics
    assert len(client.get_metric_history(outcome.run_id, "train_loss")) == 6
    assert "test_frame_accuracy" in run.data.metrics
    # No validation videos to choose the merge length on: the fallback, said and stored.
    assert "no validation videos to choose it on, so the fallback 0.3 s" in caplog.text
    assert outcome.min_segment_s == 0.3 and run.data.tags["min_segment_s_source"] == "fallback"
    assert "test_smoothed_f1_50" in run.data.metrics
    assert _stored_options(cfg, outcome) == {"min_segment_s": 0.3}


@pytest.mark.slow
def test_ms_tcn_split_bundles_train_and_test_and_the_run_names_the_fold(tmp_path) -> None:
    from mlflow import MlflowClient

    from pipeline.training.job import prepare, run_training

    sets = {"data.val_fraction": 0.25, "data.split_file": tmp_path / "videos" / "splits"}
    cfg = _frame_cfg(tmp_path, bundles=True, **{**sets, "data.fold": 1})
    prepared = prepare(cfg)
    assert [len(prepared.splits[name]) for name in ("train", "val", "test")] == [9, 3, 4]
    outcome = run_training(cfg)
    assert outcome.test_metrics["test_frame_accuracy"] > 0.8
    run = MlflowClient(cfg.tracking.uri).get_run(outcome.run_id)
    assert run.data.tags["split_bundles"] == "train.split1.bundle test.split1.bundle"
    assert run.data.params["data.fold"] == "1"
    assert run.data.params["data.split_file"] == str(tmp_path / "videos" / "splits")
