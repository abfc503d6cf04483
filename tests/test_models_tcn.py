"""models/tcn.py: MS-TCN's structure, exactness under padding (outputs and gradients), causality,
rebuilds from JSON + safetensors."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.rnn import RNNConfig, build_model, model_config_dict
from models.tcn import DilatedResidualLayer, TemporalConvNet
from tests.helpers_rnn import LENGTHS, C, D, padded_batch


def tcn_config(**fields) -> RNNConfig:
    fields = {"cell": "tcn", "tcn_layers": 3, "tcn_channels": 5, "dropout": 0.0, **fields}
    return RNNConfig(**fields)


def test_the_structure_is_ms_tcn() -> None:
    model = build_model("frame", D, C, tcn_config(stages=3, tcn_layers=4, tcn_channels=7))
    assert isinstance(model, TemporalConvNet) and len(model.stages) == 3
    first, later = model.stages[0], model.stages[1]
    assert first.conv_in.in_channels == D and later.conv_in.in_channels == C  # probabilities
    for stage in model.stages:
        assert stage.conv_in.kernel_size == (1,) and stage.conv_in.out_channels == 7
        assert [layer.conv_dilated.dilation[0] for layer in stage.layers] == [1, 2, 4, 8]
        assert all(layer.conv_dilated.kernel_size == (3,) for layer in stage.layers)
        assert all(layer.conv_1x1.kernel_size == (1,) for layer in stage.layers)
        assert stage.conv_out.out_channels == C


@pytest.mark.parametrize(
    "bidirectional, stages, fields",
    [(b, s, {}) for b, s in itertools.product([True, False], [1, 3])]
    + [(True, 2, {"input_norm": False, "projection": 3})],
)
def test_padding_never_changes_any_stage(bidirectional, stages, fields) -> None:
    torch.manual_seed(0)
    model = TemporalConvNet(D, C, tcn_config(bidirectional=bidirectional, stages=stages, **fields))
    model.eval()
    x = padded_batch()
    batched = model.stage_logits(x, LENGTHS)  # stages x (B, T, C)
    assert len(batched) == stages
    padded = torch.arange(x.shape[1])[None, :] >= LENGTHS[:, None]  # (B, T)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model.stage_logits(x[b : b + 1, :length], LENGTHS[b : b + 1])
        for stage_batched, stage_alone in zip(batched, alone, strict=True):
            torch.testing.assert_close(stage_batched[b, :length], stage_alone[0])
    assert all(torch.all(stage[padded] == 0) for stage in batched)
    torch.testing.assert_close(model(x, LENGTHS), batched[-1])  # the last stage predicts


@pytest.mark.parametrize("bidirectional", [True, False])
def test_gradients_equal_each_sequence_alone_even_with_nan_padding(bidirectional) -> None:
    torch.manual_seed(0)
    model = TemporalConvNet(D, C, tcn_config(bidirectional=bidirectional, stages=2))
    x = padded_batch()
    padded = torch.arange(x.shape[1])[None, :] >= LENGTHS[:, None]
    x[padded] = float("nan")
    x.requires_grad_(True)

    def loss_of(stages: list[torch.Tensor], b: int, length: int) -> torch.Tensor:
        # Every stage, weighted differently so a mix-up between stages would show.
        return sum((i + 1) * s[b, :length].pow(2).sum() for i, s in enumerate(stages))

    stages = model.stage_logits(x, LENGTHS)
    sum(loss_of(stages, b, n) for b, n in enumerate(LENGTHS.tolist())).backward()
    assert torch.all(x.grad[padded] == 0) and torch.isfinite(x.grad).all()
    batched = {name: p.grad.clone() for name, p in model.named_parameters()}
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in batched.values())

    model.zero_grad()
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model.stage_logits(x[b : b + 1, :length].detach(), LENGTHS[b : b + 1])
        loss_of(alone, 0, length).backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, batched[name], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_causal_means_no_step_reads_a_later_one(bidirectional) -> None:
    torch.manual_seed(0)
    model = TemporalConvNet(D, C, tcn_config(bidirectional=bidirectional, stages=2)).eval()
    assert model.causal is (not bidirectional)
    x = torch.randn(1, 12, D)
    changed = x.clone()
    changed[:, 6:] = torch.randn(1, 6, D)  # only the future of step 5 changes
    before, after = model(x, torch.tensor([12])), model(changed, torch.tensor([12]))
    assert torch.equal(before[:, :6], after[:, :6]) is (not bidirectional)
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_the_receptive_field_doubles_with_each_layer() -> None:
    """A causal stage of L layers reads 2**(L+1) - 1 steps back: step t sees step
    t - (2**(L+1) - 2) and not the one before it."""
    torch.manual_seed(0)
    model = TemporalConvNet(D, C, tcn_config(bidirectional=False, tcn_layers=3)).eval()
    x = torch.randn(1, 20, D, requires_grad=True)
    model(x, torch.tensor([20]))[0, 19].sum().backward()
    seen = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten().tolist()
    assert seen == list(range(19 - 14, 20))


def test_dropout_acts_in_every_residual_layer_in_training_only() -> None:
    layer = DilatedResidualLayer(4, dilation=2, dropout=0.5, causal=False)
    x, mask = torch.randn(2, 4, 9), torch.ones(2, 1, 9)
    torch.manual_seed(0)
    first = layer(x, mask)
    assert not torch.equal(first, layer(x, mask))  # training: dropout draws differ
    layer.eval()
    assert torch.equal(layer(x, mask), layer(x, mask))


def test_rebuilds_from_json_and_safetensors(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("frame", D, C, tcn_config(stages=2, bidirectional=False)).eval()
    (tmp_path / "model.json").write_text(json.dumps(model_config_dict(model)))
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["cfg"]["cell"] == "tcn" and spec["cfg"]["stages"] == 2
    rebuilt = build_model(**spec).eval()
    rebuilt.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert isinstance(rebuilt, TemporalConvNet) and rebuilt.causal
    x = padded_batch()
    assert torch.equal(rebuilt(x, LENGTHS), model(x, LENGTHS))


def test_tcn_is_for_the_frame_task_only() -> None:
    with pytest.raises(ValueError, match="frame task"):
        build_model("clip", D, C, tcn_config())
    with pytest.raises(ValueError, match="tcn cell"):
        TemporalConvNet(D, C, RNNConfig(cell="gru"))


def test_bad_lengths_are_rejected() -> None:
    model = TemporalConvNet(D, C, tcn_config())
    with pytest.raises(ValueError, match="lengths"):
        model(padded_batch(), torch.tensor([8, 3, 5, 1]))


@pytest.mark.parametrize("causal", [False, True])
def test_a_dilation_past_the_length_convolves_no_padding(causal) -> None:
    """Only the step's own tap can read a valid step then: the same values and gradients as
    convolving the zero padding."""
    torch.manual_seed(0)
    layer = DilatedResidualLayer(4, dilation=8, dropout=0.0, causal=causal)
    x = torch.randn(2, 4, 8, requires_grad=True)
    padded = layer.conv_dilated(torch.nn.functional.pad(x, layer.padding))
    shortcut = layer.dilated(x)
    torch.testing.assert_close(shortcut, padded)
    (grad_padded,) = torch.autograd.grad(padded.pow(2).sum(), layer.conv_dilated.weight)
    (grad_shortcut,) = torch.autograd.grad(shortcut.pow(2).sum(), layer.conv_dilated.weight)
    torch.testing.assert_close(grad_shortcut, grad_padded)
