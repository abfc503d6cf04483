"""GRU directions over packed rows, with a hand-written backward.

Rows are packed like ``PackedSequence.data``: step by step, and within a step the sequences
still running, longest first; so step ``t`` is ``active[t]`` contiguous rows, a prefix of the
previous step's. Only valid steps are computed, which is exactly what packing computes, and
the large input GEMMs skip the padding too.

Autograd through a per-step GRU cell runs two small GEMMs per step in backward (grads of the
previous state and of ``W_hh``). :class:`GRUScan` runs one per step (the previous state's) and
gets ``W_hh``'s gradient afterwards from one large GEMM over all rows at once.
Gate order and formulas follow ``nn.GRU``: r, z, n with ``n = tanh(x_n + r * (W_hn h + b_hn))``
and ``h' = (1 - z) * n + z * h``.
"""

from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable


class Packing(NamedTuple):
    """Where the valid steps of a padded batch ``(B, T, D)`` sit among packed rows."""

    lengths: torch.Tensor  # (B,) sorted longest first, on the CPU
    active: list[int]  # sequences still running at each step
    starts: list[int]  # first packed row of each step
    rows: torch.Tensor  # (N,) row ``b * T + t`` of the flat padded input, per packed row
    padded: torch.Tensor  # (N,) the same in the sorted batch padded to the longest length
    reverse: torch.Tensor  # (N,) packed row of the same sequence's step mirrored in its length
    previous: torch.Tensor  # (N,) 1 + packed row of the step before (0: none, the zero state)


def packing(lengths: torch.Tensor, steps: int, device: torch.device | None = None) -> Packing:
    """:class:`Packing` of a batch of ``lengths (B,)`` padded to ``steps``; the index
    tensors on ``device``."""
    lengths = lengths.cpu()
    order = lengths.argsort(descending=True, stable=True)  # running sequences: a prefix
    lengths = lengths[order]
    longest = int(lengths[0])
    valid = torch.arange(longest)[:, None] < lengths  # (T, B), time-major like packed rows
    t, b = valid.nonzero(as_tuple=True)  # (N,) each, in packed order
    position = torch.full((longest, len(lengths)), -1, dtype=torch.long)
    position[t, b] = torch.arange(len(t))
    active = valid.sum(1).tolist()
    return Packing(
        lengths=lengths,
        active=active,
        starts=[0, *accumulate(active)][:-1],
        rows=(order[b] * steps + t).to(device),
        padded=(b * longest + t).to(device),
        reverse=position[lengths[b] - 1 - t, b].to(device),
        previous=torch.where(t > 0, position[(t - 1).clamp(min=0), b] + 1, 0).to(device),
    )


def unpack(rows: torch.Tensor, index: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """Packed ``rows (N, F)`` -> ``(batch, steps, F)``: flat row ``index[i]`` is ``rows[i]``,
    the rest (padding) zeros."""
    flat = rows.new_zeros(batch * steps, rows.shape[1])
    return flat.index_copy(0, index, rows).view(batch, steps, -1)


class GRUScan(torch.autograd.Function):
    """``(xp (K, N, 3H), W_hh (K, 3H, H), b_hh (K, 3H), packing) -> (K, N, H)`` from a zero
    state, for ``K`` independent directions stepped together (batched GEMMs, fewer calls).

    ``xp`` is the input projection ``x W_ih^T + b_ih`` of the packed rows.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        xp: torch.Tensor,
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
        pack: Packing,
    ) -> torch.Tensor:
        K, N, _ = xp.shape
        H = w_hh.shape[2]
        out = xp.new_empty(K, N, H)
        h0 = xp.new_zeros(K, pack.active[0], H)
        w_t, bias = w_hh.transpose(1, 2), b_hh[:, None]
        ctx.gates = []  # per step: r and z (K, a, 2H), n (K, a, H), W_hh h + b_hh (K, a, 3H)
        for t, (start, a) in enumerate(zip(pack.starts, pack.active, strict=True)):
            prev = out[:, pack.starts[t - 1] :][:, :a] if t else h0  # (K, a, H)
            gh = torch.baddbmm(bias, prev, w_t)  # (K, a, 3H)
            x_t = xp[:, start : start + a]  # (K, a, 3H)
            rz = torch.add(x_t[..., : 2 * H], gh[..., : 2 * H]).sigmoid_()
            n = torch.addcmul(x_t[..., 2 * H :], rz[..., :H], gh[..., 2 * H :]).tanh_()
            torch.lerp(n, prev, rz[..., H:], out=out[:, start : start + a])  # (1 - z) n + z h
            ctx.gates.append((rz, n, gh))
        ctx.save_for_backward(out, w_hh)
        ctx.pack = pack
        return out

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        out, w_hh = ctx.saved_tensors
        pack: Packing = ctx.pack
        K, N, H = out.shape
        d_gh = out.new_empty(K, N, 3 * H)  # grads of W_hh h + b_hh (= of r, z pre-activations)
        d_xn = out.new_empty(K, N, H)  # grads of x_n, the n part of xp
        carry = None  # grad of the state from the step after, (K, a_next, H)
        for t in reversed(range(len(pack.starts))):
            start, a = pack.starts[t], pack.active[t]
            rows = slice(start, start + a)
            rz, n, gh = ctx.gates[t]
            d = grad_out[:, rows]  # (K, a, H)
            if carry is not None and carry.shape[1] == a:
                d = carry.add_(d)
            elif carry is not None:  # sequences ending here get no grad from later steps
                d = d.clone()
                d[:, : carry.shape[1]] += carry
            prev = out[:, pack.starts[t - 1] :][:, :a] if t else torch.zeros_like(d)
            r, z, dg = rz[..., :H], rz[..., H:], d_gh[:, rows]
            d_n = torch.addcmul(d, d, z, value=-1)  # d (1 - z)
            d_an = torch.addcmul(d_n, d_n * n, n, value=-1, out=d_xn[:, rows])  # tanh'
            torch.mul(d_an, gh[..., 2 * H :], out=dg[..., :H])  # d r
            torch.mul(d, prev - n, out=dg[..., H : 2 * H])  # d z
            dg[..., : 2 * H].mul_(torch.addcmul(rz, rz, rz, value=-1))  # sigmoid'
            torch.mul(d_an, r, out=dg[..., 2 * H :])
            carry = torch.baddbmm(d * z, dg, w_hh)  # (K, a, H)
        states = torch.cat([out.new_zeros(K, 1, H), out], dim=1)  # row 0: the zero state
        d_w = d_gh.transpose(1, 2) @ states[:, pack.previous]  # (K, 3H, H): one large GEMM
        d_xp = torch.cat([d_gh[..., : 2 * H], d_xn], dim=2)  # (K, N, 3H)
        return d_xp, d_w, d_gh.sum(1), None


def run_grus(grus: list[nn.GRU], inputs: list[torch.Tensor], pack: Packing) -> torch.Tensor:
    """One-layer unidirectional ``grus[k]`` over packed rows ``inputs[k] (N, D)`` -> ``(K, N, H)``.

    Uses the modules' own parameters, so their state dicts are those of ``nn.GRU``.
    """
    w_ih = torch.stack([gru.weight_ih_l0 for gru in grus])  # (K, 3H, D)
    b_ih = torch.stack([gru.bias_ih_l0 for gru in grus])  # (K, 3H)
    xp = torch.baddbmm(b_ih[:, None], torch.stack(inputs), w_ih.transpose(1, 2))  # (K, N, 3H)
    w_hh = torch.stack([gru.weight_hh_l0 for gru in grus])  # (K, 3H, H)
    b_hh = torch.stack([gru.bias_hh_l0 for gru in grus])  # (K, 3H)
    return GRUScan.apply(xp, w_hh, b_hh, pack)
