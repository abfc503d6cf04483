"""models/rnn.py: padding never changes a result, shapes, order-blindness, gradients, reloads."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.rnn import (
    MODELS,
    ClipClassifier,
    FrameTagger,
    RNNConfig,
    SequenceEncoder,
    build_model,
    model_config_dict,
    time_chunks,
)
from pipeline.config import ModelConfig
from tests.helpers_rnn import CELLS, LENGTHS, C, D, config, padded_batch


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's valid steps in reverse order; padded steps stay where they are."""
    out = x.clone()
    for b, length in enumerate(lengths.tolist()):
        out[b, :length] = x[b, :length].flip(0)
    return out


def test_time_chunks_cover_time_and_drop_ended_sequences():
    spans = time_chunks(torch.tensor([10, 9, 7, 7, 5, 3, 2, 1]), 4)
    assert spans == [(0, 1, 8), (1, 3, 7), (3, 7, 5), (7, 9, 2), (9, 10, 1)]
    assert time_chunks(torch.tensor([5, 5]), 8) == [(0, 5, 2)]


def test_steps_that_are_padding_everywhere_keep_the_shape():
    model = build_model("frame", D, C, config()).eval()
    x = padded_batch()
    longer = torch.cat([x, torch.randn(4, 3, D)], dim=1)  # (B, T + 3, D)
    out = model(longer, LENGTHS)
    assert out.shape == (4, 10, C)
    torch.testing.assert_close(out[:, :7], model(x, LENGTHS))


def test_reverse_within_lengths_helper_keeps_padding_in_place():
    x = torch.arange(8.0).reshape(2, 4, 1)
    out = reverse_within_lengths(x, torch.tensor([4, 2]))
    assert out[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_within_lengths(out, torch.tensor([4, 2])), x)


@pytest.mark.parametrize(
    "cell, bidirectional, pooling",
    list(itertools.product(CELLS, [False, True], ["last", "mean", "attention"])),
)
def test_clip_padding_never_changes_a_result(cell, bidirectional, pooling):
    torch.manual_seed(0)
    cfg = config(cell=cell, bidirectional=bidirectional, pooling=pooling)
    model = ClipClassifier(D, C, cfg).eval()
    x = padded_batch()
    batched = model(x, LENGTHS)  # (B, C)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model(x[b : b + 1, :length], LENGTHS[b : b + 1])  # (1, C)
        torch.testing.assert_close(batched[b], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell, bidirectional", list(itertools.product(CELLS, [False, True])))
def test_frame_padding_never_changes_a_result(cell, bidirectional):
    torch.manual_seed(0)
    model = FrameTagger(D, C, config(cell=cell, bidirectional=bidirectional)).eval()
    x = padded_batch()
    batched = model(x, LENGTHS)  # (B, T, C)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model(x[b : b + 1, :length], LENGTHS[b : b + 1])  # (1, L, C)
        torch.testing.assert_close(batched[b, :length], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_equals_packed_torch_rnn(cell, bidirectional):
    """Same weights as nn.GRU/LSTM/RNN(bidirectional) run packed: same states, same h_n."""
    torch.manual_seed(0)
    cfg = config(cell=cell, bidirectional=bidirectional, input_norm=False)
    encoder = SequenceEncoder(D, cfg).eval()
    reference = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](
        D, cfg.hidden, cfg.layers, batch_first=True, bidirectional=bidirectional
    )
    with torch.no_grad():
        for index, layer in enumerate(encoder.layers):
            directions = [(layer.fwd, "")] + ([(layer.bwd, "_reverse")] if bidirectional else [])
            for rnn, suffix in directions:
                for name, param in rnn.named_parameters():  # weight_ih_l0 -> weight_ih_l1_reverse
                    param.copy_(getattr(reference, name.replace("l0", f"l{index}") + suffix))
    x = padded_batch()
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    out, h_n = reference(packed)
    h_n = h_n[0] if cell == "lstm" else h_n  # (layers * dirs, B, H)
    expected_steps, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, F)
    expected_final = torch.cat(list(h_n[-2:] if bidirectional else h_n[-1:]), dim=-1)
    encoded = encoder(x, LENGTHS)
    torch.testing.assert_close(encoded.steps, expected_steps, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(encoded.final, expected_final, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("task, shape", [("clip", (4, C)), ("frame", (4, 7, C))])
@pytest.mark.parametrize(
    "fields",
    [{}, {"bidirectional": False, "layers": 1}, {"projection": 3, "input_norm": False}],
)
def test_output_shapes(task, shape, fields):
    model = build_model(task, D, C, config(**fields))
    assert model(padded_batch(), LENGTHS).shape == shape


def test_none_cell_is_order_blind():
    torch.manual_seed(0)
    model = ClipClassifier(D, C, config(cell="none", pooling="mean")).eval()
    x = padded_batch()
    reversed_x = reverse_within_lengths(x, LENGTHS)
    torch.testing.assert_close(model(reversed_x, LENGTHS), model(x, LENGTHS))
    recurrent = ClipClassifier(D, C, config(cell="gru", pooling="mean")).eval()
    assert not torch.allclose(recurrent(reversed_x, LENGTHS), recurrent(x, LENGTHS))


@pytest.mark.parametrize("task", ["clip", "frame"])
@pytest.mark.parametrize("cell", CELLS)
def test_no_gradient_from_padded_steps(task, cell):
    """Padded steps get zero gradient, even with NaN there, and weights' gradients equal the
    sum over each sequence alone."""
    torch.manual_seed(0)
    model = build_model(task, D, C, config(cell=cell, pooling="attention"))
    x = padded_batch()
    x[torch.arange(x.shape[1])[None, :] >= LENGTHS[:, None]] = float("nan")
    x.requires_grad_(True)

    def loss_of(logits: torch.Tensor, length: int) -> torch.Tensor:
        return logits.sum() if task == "clip" else logits[:length].sum()

    logits = model(x, LENGTHS)
    sum(loss_of(logits[b], n) for b, n in enumerate(LENGTHS.tolist())).backward()
    padded = torch.arange(x.shape[1])[None, :] >= LENGTHS[:, None]
    assert torch.all(x.grad[padded] == 0)
    batched = {name: p.grad.clone() for name, p in model.named_parameters()}
    assert all(torch.isfinite(g).all() for g in batched.values())

    model.zero_grad()
    for b, length in enumerate(LENGTHS.tolist()):
        alone = model(x[b : b + 1, :length].detach(), LENGTHS[b : b + 1])
        loss_of(alone[0], length).backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, batched[name], atol=1e-4, rtol=1e-4)


def test_deterministic_under_a_seed():
    def run() -> torch.Tensor:
        torch.manual_seed(123)
        model = build_model("clip", D, C, config(dropout=0.5)).train()  # dropout draws too
        return model(padded_batch(), LENGTHS)

    assert torch.equal(run(), run())


def test_rebuild_from_json_and_safetensors(tmp_path):
    model = build_model("frame", D, C, config(cell="lstm", projection=3)).eval()
    (tmp_path / "model.json").write_text(json.dumps(model_config_dict(model)))
    save_file(model.state_dict(), tmp_path / "model.safetensors")

    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["task"] == "frame" and spec["cfg"]["cell"] == "lstm"
    rebuilt = build_model(**spec).eval()
    rebuilt.load_state_dict(load_file(tmp_path / "model.safetensors"))
    x = padded_batch()
    assert torch.equal(rebuilt(x, LENGTHS), model(x, LENGTHS))


def test_bad_inputs_are_rejected():
    model = build_model("clip", D, C, config())
    with pytest.raises(ValueError, match="lengths"):
        model(padded_batch(), torch.tensor([8, 3, 5, 1]))  # longer than T
    with pytest.raises(ValueError, match="lengths"):
        model(padded_batch(), torch.tensor([7, 0, 5, 1]))
    with pytest.raises(ValueError, match="task"):
        build_model("video", D, C)


# A model_config.json as written before models had their own config (ModelConfig.model_dump).
OLD_FORMAT = {
    "task": "clip",
    "input_dim": D,
    "num_classes": C,
    "cfg": {
        "cell": "lstm", "hidden": 5, "layers": 2, "bidirectional": True, "dropout": 0.0,
        "pooling": "attention", "input_norm": False, "projection": 3,
    },
}  # fmt: skip


def test_a_saved_config_in_the_old_format_rebuilds_the_same_model():
    torch.manual_seed(0)
    fields = {"cell": "lstm", "pooling": "attention", "input_norm": False, "projection": 3}
    model = build_model("clip", D, C, config(**fields)).eval()
    saved = model_config_dict(model)
    # The format only gained keys (refinement stages, tcn), each absent key rebuilding the model
    # saved before it existed.
    assert {**saved, "cfg": {k: saved["cfg"][k] for k in OLD_FORMAT["cfg"]}} == OLD_FORMAT
    assert set(saved["cfg"]) - set(OLD_FORMAT["cfg"]) == {
        "stages", "stage_hidden", "stage_residual", "tcn_layers", "tcn_channels"
    }  # fmt: skip
    rebuilt = build_model(**json.loads(json.dumps(OLD_FORMAT))).eval()
    assert isinstance(rebuilt, ClipClassifier) and rebuilt.cfg == model.cfg
    rebuilt.load_state_dict(model.state_dict())
    x = padded_batch()
    assert torch.equal(rebuilt(x, LENGTHS), model(x, LENGTHS))


def test_rnn_config_has_the_app_config_defaults_and_builds_from_it():
    assert dataclasses.asdict(RNNConfig()) == ModelConfig().model_dump(mode="json")
    app = ModelConfig(cell="rnn", hidden=7, pooling="mean", projection=4)
    assert RNNConfig.of(app) == RNNConfig(**app.model_dump()) == RNNConfig.of(app.model_dump())
    assert build_model("frame", D, C, app).cfg == RNNConfig.of(app)


@pytest.mark.parametrize(
    "fields, message",
    [({"cell": "transformer"}, "cell"), ({"pooling": "max"}, "pooling"),
     ({"hidden": 0}, "positive"), ({"dropout": 1.0}, "dropout")],
)  # fmt: skip
def test_rnn_config_rejects_bad_values(fields, message):
    with pytest.raises(ValueError, match=message):
        RNNConfig(**fields)


@pytest.mark.parametrize("task, model", [("clip", ClipClassifier), ("frame", FrameTagger)])
def test_models_are_keyed_by_task_name(task, model):
    assert MODELS[task] is model and model.task == task
    assert isinstance(build_model(task, D, C, config()), model)


@pytest.mark.parametrize("cell", CELLS)
def test_stepping_chunk_by_chunk_equals_the_whole_sequence(cell):
    torch.manual_seed(0)
    model = build_model("frame", D, C, config(cell=cell, bidirectional=False)).eval()
    x = torch.randn(1, 11, D)
    with torch.no_grad():
        whole = model(x, torch.tensor([11]))  # (1, 11, C)
        state, parts = None, []
        for start, stop in [(0, 1), (1, 4), (4, 5), (5, 11)]:  # chunks of 1, 3, 1, 6 steps
            logits, state = model.step(x[:, start:stop], state)
            parts.append(logits)
    assert model.why_not_causal() is None
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=1e-5, atol=1e-5)


def test_a_bidirectional_tagger_says_why_it_cannot_be_stepped():
    model = build_model("frame", D, C, config(cell="lstm", bidirectional=True)).eval()
    assert "lstm is bidirectional" in model.why_not_causal()
    with pytest.raises(ValueError, match="reads the future"):
        model.step(torch.randn(1, 2, D), None)
