"""pipeline/training/augment.py: channel dropout and speed perturbation of a padded batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import TrainConfig
from pipeline.data.datasets import IGNORE_INDEX, Sample, collate
from pipeline.training.augment import augment, drop_channels, perturb_speed


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


def test_channel_dropout_drops_whole_channels_of_a_video_and_keeps_padding_zero() -> None:
    torch.manual_seed(0)
    batch = _batch(dim=64)
    out = drop_channels(batch, 0.5)
    ratio = out.x[batch.mask] / batch.x[batch.mask]  # (valid steps, D): 0 or 2
    assert set(ratio.unique().tolist()) == {0.0, 2.0}
    for row, length in enumerate(batch.lengths.tolist()):
        kept = out.x[row, :length] != 0  # (T, D): one decision per channel, every step alike
        assert (kept == kept[:1]).all()
    assert (out.x[~batch.mask] == 0).all()
    assert torch.equal(out.y, batch.y) and torch.equal(out.lengths, batch.lengths)


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


@pytest.mark.parametrize("key", ["feature_dropout", "speed_perturb"])
def test_config_keys_default_off_and_refuse_one(key: str) -> None:
    assert getattr(TrainConfig(), key) == 0.0
    with pytest.raises(ValueError):
        TrainConfig(**{key: 1.0})
