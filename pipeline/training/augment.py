"""Training-time augmentations of a padded feature batch (frame and clip models alike).

- ``train.feature_dropout`` (channel dropout): each feature channel of a video is zeroed for
  the whole video with this probability, the rest scaled by ``1 / (1 - p)``. A model cannot
  lean on a few channels that happen to separate the training videos (what MS-TCN++ and
  ASFormer do with ``Dropout2d`` on their input features).
- ``train.speed_perturb`` (speed perturbation): each video is resampled in time by a factor
  drawn uniformly from ``[1 - s, 1 + s]`` (nearest step, features and targets alike), so
  segment lengths and transition timing vary between epochs.

Both act on valid steps only; padding stays zero / ``IGNORE_INDEX``, lengths are exact. They
run only in training (:func:`pipeline.training.loop.train_one_epoch`), never in evaluation.
"""

from __future__ import annotations

import torch

from pipeline.data.datasets import IGNORE_INDEX, Batch


def augment(batch: Batch, feature_dropout: float = 0.0, speed_perturb: float = 0.0) -> Batch:
    """``batch`` with the configured augmentations applied (itself when both are 0)."""
    if speed_perturb > 0:
        batch = perturb_speed(batch, speed_perturb)
    if feature_dropout > 0:
        batch = drop_channels(batch, feature_dropout)
    return batch


def drop_channels(batch: Batch, p: float) -> Batch:
    """Channel dropout: one keep/drop draw per (video, channel), shared by all its steps."""
    if not 0 <= p < 1:
        raise ValueError(f"feature_dropout must lie in [0, 1), got {p}")
    B, _, D = batch.x.shape
    keep = torch.rand(B, 1, D, device=batch.x.device) >= p  # (B, 1, D)
    x = batch.x * keep.to(batch.x.dtype) / (1.0 - p)  # (B, T, D); padding stays zero
    return batch._replace(x=x)


def perturb_speed(batch: Batch, s: float) -> Batch:
    """Every video resampled in time by a factor in ``[1 - s, 1 + s]`` (>1: slower, longer).

    Step ``j`` of the new video is step ``floor(j / factor)`` of the old one, so every new step
    copies one real step with its own target; at least one step is kept."""
    if not 0 <= s < 1:
        raise ValueError(f"speed_perturb must lie in [0, 1), got {s}")
    factors = 1.0 + (torch.rand(len(batch.lengths)) * 2.0 - 1.0) * s  # (B,)
    lengths = torch.clamp((batch.lengths.cpu().double() * factors).floor().long(), min=1)
    steps = int(lengths.max())
    picks = []
    for row in range(len(lengths)):
        new = torch.arange(steps, dtype=torch.float64)
        old = (new / factors[row]).floor().long()
        picks.append(old.clamp(max=int(batch.lengths[row]) - 1))
    index = torch.stack(picks).to(batch.x.device)  # (B, T')
    mask = torch.arange(steps, device=batch.x.device)[None, :] < lengths.to(batch.x.device)[:, None]
    x = torch.gather(batch.x, 1, index[..., None].expand(-1, -1, batch.x.shape[-1]))
    x = x.masked_fill(~mask[..., None], 0.0)  # (B, T', D)
    y = batch.y
    if y.dim() == 2:  # frame targets follow their steps; clip targets stay
        y = torch.gather(y, 1, index).masked_fill(~mask, IGNORE_INDEX)  # (B, T')
    return Batch(x, lengths.to(batch.lengths.device), mask, y, batch.videos)
