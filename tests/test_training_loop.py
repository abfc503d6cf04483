"""train_one_epoch / evaluate / fit on synthetic feature sequences (no video needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from models.rnn import RNNConfig, build_model, model_config_dict
from pipeline.config import TrainConfig
from pipeline.data.datasets import BucketBatchSampler, Sample, SequenceDataset, collate
from pipeline.training.loop import (
    FitSpec,
    checkpoint_info,
    evaluate,
    fit,
    load_checkpoint,
)
from pipeline.training.task import CLIP, FRAME

DIM = 12
# Mixed-sign directions: LayerNorm over the feature axis would erase a signal equal on every dim.
DIRECTION = np.random.default_rng(7).normal(size=(1, DIM))
OFFSET = np.random.default_rng(8).normal(size=(1, DIM))
RUN_CONFIG = {"data.task": "clip", "train.lr": 0.01, "data.extensions": [".mp4"], "x": None}
# What save_checkpoint wrote before checkpoints described themselves (commit 2b2922b).
OLD_CHECKPOINT_KEYS = {
    "model", "optimizer", "rng", "cuda_rng", "epoch", "best_epoch", "best_score", "best_loss",
    "best_model", "history", "stopped",
}  # fmt: skip


def _ordered_samples(count: int, seed: int) -> list[Sample]:
    """Class 0 ramps up, class 1 ramps down: the same values in opposite order."""
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(count):
        steps = int(rng.integers(8, 20))
        ramp = OFFSET + np.linspace(-1, 1, steps)[:, None] * DIRECTION
        label = index % 2
        feats = (ramp if label == 0 else ramp[::-1]) + rng.normal(0, 0.1, (steps, DIM))
        samples.append(Sample(f"v{index}", feats.astype(np.float32), label))
    return samples


def _loader(samples, shuffle: bool) -> DataLoader:
    dataset = SequenceDataset(samples)
    sampler = BucketBatchSampler(dataset.lengths, 8, shuffle=shuffle, seed=0)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


def _fit(
    epochs: int,
    checkpoint: Path | None = None,
    resume: bool = False,
    cell: str = "gru",
    on_epoch=None,
):
    torch.manual_seed(0)
    pooling = "mean" if cell == "none" else "last"  # the order-blind baseline pools by mean
    model = CLIP.build_model(DIM, 2, RNNConfig(cell=cell, hidden=16, layers=1, pooling=pooling))
    cfg = TrainConfig(epochs=epochs, lr=0.01, patience=0, batch_size=8)
    result = fit(
        FitSpec(
            model, CLIP, _loader(_ordered_samples(48, 0), True),
            _loader(_ordered_samples(16, 1), False), cfg, num_classes=2, checkpoint=checkpoint,
            resume=resume, on_epoch=on_epoch, run_config=RUN_CONFIG,
        )
    )  # fmt: skip
    return model, result


def test_fit_learns_order_and_restores_best_weights() -> None:
    model, result = _fit(12)
    assert result.best_score >= 0.9
    evaluation = evaluate(
        model, _loader(_ordered_samples(16, 1), False), CLIP, 2, torch.device("cpu")
    )
    assert abs(evaluation.metrics["accuracy"] - result.best_score) < 0.01
    assert len(result.history) == 12 and "val_accuracy" in result.history[0]


def test_order_blind_baseline_cannot_separate_reversals() -> None:
    _, result = _fit(8, cell="none")
    assert result.best_score < 0.8


def test_training_is_deterministic_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    straight, _ = _fit(6)
    again, _ = _fit(6)
    for a, b in zip(straight.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    checkpoint = tmp_path / "ckpt" / "last.pt"
    _fit(3, checkpoint=checkpoint)
    resumed, result = _fit(6, checkpoint=checkpoint, resume=True)
    assert result.epochs_run == 6 and len(result.history) == 6
    # compare final-epoch weights (not the best ones) through the checkpoint
    final_resumed = torch.load(checkpoint, weights_only=True)["model"]
    _fit(6, checkpoint=tmp_path / "straight.pt")
    final_straight = torch.load(tmp_path / "straight.pt", weights_only=True)["model"]
    for key in final_straight:
        torch.testing.assert_close(final_resumed[key], final_straight[key])


def test_resume_reports_every_epoch_and_a_failing_report_loses_no_checkpoint(tmp_path) -> None:
    checkpoint = tmp_path / "c.pt"

    def fail_at_3(epoch: int, row: dict) -> None:
        if epoch == 3:
            raise RuntimeError("tracking server went away")

    with pytest.raises(RuntimeError):
        _fit(6, checkpoint=checkpoint, on_epoch=fail_at_3)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 3  # saved before the report
    seen: list[tuple[int, dict]] = []
    _, result = _fit(
        6, checkpoint=checkpoint, resume=True, on_epoch=lambda e, r: seen.append((e, r))
    )
    # The resumed run's record (MLflow) gets epochs 1-3 from the checkpoint, then 4-6.
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [row for _, row in seen] == result.history


def _fit_never_improving(checkpoint: Path, resume: bool = False):
    torch.manual_seed(0)
    model = build_model("clip", DIM, 2, RNNConfig(hidden=8, layers=1))
    cfg = TrainConfig(epochs=50, lr=1e-12, patience=2, batch_size=8)  # never improves
    result = fit(
        FitSpec(
            model, CLIP, _loader(_ordered_samples(16, 0), True),
            _loader(_ordered_samples(8, 1), False), cfg, num_classes=2, checkpoint=checkpoint,
            resume=resume,
        )
    )  # fmt: skip
    return model, result


def test_early_stopping_stops_after_patience(tmp_path: Path) -> None:
    model, result = _fit_never_improving(tmp_path / "c.pt")
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1
    state = load_checkpoint(tmp_path / "c.pt", model)
    assert state["epoch"] == 3 and state["stopped"]


def _assert_same_result(a, b) -> None:
    model_a, result_a = a
    model_b, result_b = b
    assert result_a == result_b
    for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_resuming_an_early_stopped_run_trains_no_further(tmp_path: Path) -> None:
    checkpoint = tmp_path / "c.pt"
    first = _fit_never_improving(checkpoint)
    saved = checkpoint.read_bytes()
    for _ in range(2):  # each resume used to train one more epoch
        _assert_same_result(first, _fit_never_improving(checkpoint, resume=True))
        assert checkpoint.read_bytes() == saved


def test_resuming_a_checkpoint_without_the_stopped_flag_trains_no_further(tmp_path) -> None:
    checkpoint = tmp_path / "c.pt"
    first = _fit_never_improving(checkpoint)
    data = torch.load(checkpoint, weights_only=True)
    del data["stopped"]  # as written before the flag existed
    torch.save(data, checkpoint)
    _assert_same_result(first, _fit_never_improving(checkpoint, resume=True))


def test_resuming_a_run_that_ran_all_its_epochs_trains_no_further(tmp_path: Path) -> None:
    checkpoint = tmp_path / "c.pt"
    first = _fit(3, checkpoint=checkpoint)
    _assert_same_result(first, _fit(3, checkpoint=checkpoint, resume=True))


@pytest.mark.parametrize(
    "fields",
    [{},
     pytest.param({"stages": 3, "stage_hidden": 8}, marks=pytest.mark.slow),
     pytest.param({"cell": "tcn", "stages": 2, "tcn_layers": 3, "tcn_channels": 16},
                  marks=pytest.mark.slow)],
)  # fmt: skip
def test_frame_task_masks_padding(fields) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    samples = []
    for index in range(24):
        steps = int(rng.integers(6, 18))
        target = (np.arange(steps) >= steps // 2).astype(np.int64)  # background then class 1
        feats = OFFSET + target[:, None] * DIRECTION + rng.normal(0, 0.2, (steps, DIM))
        samples.append(Sample(f"v{index}", feats.astype(np.float32), target))
    model = FRAME.build_model(DIM, 2, RNNConfig(hidden=16, layers=1, **fields))
    cfg = TrainConfig(epochs=15, lr=0.01, patience=0, batch_size=8)
    result = fit(
        FitSpec(model, FRAME, _loader(samples[:16], True), _loader(samples[16:], False), cfg, 2)
    )
    assert result.history[-1]["val_frame_accuracy"] > 0.9
    assert result.history[-1]["val_f1_50"] > 0.8


def test_checkpoints_describe_their_model_and_run(tmp_path: Path) -> None:
    checkpoint = tmp_path / "c.pt"
    model, _ = _fit(2, checkpoint=checkpoint)
    info = checkpoint_info(checkpoint)
    assert info.epoch == 2 and info.config == RUN_CONFIG
    assert info.model_config == model_config_dict(model)
    rebuilt = build_model(**info.model_config)  # the checkpoint alone rebuilds its model
    load_checkpoint(checkpoint, rebuilt)
    for key, value in torch.load(checkpoint, weights_only=True)["model"].items():
        assert torch.equal(rebuilt.state_dict()[key], value)


def test_an_old_format_checkpoint_still_resumes_exactly(tmp_path: Path) -> None:
    checkpoint = tmp_path / "old.pt"
    _fit(3, checkpoint=checkpoint)
    data = torch.load(checkpoint, weights_only=True)
    assert set(data) - OLD_CHECKPOINT_KEYS == {"model_config", "config"}  # exactly what is new
    torch.save({key: data[key] for key in OLD_CHECKPOINT_KEYS}, checkpoint)  # the old format
    info = checkpoint_info(checkpoint)
    assert info.model_config is None and info.config is None and info.epoch == 3

    _, result = _fit(6, checkpoint=checkpoint, resume=True)
    assert result.epochs_run == 6 and len(result.history) == 6
    resumed = torch.load(checkpoint, weights_only=True)
    assert resumed["config"] == RUN_CONFIG  # written in the new format from then on
    _fit(6, checkpoint=tmp_path / "straight.pt")
    straight = torch.load(tmp_path / "straight.pt", weights_only=True)
    assert resumed["history"] == straight["history"]
    for key in straight["model"]:
        torch.testing.assert_close(resumed["model"][key], straight["model"][key])


def test_without_validation_every_epoch_runs_and_the_last_is_kept(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("clip", DIM, 2, RNNConfig(hidden=8, layers=1))
    # lr 1e-12 never improves anything: with validation this would stop after 2 epochs.
    cfg = TrainConfig(epochs=5, lr=1e-12, patience=2, batch_size=8)
    seen: list[int] = []
    result = fit(
        FitSpec(
            model, CLIP, _loader(_ordered_samples(16, 0), True), None, cfg, num_classes=2,
            checkpoint=tmp_path / "c.pt", on_epoch=lambda epoch, row: seen.append(epoch),
        )
    )  # fmt: skip
    assert seen == [1, 2, 3, 4, 5] and result.epochs_run == 5 and result.best_epoch == 5
    assert not result.stopped_early and not result.early_stopping
    assert all(set(row) == {"train_loss"} for row in result.history)
    data = torch.load(tmp_path / "c.pt", weights_only=True)
    assert data["best_epoch"] == 5 and not data["stopped"]
    for name, value in data["model"].items():  # the kept weights are the last epoch's
        assert torch.equal(data["best_model"][name], value)
        assert torch.equal(model.state_dict()[name], value)


def test_evaluate_and_training_add_the_smoothing_loss_for_frame_models() -> None:
    from pipeline.training.loop import train_one_epoch
    from pipeline.training.task import smoothing_loss

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    samples = [
        Sample(f"v{i}", rng.normal(size=(n, DIM)).astype(np.float32), np.zeros(n, np.int64))
        for i, n in enumerate((5, 9, 7))
    ]
    model = FRAME.build_model(DIM, 3, RNNConfig(hidden=8, layers=1, dropout=0.0))
    loader = _loader(samples, False)  # one batch of 3
    cpu = torch.device("cpu")
    plain = evaluate(model, loader, FRAME, 3, cpu).loss
    smoothed = evaluate(model, loader, FRAME, 3, cpu, smooth_weight=0.5).loss
    batch = next(iter(loader))
    with torch.no_grad():
        smooth = float(smoothing_loss(model(batch.x, batch.lengths), batch.mask))
    assert smooth > 0 and smoothed == pytest.approx(plain + 0.5 * smooth, rel=1e-5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the loss of these weights
    train_loss = train_one_epoch(model, loader, optimizer, FRAME, cpu, smooth_weight=0.5)
    assert train_loss == pytest.approx(smoothed, rel=1e-5)


def test_every_stage_is_trained_and_the_last_predicts() -> None:
    from pipeline.training.loop import stage_logits, stages_loss, train_one_epoch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    samples = [
        Sample(f"v{i}", rng.normal(size=(n, DIM)).astype(np.float32), rng.integers(0, 3, n))
        for i, n in enumerate((5, 9, 7))
    ]
    model = FRAME.build_model(DIM, 3, RNNConfig(hidden=8, layers=1, dropout=0.0, stages=3))
    with torch.no_grad():  # as after some training: residual stages start as exact copies
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    loader = _loader(samples, False)  # one batch of 3
    batch, cpu = next(iter(loader)), torch.device("cpu")
    with torch.no_grad():
        stages = stage_logits(model, batch.x, batch.lengths)
        per_stage = [float(FRAME.loss(s, batch.y, None, 0.5)) for s in stages]
        loss = float(stages_loss(FRAME, stages, batch.y, None, 0.5))
    assert len(set(per_stage)) == 3 and loss == pytest.approx(np.mean(per_stage), rel=1e-6)
    result = evaluate(model, loader, FRAME, 3, cpu, smooth_weight=0.5)
    assert result.loss == pytest.approx(loss, rel=1e-5)
    last = stages[-1].softmax(-1)
    for i, length in enumerate(batch.lengths.tolist()):
        video = result.videos.index(batch.videos[i])
        np.testing.assert_allclose(result.scores[video], last[i, :length].numpy(), rtol=1e-5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the loss of these weights
    assert train_one_epoch(model, loader, optimizer, FRAME, cpu, smooth_weight=0.5) == (
        pytest.approx(loss, rel=1e-5)
    )
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # A module without stages is one stage.
    plain = torch.nn.Linear(DIM, 3)
    assert len(stage_logits(lambda x, lengths: plain(x), batch.x, batch.lengths)) == 1
