"""pipeline/training/augment.py: speed perturbation of a padded batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import TrainConfig
from pipeline.data.datasets import IGNORE_INDEX, Sample, collate
from pipeline.training.augment import augment, perturb_speed


def _batch(lengths=(7, 4, 10), dim=6, frame=True):
    """Feature value = the step's index + 1 in every channel; frame target = index % 3."""
    samples = [
        Sample(
            f"v{i}",
            np.repeat(np.arange(1, n + 1, dtype=np.float32)[:, None], dim, axis=1),
            np.arange(n) % 3 if frame else i % 3,
        )
        for i, n in enumerate(lengths)
    ]
    return collate(samples)


@pytest.mark.parametrize("frame", [True, False])
def test_speed_perturbation_resamples_features_and_targets_together(frame: bool) -> None:
    torch.manual_seed(1)
    batch = _batch(frame=frame)
    for _ in range(20):
        out = perturb_speed(batch, 0.3)
        for row, (old, new) in enumerate(zip(batch.lengths, out.lengths, strict=True)):
            assert int(old * 0.7) <= new <= int(old * 1.3) + 1
            steps = out.x[row, :new, 0]  # the old step index + 1 each new step copies
            assert (steps >= 1).all() and (steps <= old).all()
            assert (steps[1:] - steps[:-1] >= 0).all()  # order kept, steps repeated or skipped
            if frame:
                assert torch.equal(out.y[row, :new], (steps.long() - 1) % 3)
                assert (out.y[row, new:] == IGNORE_INDEX).all()
            assert (out.x[row, new:] == 0).all()
            assert torch.equal(out.mask[row], torch.arange(out.x.shape[1]) < new)
        if not frame:
            assert torch.equal(out.y, batch.y)


def test_nothing_changes_when_both_are_off() -> None:
    batch = _batch()
    assert augment(batch) is batch


def test_the_config_key_defaults_off_and_refuses_one() -> None:
    assert TrainConfig().speed_perturb == 0.0
    with pytest.raises(ValueError):
        TrainConfig(speed_perturb=1.0)


def test_training_sees_the_augmented_batches_and_evaluation_does_not() -> None:
    from torch.utils.data import DataLoader

    from models.rnn import RNNConfig, build_model
    from pipeline.training.loop import evaluate, train_one_epoch
    from pipeline.training.task import FRAME

    batch = _batch(dim=4)
    seen: list[int] = []

    def stretched(b):
        out = perturb_speed(b, 0.5)
        seen.append(int(out.lengths.sum()))
        return out

    model = build_model("frame", 4, 3, RNNConfig(hidden=8, layers=1))
    loader = DataLoader([batch], batch_size=None)
    optimizer = torch.optim.AdamW(model.parameters())
    train_one_epoch(model, loader, optimizer, FRAME, torch.device("cpu"), augmentation=stretched)
    assert len(seen) == 1
    evaluate(model, loader, FRAME, 3, torch.device("cpu"))
    assert len(seen) == 1
