"""MS-TCN: a multi-stage dilated residual temporal convolution network (the ``tcn`` cell).

Written from Farha & Gall, "MS-TCN: Multi-Stage Temporal Convolutional Network for Action
Segmentation" (CVPR 2019), section 3: a stage is a 1x1 convolution to ``tcn_channels`` feature
maps, ``tcn_layers`` dilated residual layers (layer ``i``: a kernel-3 convolution with dilation
``2**i``, ReLU, a 1x1 convolution, dropout, a residual connection) and a 1x1 convolution to the
class logits. Stage 1 reads the features; each later stage reads the softmax of the stage
before. Every stage is trained (:meth:`TemporalConvNet.stage_logits`); the last predicts.
With ``bidirectional: false`` the convolutions are causal (padded on the left only: a step
reads itself and earlier steps), so the model can label a live stream step by step.

Exact under padding: padded steps are set to zero on the input (``where``, so NaN there goes
nowhere) and multiplied by the mask after the input convolution, after every residual layer
(as MS-TCN does) and on every stage's output. A convolution then reads zeros past a sequence's
end, exactly what its own zero padding gives a sequence alone, so the valid steps' outputs and
every gradient are those of the sequence alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.rnn import RNNConfig, check_lengths, length_mask


class DilatedResidualLayer(nn.Module):
    """``x + dropout(conv1x1(relu(dilated_conv(x))))``, masked; ``(B, F, T)`` -> same."""

    def __init__(self, channels: int, dilation: int, dropout: float, causal: bool) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        # Kernel 3 spans 2 * dilation steps: all before the step (causal) or half each side.
        self.padding = (2 * dilation, 0) if causal else (dilation, dilation)
        self.center = 2 if causal else 1  # the tap that reads the step itself

    def dilated(self, x: torch.Tensor) -> torch.Tensor:
        """The dilated convolution over ``x`` zero-padded on both sides. When the dilation
        reaches the length, the other taps read only that zero padding: the step's own tap
        alone gives the same values and gradients without convolving the padding."""
        conv = self.conv_dilated
        if conv.dilation[0] >= x.shape[-1]:
            return F.conv1d(x, conv.weight[:, :, self.center : self.center + 1], conv.bias)
        return conv(F.pad(x, self.padding))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.dilated(x))  # (B, F, T)
        out = self.dropout(self.conv_1x1(out))  # (B, F, T)
        return (x + out) * mask  # zero on padded steps again


class TCNStage(nn.Module):
    """1x1 conv in -> ``layers`` dilated residual layers -> 1x1 conv out to class logits."""

    def __init__(self, input_dim: int, num_classes: int, cfg: RNNConfig, causal: bool) -> None:
        super().__init__()
        channels = cfg.tcn_channels
        self.conv_in = nn.Conv1d(input_dim, channels, 1)
        self.layers = nn.ModuleList(
            DilatedResidualLayer(channels, 2**i, cfg.dropout, causal) for i in range(cfg.tcn_layers)
        )
        self.conv_out = nn.Conv1d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.conv_in(x) * mask  # (B, F, T); its bias must not leak from padded steps
        for layer in self.layers:
            out = layer(out, mask)
        return self.conv_out(out) * mask  # (B, C, T)


class TemporalConvNet(nn.Module):
    """The ``tcn`` frame model: optional input LayerNorm and projection (per step, as the RNN
    models have), then ``stages`` :class:`TCNStage` s. Logits are zero on padded steps."""

    task = "frame"

    def __init__(self, input_dim: int, num_classes: int, cfg: RNNConfig) -> None:
        super().__init__()
        if cfg.cell != "tcn":
            raise ValueError(f"TemporalConvNet is the tcn cell, got cell {cfg.cell!r}")
        self.input_dim, self.num_classes, self.cfg = input_dim, num_classes, cfg
        self.norm = nn.LayerNorm(input_dim) if cfg.input_norm else nn.Identity()
        self.proj = nn.Linear(input_dim, cfg.projection) if cfg.projection else nn.Identity()
        width = cfg.projection or input_dim
        self.stages = nn.ModuleList(
            TCNStage(width if index == 0 else num_classes, num_classes, cfg, self.causal)
            for index in range(cfg.stages)
        )

    @property
    def causal(self) -> bool:
        """Convolutions padded on the left only: a step's output reads no later step."""
        return not self.cfg.bidirectional

    def stage_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """``stages`` x ``(B, T, C)``, stage 1 first; zero on padded steps."""
        lengths = check_lengths(x, lengths)
        valid = length_mask(lengths, x.shape[1])[..., None]  # (B, T, 1)
        # Zeroed before the norm: NaN on padding would reach gradients through it otherwise.
        x = torch.where(valid, x, 0.0)
        x = self.proj(self.norm(x)) * valid  # (B, T, D')
        mask = valid.transpose(1, 2).to(x.dtype)  # (B, 1, T)
        h = x.transpose(1, 2)  # (B, D', T)
        outputs = []
        for index, stage in enumerate(self.stages):
            if index > 0:
                h = outputs[-1].softmax(1) * mask  # (B, C, T) the previous stage's probabilities
            outputs.append(stage(h, mask))  # (B, C, T)
        return [out.transpose(1, 2) for out in outputs]  # each (B, T, C)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.stage_logits(x, lengths)[-1]  # (B, T, C)
