"""Training-time augmentation of a padded feature batch (frame and clip models alike).

``train.speed_perturb`` (speed perturbation): each video is resampled in time by a factor
drawn uniformly from ``[1 - s, 1 + s]`` (nearest step, features and targets alike), so segment
lengths and transition timing vary between epochs. It acts on valid steps only (padding stays
zero / ``IGNORE_INDEX``, lengths are exact) and runs only in training
(:func:`pipeline.training.loop.train_one_epoch`), never in evaluation.

Kept because it helped on ``benchmarks/quality.py``; channel dropout of the input features,
tried the same way, did not (README, "Quality on real footage"), so it is not here.
"""

from __future__ import annotations

import torch

from pipeline.data.datasets import IGNORE_INDEX, Batch


def augment(batch: Batch, speed_perturb: float = 0.0) -> Batch:
    """``batch`` with the configured augmentation applied (itself when it is off)."""
    return perturb_speed(batch, speed_perturb) if speed_perturb > 0 else batch


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
