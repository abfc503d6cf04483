"""What the models/ test modules share: a small padded batch and RNN configs."""

from __future__ import annotations

import torch

from models.rnn import (
    RNNConfig,
)

D, C = 6, 4
LENGTHS = torch.tensor([7, 3, 5, 1])
CELLS = ["rnn", "gru", "lstm", "none"]


def config(**fields) -> RNNConfig:
    fields = {"hidden": 5, "layers": 2, "dropout": 0.0, **fields}
    return RNNConfig(**fields)


def padded_batch(lengths: torch.Tensor = LENGTHS, dim: int = D, seed: int = 0) -> torch.Tensor:
    """Random features with large junk (not zeros) on padded steps: it must not matter."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), int(lengths.max()), dim, generator=generator)
    padded = torch.arange(x.shape[1])[None, :] >= lengths[:, None]  # (B, T)
    x[padded] = 1e3 * torch.randn(int(padded.sum()), dim, generator=generator)
    return x
