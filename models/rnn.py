"""Sequence models over per-frame features: an exact-with-padding RNN encoder and two heads.

``SequenceEncoder`` runs a stacked (bi)directional RNN/GRU/LSTM, or a per-step MLP (``none``,
the order-blind baseline), over a padded batch ``(B, T, D)`` with ``lengths (B,)``.
``ClipClassifier`` pools the valid steps into one label per sequence (many-to-one);
``FrameTagger`` labels every step (synced many-to-many), optionally refining its predictions
in later stages (``stages``, MS-TCN's multi-stage idea with small RNNs). ``RNNConfig`` holds
the hyper-parameters of every model here and of ``models.tcn`` (the app's ``model.*`` keys; the
training code builds it from the app's config; nothing here imports the app), and
``build_model`` / ``model_config_dict`` rebuild a model from a small JSON dict.

Every model has ``stage_logits(x, lengths)`` (one ``(B, T, C)`` or ``(B, C)`` tensor per stage,
all of them trained) and ``forward`` (the last stage's: what predicts), and says whether it is
``causal`` (a step's output reads no later step: streaming can emit it at once).

Why not ``pack_padded_sequence``: packing is exact but ~2.5x slower on CPU, and a plain padded
bidirectional RNN lets padding leak into the backward direction and the final state. Instead
the encoder gathers the valid steps into packed rows once (:func:`packing`: step by step,
longest sequences first) and every layer works on those rows, so padding is never computed
on, and NaN there never reaches a result or a gradient. Each direction is a causal RNN; the
backward one reads each sequence reversed *within its own length* (a fixed row permutation).
On CPU, GRUs run in :mod:`models.gru_kernel` (both directions stepped together, a backward
with one small GEMM per step): one training step costs about 0.75x plain padded ``nn.GRU``
and 0.4x packed on 2 CPU cores (``benchmarks/train.py``). RNN/LSTM, and GRUs on GPUs (cuDNN),
run as ``nn`` modules over the rows padded again, over a few time spans that each drop the
sequences already ended (``time_chunks``). All equal packed ``nn`` modules to float rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from itertools import pairwise
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.gru_kernel import Packing, packing, run_grus, unpack

_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
CELLS = (*_CELLS, "none", "tcn")  # tcn: models.tcn, frame task only
POOLINGS = ("last", "mean", "attention")
# Keys added after models were first saved, with the value that rebuilds a model saved before
# they existed (which may differ from today's default).
# (``stage_residual`` matters only with stages: see ``RNNConfig.of``.)
_ABSENT_FROM_OLD_CONFIGS = {"stages": 1}


@dataclass(frozen=True)
class RNNConfig:
    """The encoder and head hyper-parameters (the app's ``model.*`` config keys, same defaults)."""

    # rnn | gru | lstm | none (a per-step MLP: the order-blind baseline) | tcn (models.tcn)
    cell: str = "gru"
    hidden: int = 256
    layers: int = 2
    bidirectional: bool = True  # False: causal (tcn: left padding only)
    dropout: float = 0.2  # between layers and before the head (tcn: in every residual layer)
    pooling: str = "last"  # clip head: last | mean | attention
    input_norm: bool = True  # LayerNorm on the input features
    projection: int | None = None  # linear input projection size; None = none
    stages: int = 1  # frame models: stage 1 + (stages - 1) refinement stages
    stage_hidden: int = 64  # RNN cells: hidden size of each refinement stage's 1-layer RNN
    # RNN cells: a later stage adds a correction to the previous stage's logits, its output
    # layer zero at start (a fresh multi-stage model predicts what its first stage does);
    # False: it predicts anew from the probabilities alone (MS-TCN's way, models saved before)
    stage_residual: bool = True
    tcn_layers: int = 10  # tcn: dilated residual layers per stage (dilation 2^i)
    tcn_channels: int = 64  # tcn: feature maps of every layer

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {list(CELLS)}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {self.pooling!r}")
        sizes = (self.hidden, self.layers, self.stages, self.stage_hidden, self.tcn_layers)
        projection = self.projection if self.projection is not None else 1
        if min(*sizes, self.tcn_channels, projection) < 1:
            raise ValueError(
                f"hidden, layers, stages, stage_hidden, tcn_layers, tcn_channels and projection "
                f"must be positive: {self}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    @classmethod
    def of(cls, source: RNNConfig | Mapping[str, Any] | Any | None) -> RNNConfig:
        """From a dict of fields (a saved model's ``cfg``, missing keys default) or any object
        with these attributes (the app's pydantic ``ModelConfig``)."""
        if source is None:
            return cls()
        if isinstance(source, cls):
            return source
        if isinstance(source, Mapping):
            source = {**_ABSENT_FROM_OLD_CONFIGS, **source}
            # Multi-stage models saved before residual stages predicted anew at every stage.
            return cls(**{"stage_residual": source["stages"] == 1, **source})
        return cls(**{f.name: getattr(source, f.name) for f in fields(cls)})


def length_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``(B, T)`` bool, True on valid steps."""
    return torch.arange(steps, device=lengths.device) < lengths[:, None]


def check_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lengths`` as int64 on ``x``'s device, or a ValueError for a batch they cannot describe."""
    if x.dim() != 3 or lengths.shape != (x.shape[0],):
        raise ValueError(
            f"expected x (B, T, D) and lengths (B,), got {tuple(x.shape)} and "
            f"{tuple(lengths.shape)}"
        )
    lengths = lengths.to(device=x.device, dtype=torch.long)
    if lengths.numel() == 0:
        raise ValueError("empty batch")
    if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
        raise ValueError(f"lengths must lie in [1, T={x.shape[1]}], got {lengths.tolist()}")
    return lengths


class Encoded(NamedTuple):
    steps: torch.Tensor  # (B, T, F) per-step states, zero on padded steps
    final: torch.Tensor  # (B, F) forward state at length - 1 ++ backward state at step 0


def time_chunks(lengths: torch.Tensor, chunks: int) -> list[tuple[int, int, int]]:
    """``(start, stop, active)`` spans of time for a batch sorted by length, longest first.

    Sequences that have ended are dropped from later spans (``active`` is the count still
    running at ``start``), which skips most of the padded work the way packing does, but in
    a few large RNN calls instead of one small step per time step. Span starts sit at length
    quantiles, so at most ``chunks`` spans follow the shortest sequence's end.
    """
    ascending = lengths.flip(0).tolist()
    starts = {0, *(ascending[len(ascending) * i // chunks] for i in range(chunks))}
    bounds = sorted(starts | {ascending[-1]})
    return [(t0, t1, sum(n > t0 for n in ascending)) for t0, t1 in pairwise(bounds)]


def _slice_state(state: Any, active: int) -> Any:
    if isinstance(state, tuple):  # LSTM: (h, c)
        return tuple(part[:, :active].contiguous() for part in state)
    return state[:, :active].contiguous()


def run_causal(rnn: nn.RNNBase, x: torch.Tensor, spans: list[tuple[int, int, int]]) -> torch.Tensor:
    """``rnn`` over ``x (B, T, D)`` span by span, carrying the state; zeros where skipped."""
    outputs, state = [], None
    for start, stop, active in spans:
        hx = None if state is None else _slice_state(state, active)
        out, state = rnn(x[:active, start:stop], hx)  # (active, stop - start, H)
        outputs.append(F.pad(out, (0, 0, 0, 0, 0, x.shape[0] - active)))
    return torch.cat(outputs, dim=1)  # (B, T, H)


class RecurrentLayer(nn.Module):
    """One layer over packed rows: a causal RNN per direction, the backward one over each
    sequence reversed within its length.

    On CPU, GRUs run over the packed rows (:func:`run_grus`, a cheaper backward than
    autograd's). RNN/LSTM, and GRUs elsewhere, run as ``nn`` modules over the rows padded again
    (:func:`run_causal`); there the padding only follows the valid steps, never reaching them.
    """

    chunks = 8  # RNN/LSTM time spans after the shortest sequence ends; 8 measured fastest

    def __init__(self, cell: str, input_dim: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        rnn = _CELLS[cell]
        self.fwd = rnn(input_dim, hidden, batch_first=True)
        self.bwd = rnn(input_dim, hidden, batch_first=True) if bidirectional else None

    def run_padded(self, rnn: nn.RNNBase, rows: torch.Tensor, pack: Packing) -> torch.Tensor:
        """``rnn`` over packed ``rows (N, D)`` padded again, span by span -> ``(N, H)``."""
        B, T = len(pack.lengths), int(pack.lengths[0])
        spans = time_chunks(pack.lengths, self.chunks)
        out = run_causal(rnn, unpack(rows, pack.padded, B, T), spans)  # (B, T, H)
        return out.reshape(B * T, -1)[pack.padded]

    def forward(self, rows: torch.Tensor, pack: Packing) -> torch.Tensor:
        rnns = [self.fwd] if self.bwd is None else [self.fwd, self.bwd]
        inputs = [rows, rows[pack.reverse]][: len(rnns)]  # backward: each sequence reversed
        if isinstance(self.fwd, nn.GRU) and rows.device.type == "cpu":  # GPUs: cuDNN spans
            outs = list(run_grus(rnns, inputs, pack))  # K x (N, H)
        else:
            outs = [self.run_padded(rnn, x, pack) for rnn, x in zip(rnns, inputs, strict=True)]
        if len(outs) == 1:
            return outs[0]
        return torch.cat([outs[0], outs[1][pack.reverse]], dim=1)  # (N, 2H)

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The forward direction over the next steps ``x (B, T, D)`` from ``state`` (None: the
        zero state) -> ``(B, T, H)`` and the state after them."""
        if self.bwd is not None:
            raise ValueError("a bidirectional encoder reads the future: it cannot be stepped")
        return self.fwd(x, state)


class StepMLP(nn.Module):
    """The ``none`` cell: the same MLP at every step, blind to order (the baseline)."""

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_dim, hidden)

    def forward(self, rows: torch.Tensor, pack: Packing) -> torch.Tensor:
        return F.gelu(self.linear(rows))  # (N, H)

    def step(self, x: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        return F.gelu(self.linear(x)), None  # (B, T, H); nothing to carry


class SequenceEncoder(nn.Module):
    """LayerNorm -> projection -> ``layers`` x (RNN or MLP) with dropout between layers."""

    def __init__(self, input_dim: int, cfg: RNNConfig) -> None:
        super().__init__()
        self.cell = cell = cfg.cell
        self.bidirectional = cfg.bidirectional and cell != "none"
        self.norm = nn.LayerNorm(input_dim) if cfg.input_norm else nn.Identity()
        self.proj = nn.Linear(input_dim, cfg.projection) if cfg.projection else nn.Identity()
        self.dropout = nn.Dropout(cfg.dropout)
        width = cfg.projection or input_dim
        self.layers = nn.ModuleList()
        for _ in range(cfg.layers):
            if cell == "none":
                self.layers.append(StepMLP(width, cfg.hidden))
            else:
                self.layers.append(RecurrentLayer(cell, width, cfg.hidden, self.bidirectional))
            width = cfg.hidden * (2 if self.bidirectional else 1)
        self.hidden = cfg.hidden
        self.output_dim = width

    def encode_rows(self, rows: torch.Tensor, pack: Packing) -> torch.Tensor:
        """Packed valid steps ``(N, D)`` -> their states ``(N, F)``."""
        rows = self.proj(self.norm(rows))  # (N, D')
        for index, layer in enumerate(self.layers):
            if index > 0:
                rows = self.dropout(rows)  # between layers only, like nn.GRU(dropout=...)
            rows = layer(rows, pack)  # (N, F)
        return rows

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        lengths = check_lengths(x, lengths)
        B, T, D = x.shape
        pack = packing(lengths, T, x.device)
        # Only valid steps are ever read, so NaN/Inf on padded steps cannot reach a result
        # or a gradient.
        rows = self.encode_rows(packed_rows(x, pack), pack)  # (N, F)
        steps = unpack(rows, pack.rows, B, T)  # (B, T, F), zero on padding
        last = steps.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, steps.shape[-1]))
        final = last[:, 0]  # (B, F)
        if self.bidirectional:
            # The backward direction ends at step 0: its final state is its output there.
            final = torch.cat([final[:, : self.hidden], steps[:, 0, self.hidden :]], dim=-1)
        return Encoded(steps, final)

    @property
    def causal(self) -> bool:
        """Does every step's output depend on that step and earlier ones only, and can every
        layer be stepped (``step``) with its state carried?"""
        return not self.bidirectional and all(hasattr(layer, "step") for layer in self.layers)

    def step(self, x: torch.Tensor, state: list[Any] | None) -> tuple[torch.Tensor, list[Any]]:
        """Causal encoding of the next ``T`` steps ``x (B, T, D)`` carrying ``state`` (None at
        the start) -> (per-step states ``(B, T, F)``, the state after the last step).

        Each layer's ``step(x, state) -> (out, state)`` carries its own state (a hidden state
        here; a causal convolution would carry its receptive field's last inputs). Stepping a
        sequence chunk by chunk equals :meth:`forward` over all of it (to float rounding), and
        memory does not grow with the steps already seen.
        """
        if self.bidirectional:
            raise ValueError("a bidirectional encoder reads the future: it cannot be stepped")
        states = list(state) if state is not None else [None] * len(self.layers)
        out = self.proj(self.norm(x))  # (B, T, D')
        for index, layer in enumerate(self.layers):
            if index > 0:
                out = self.dropout(out)
            out, states[index] = layer.step(out, states[index])  # (B, T, H)
        return out, states


def packed_rows(x: torch.Tensor, pack: Packing) -> torch.Tensor:
    """The valid steps of ``x (B, T, D)`` as packed rows ``(N, D)``: padding is never read."""
    B, T, D = x.shape
    return x.reshape(B * T, D)[pack.rows]


def masked_mean(steps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over valid steps of ``(B, T, F)`` whose padded steps are zero -> ``(B, F)``."""
    return steps.sum(1) / lengths.to(steps.dtype)[:, None]


class AttentionPool(nn.Module):
    """Additive attention over valid steps: softmax(w . tanh(W h_t)) weighted sum."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))

    def forward(self, steps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        scores = self.score(steps).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~length_mask(lengths, steps.shape[1]), float("-inf"))
        weights = scores.softmax(dim=1)  # (B, T), exactly 0 on padded steps
        return torch.einsum("bt,btf->bf", weights, steps)  # (B, F)


class ClipClassifier(nn.Module):
    """Many-to-one: encoder -> pool valid steps (last | mean | attention) -> linear."""

    task = "clip"
    causal = False  # one label for the whole sequence, known once it has ended

    def __init__(self, input_dim: int, num_classes: int, cfg: RNNConfig) -> None:
        super().__init__()
        self.input_dim, self.num_classes, self.cfg = input_dim, num_classes, cfg
        self.encoder = SequenceEncoder(input_dim, cfg)
        dim = self.encoder.output_dim
        self.attention = AttentionPool(dim) if cfg.pooling == "attention" else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(x, lengths)
        lengths = lengths.to(x.device)
        if self.cfg.pooling == "last":
            pooled = encoded.final  # (B, F)
        elif self.cfg.pooling == "mean":
            pooled = masked_mean(encoded.steps, lengths)  # (B, F)
        else:
            pooled = self.attention(encoded.steps, lengths)  # (B, F)
        return self.head(self.dropout(pooled))  # (B, C)

    def stage_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """One stage: ``[forward(x, lengths)]``."""
        return [self(x, lengths)]


class RefinementStage(nn.Module):
    """A later stage: the previous stage's class probabilities -> a 1-layer RNN of the same
    cell (``stage_hidden`` wide, bidirectional like stage 1) -> new logits, over packed rows.

    With ``stage_residual`` the new logits are the previous ones plus the head's output, and
    the head starts at zero: the stage starts as the identity and learns only a correction
    (from scratch, a stage reading near-uniform probabilities has nothing to refine, and with
    few optimizer steps early stopping ends before it learns to copy its input)."""

    def __init__(self, num_classes: int, cfg: RNNConfig) -> None:
        super().__init__()
        small = replace(
            cfg, hidden=cfg.stage_hidden, layers=1, input_norm=False, projection=None, stages=1
        )
        self.encoder = SequenceEncoder(num_classes, small)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.encoder.output_dim, num_classes)
        self.residual = cfg.stage_residual
        if self.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, logits: torch.Tensor, pack: Packing) -> torch.Tensor:
        """New logits ``(N, C)`` from the previous stage's ``logits`` ``(N, C)``."""
        delta = self.head(self.dropout(self.encoder.encode_rows(logits.softmax(-1), pack)))
        return logits + delta if self.residual else delta  # (N, C)


class FrameTagger(nn.Module):
    """Synced many-to-many: logits at every step (zero on padded steps, which mean nothing).

    With ``stages`` > 1, each later stage (:class:`RefinementStage`) reads the softmax of the
    stage before and predicts again (MS-TCN's multi-stage refinement, with small RNNs): every
    stage is trained (:meth:`stage_logits`), the last one predicts (``forward``). All stages
    work on the same packed rows, so padding is never read, as in the encoder.
    """

    task = "frame"

    def __init__(self, input_dim: int, num_classes: int, cfg: RNNConfig) -> None:
        super().__init__()
        self.input_dim, self.num_classes, self.cfg = input_dim, num_classes, cfg
        self.encoder = SequenceEncoder(input_dim, cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.encoder.output_dim, num_classes)
        self.refiners = nn.ModuleList(
            RefinementStage(num_classes, cfg) for _ in range(cfg.stages - 1)
        )

    @property
    def causal(self) -> bool:
        """Every stage reads only the steps up to the current one (a unidirectional RNN, or the
        per-step ``none`` MLP)."""
        return not self.encoder.bidirectional

    def stage_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """``stages`` x ``(B, T, C)``, stage 1 first; zero on padded steps."""
        lengths = check_lengths(x, lengths)
        B, T, _ = x.shape
        pack = packing(lengths, T, x.device)
        states = self.encoder.encode_rows(packed_rows(x, pack), pack)  # (N, F)
        logits = self.head(self.dropout(states))  # (N, C)
        stages = [logits]
        for refiner in self.refiners:
            logits = refiner(logits, pack)  # (N, C)
            stages.append(logits)
        return [unpack(rows, pack.rows, B, T) for rows in stages]  # each (B, T, C)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.stage_logits(x, lengths)[-1]  # (B, T, C)

    def why_not_causal(self) -> str | None:
        """Why this model cannot label step by step (None: it can). Streaming callers ask
        this, then :meth:`step`; other causal sequence models offer the same two methods."""
        if self.encoder.causal:
            return None
        if self.encoder.bidirectional:
            return f"its {self.cfg.cell} is bidirectional: the backward direction reads the future"
        return f"its {self.cfg.cell} layers cannot be stepped one chunk at a time"

    def step(self, x: torch.Tensor, state: list[Any] | None) -> tuple[torch.Tensor, list[Any]]:
        """Logits ``(B, T, C)`` of the next ``T`` steps ``x (B, T, D)`` and the state to carry
        (``None`` at the start); equals :meth:`forward` over the whole sequence."""
        steps, state = self.encoder.step(x, state)  # (B, T, F)
        return self.head(self.dropout(steps)), state


MODELS: dict[str, type[ClipClassifier | FrameTagger]] = {
    model.task: model for model in (ClipClassifier, FrameTagger)
}  # keyed by task name (``data.task``)


def build_model(
    task: str,
    input_dim: int,
    num_classes: int,
    cfg: RNNConfig | Mapping[str, Any] | Any | None = None,
) -> nn.Module:
    """The model of ``task`` (``MODELS``): ``ClipClassifier`` or ``FrameTagger``; with the
    ``tcn`` cell, ``models.tcn.TemporalConvNet`` (frame task only).

    ``cfg`` may be a plain dict (see :meth:`RNNConfig.of`), so ``build_model(**json.load(f))``
    rebuilds a saved model from the dict :func:`model_config_dict` wrote.
    """
    if task not in MODELS:
        raise ValueError(f"unknown task {task!r}: expected one of {sorted(MODELS)}")
    cfg = RNNConfig.of(cfg)
    if task != FrameTagger.task and (cfg.cell == "tcn" or cfg.stages > 1):
        raise ValueError(
            f"the {task} task has one stage of an RNN or none cell; got cell {cfg.cell!r} and "
            f"{cfg.stages} stages (tcn and refinement stages label frames: the frame task)"
        )
    if cfg.cell == "tcn":
        from models.tcn import TemporalConvNet  # it imports this module's helpers

        return TemporalConvNet(input_dim, num_classes, cfg)
    return MODELS[task](input_dim, num_classes, cfg)


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """JSON-ready ``build_model`` kwargs: task, input_dim, num_classes, cfg (a dict)."""
    return {
        "task": model.task,
        "input_dim": model.input_dim,
        "num_classes": model.num_classes,
        "cfg": asdict(model.cfg),
    }
