"""models/rnn.py: FrameTagger's refinement stages (``stages``): exact under padding (outputs and
gradients of every stage), each reading the previous stage's probabilities, causal when
unidirectional, residual stages starting as the identity, and one-stage models unchanged (old
saved models load)."""

from __future__ import annotations

import itertools
from dataclasses import asdict

import pytest
import torch

from models.rnn import ClipClassifier, FrameTagger, RNNConfig, build_model
from tests.helpers_rnn import CELLS, LENGTHS, C, D, config, padded_batch


def trained_heads(model: FrameTagger) -> FrameTagger:
    """Random weights in the refiners' heads, which residual stages start at zero (so the
    refiners' encoders would otherwise get no gradient and change no output)."""
    with torch.no_grad():
        for refiner in model.refiners:
            refiner.head.weight.normal_(0.0, 0.5)
            refiner.head.bias.normal_(0.0, 0.5)
    return model


@pytest.mark.parametrize("cell, bidirectional", list(itertools.product(CELLS, [False, True])))
def test_padding_never_changes_any_stage(cell, bidirectional) -> None:
    torch.manual_seed(0)
    model = FrameTagger(D, C, config(cell=cell, bidirectional=bidirectional, stages=3)).eval()
    trained_heads(model)
    x = padded_batch()
    batched = model.stage_logits(x, LENGTHS)  # 3 x (B, T, C)
    assert len(batched) == 3 and all(stage.shape == (4, 7, C) for stage in batched)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model.stage_logits(x[b : b + 1, :length], LENGTHS[b : b + 1])
        for stage_batched, stage_alone in zip(batched, alone, strict=True):
            torch.testing.assert_close(
                stage_batched[b, :length], stage_alone[0], atol=1e-5, rtol=1e-5
            )
    torch.testing.assert_close(model(x, LENGTHS), batched[-1])  # the last stage predicts


@pytest.mark.parametrize("cell, residual", [(c, True) for c in CELLS] + [("gru", False)])
def test_gradients_of_every_stage_equal_each_sequence_alone(cell, residual) -> None:
    """NaN on padded steps reaches no gradient; each weight's gradient is the sum over the
    sequences alone."""
    torch.manual_seed(0)
    model = trained_heads(FrameTagger(D, C, config(cell=cell, stages=3, stage_residual=residual)))
    x = padded_batch()
    padded = torch.arange(x.shape[1])[None, :] >= LENGTHS[:, None]
    x[padded] = float("nan")
    x.requires_grad_(True)

    def loss_of(stages: list[torch.Tensor], b: int, length: int) -> torch.Tensor:
        return sum((i + 1) * s[b, :length].pow(2).sum() for i, s in enumerate(stages))

    stages = model.stage_logits(x, LENGTHS)
    sum(loss_of(stages, b, n) for b, n in enumerate(LENGTHS.tolist())).backward()
    assert torch.all(x.grad[padded] == 0)
    batched = {name: p.grad.clone() for name, p in model.named_parameters()}
    assert all(torch.isfinite(g).all() for g in batched.values())
    assert all(batched[n].abs().sum() > 0 for n in batched if n.startswith("refiners.1."))

    model.zero_grad()
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model.stage_logits(x[b : b + 1, :length].detach(), LENGTHS[b : b + 1])
        loss_of(alone, 0, length).backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, batched[name], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("residual", [True, False])
def test_a_later_stage_reads_only_the_previous_stages_probabilities(residual) -> None:
    """It adds its correction to the previous logits (``stage_residual``) or replaces them."""
    torch.manual_seed(0)
    cfg = config(stages=2, stage_hidden=3, stage_residual=residual)
    model = trained_heads(FrameTagger(D, C, cfg)).eval()
    refiner = model.refiners[0]
    assert refiner.encoder.layers[0].fwd.input_size == C  # the classes, not the features
    assert refiner.encoder.layers[0].fwd.hidden_size == 3 and len(refiner.encoder.layers) == 1
    first, second = model.stage_logits(padded_batch(), LENGTHS)
    # The refiner over stage 1's softmax, run as a one-stage model of its own, gives stage 2.
    alone = FrameTagger(C, C, RNNConfig(hidden=3, layers=1, dropout=0.0, input_norm=False))
    alone.encoder.load_state_dict(refiner.encoder.state_dict())
    alone.head.load_state_dict(refiner.head.state_dict())
    expected = alone.eval()(first.softmax(-1), LENGTHS) + (first if residual else 0)
    valid = torch.arange(first.shape[1])[None, :] < LENGTHS[:, None]
    torch.testing.assert_close(second[valid], expected[valid])


@pytest.mark.parametrize(
    "cell, bidirectional, causal",
    [("gru", True, False), ("gru", False, True), ("lstm", False, True), ("none", True, True)],
)
def test_causal_models_never_read_a_later_step(cell, bidirectional, causal) -> None:
    torch.manual_seed(0)
    model = FrameTagger(D, C, config(cell=cell, bidirectional=bidirectional, stages=2)).eval()
    assert model.causal is causal and ClipClassifier.causal is False
    x = torch.randn(1, 9, D)
    changed = x.clone()
    changed[:, 5:] = torch.randn(1, 4, D)
    before, after = model(x, torch.tensor([9])), model(changed, torch.tensor([9]))
    assert torch.equal(before[:, :5], after[:, :5]) is causal


def test_one_stage_has_the_parameters_models_were_saved_with() -> None:
    """A model saved before stages existed (no ``stages`` key, no refiner weights) loads
    strictly, whatever today's default number of stages."""
    torch.manual_seed(0)
    model = build_model("frame", D, C, config())
    assert not model.refiners and {k.split(".")[0] for k in model.state_dict()} == {
        "encoder", "head"
    }  # fmt: skip
    old_cfg = {k: v for k, v in asdict(model.cfg).items() if k != "stages"}
    rebuilt = build_model("frame", D, C, old_cfg)
    rebuilt.load_state_dict(model.state_dict())  # strict
    assert rebuilt.cfg.stages == 1


@pytest.mark.parametrize("cell, bidirectional", [("gru", True), ("lstm", False), ("none", True)])
def test_a_fresh_multi_stage_model_predicts_as_its_first_stage(cell, bidirectional) -> None:
    """Residual stages start as the identity: adding stages never starts a model worse off,
    and every stage's loss starts at stage 1's; training moves the zero heads first."""
    torch.manual_seed(0)
    cfg = config(cell=cell, bidirectional=bidirectional, stages=4)
    model = FrameTagger(D, C, cfg).eval()
    stages = model.stage_logits(padded_batch(), LENGTHS)
    assert len(stages) == 4 and all(torch.equal(stage, stages[0]) for stage in stages[1:])
    stages[-1].pow(2).sum().backward()
    assert model.refiners[-1].head.weight.grad.abs().sum() > 0
    non_residual = FrameTagger(D, C, config(cell=cell, stages=2, stage_residual=False)).eval()
    first, second = non_residual.stage_logits(padded_batch(), LENGTHS)
    assert not torch.allclose(first, second)


def test_a_multi_stage_model_saved_before_residual_stages_rebuilds_as_saved() -> None:
    """No ``stage_residual`` key: its later stages predicted anew; its weights load strictly."""
    torch.manual_seed(0)
    model = build_model("frame", D, C, config(stages=3, stage_residual=False))
    old_cfg = {k: v for k, v in asdict(model.cfg).items() if k != "stage_residual"}
    rebuilt = build_model("frame", D, C, old_cfg).eval()
    assert rebuilt.cfg.stage_residual is False
    rebuilt.load_state_dict(model.state_dict())  # strict
    x = padded_batch()
    assert torch.equal(rebuilt(x, LENGTHS), model.eval()(x, LENGTHS))
    assert RNNConfig().stage_residual is True  # new models: residual


@pytest.mark.parametrize("fields", [{"stages": 2}, {"cell": "tcn"}])
def test_clip_models_have_one_stage(fields) -> None:
    with pytest.raises(ValueError, match="frame task"):
        build_model("clip", D, C, config(**fields))
    assert len(build_model("clip", D, C, config()).stage_logits(padded_batch(), LENGTHS)) == 1


@pytest.mark.parametrize(
    "fields", [{"stages": 0}, {"stage_hidden": 0}, {"tcn_layers": 0}, {"tcn_channels": 0}]
)
def test_sizes_must_be_positive(fields) -> None:
    with pytest.raises(ValueError, match="positive"):
        RNNConfig(**fields)
