"""models/gru_kernel.py: the packed GRU scan equals packed nn.GRU in values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.gru_kernel import GRUScan, packing, run_grus, unpack
from models.rnn import (
    RecurrentLayer,
    SequenceEncoder,
)
from tests.helpers_rnn import LENGTHS, D, config, padded_batch


def test_packing_orders_rows_step_by_step_longest_first():
    pack = packing(torch.tensor([2, 3, 1]), 4)  # padded to 4 steps
    assert pack.active == [3, 2, 1] and pack.starts == [0, 3, 5]
    assert pack.rows.tolist() == [4, 0, 8, 5, 1, 6]  # b * 4 + t: (1,0) (0,0) (2,0) (1,1) ...
    assert pack.reverse.tolist() == [5, 4, 2, 3, 1, 0]  # (b, t) <-> (b, length - 1 - t)
    assert pack.previous.tolist() == [0, 0, 0, 1, 2, 4]  # 1 + row of (b, t - 1); 0: none
    x = torch.arange(6.0)[:, None]
    assert unpack(x, pack.rows, 3, 4)[..., 0].tolist() == [
        [1, 4, 0, 0],
        [0, 3, 5, 0],
        [2, 0, 0, 0],
    ]


def test_gru_kernel_gradcheck():
    """Float64 finite differences through both directions, with sequences ending mid-batch."""
    torch.manual_seed(0)
    pack = packing(torch.tensor([4, 2, 4, 1]), 4)
    H = 3
    xp = torch.randn(2, len(pack.rows), 3 * H, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(2, 3 * H, H, dtype=torch.float64, requires_grad=True)
    b_hh = torch.randn(2, 3 * H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: GRUScan.apply(*a, pack), (xp, w_hh, b_hh))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_kernel_values_and_gradients_equal_packed_nn_gru(bidirectional):
    """Every output and every gradient (input, each weight and bias) as packed ``nn.GRU``."""
    torch.manual_seed(0)
    cfg = config(bidirectional=bidirectional, input_norm=False)
    encoder = SequenceEncoder(D, cfg).double()
    reference = nn.GRU(
        D, cfg.hidden, cfg.layers, batch_first=True, bidirectional=bidirectional
    ).double()
    pairs = []  # (encoder parameter, the same parameter in reference)
    with torch.no_grad():
        for index, layer in enumerate(encoder.layers):
            directions = [(layer.fwd, "")] + ([(layer.bwd, "_reverse")] if bidirectional else [])
            for rnn, suffix in directions:
                for name, param in rnn.named_parameters():
                    twin = getattr(reference, name.replace("l0", f"l{index}") + suffix)
                    param.copy_(twin)
                    pairs.append((param, twin))
    x = padded_batch().double().requires_grad_(True)
    weights = torch.randn(4, 7, encoder.output_dim, dtype=torch.float64)  # a loss on all steps
    steps = encoder(x, LENGTHS).steps
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True)
    torch.testing.assert_close(steps, expected)
    ours = torch.autograd.grad((steps * weights).sum(), [x, *(p for p, _ in pairs)])
    theirs = torch.autograd.grad((expected * weights).sum(), [x, *(t for _, t in pairs)])
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want)


def test_gru_kernel_equals_the_padded_gru_path():
    """GRUs off the CPU run as ``nn.GRU`` over padded spans: the same values and gradients."""
    torch.manual_seed(0)
    layer = RecurrentLayer("gru", D, 5, bidirectional=False).double()
    pack = packing(LENGTHS, 7)
    rows = torch.randn(len(pack.rows), D, dtype=torch.float64, requires_grad=True)
    results = []
    for out in (run_grus([layer.fwd], [rows], pack)[0], layer.run_padded(layer.fwd, rows, pack)):
        results.append((out, *torch.autograd.grad(out.square().sum(), [rows, *layer.parameters()])))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)
