"""Time one training step of vidtag's exact encoder against packed and plain padded nn.GRU,
then a frame model's training epoch with refinement stages and with the tcn cell.

One step = forward + cross-entropy on clip logits + backward + AdamW step, on the same batch
(32 x lengths uniform in 150-300, D=512, a 2-layer bidirectional GRU with hidden 256).
One frame epoch = ``train_one_epoch`` (the training loop itself: every stage's loss, MS-TCN's
smoothing loss) over ``--epoch-batches`` such batches with per-step labels, for the frame
model with one stage, with ``--stages`` stages, and for the ``tcn`` cell (MS-TCN's sizes:
``--stages`` stages of 10 layers x 64 feature maps).
Each group is timed interleaved (A B C A B C ...) so drift in machine load hits each alike;
medians are reported. The last line is ``vidtag/packed=<R> vidtag/padded=<P>
stages<S>/stages1=<Q> tcn/stages1=<T>``.

    .venv/bin/python benchmarks/train.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.rnn import build_model  # noqa: E402
from pipeline.data.datasets import IGNORE_INDEX  # noqa: E402
from pipeline.data.datasets import Batch as FrameBatch  # noqa: E402
from pipeline.training.loop import train_one_epoch  # noqa: E402
from pipeline.training.task import FRAME  # noqa: E402

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class TorchBiGRU(nn.Module):
    """The reference: ``nn.GRU(bidirectional=True)``, packed (exact) or padded (leaky)."""

    def __init__(self, args: argparse.Namespace, packed: bool) -> None:
        super().__init__()
        self.packed = packed
        self.rnn = nn.GRU(
            args.dim,
            args.hidden,
            args.layers,
            batch_first=True,
            bidirectional=True,
            dropout=args.dropout,
        )
        self.head = nn.Linear(2 * args.hidden, args.classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.packed:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)  # (layers * 2, B, H)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=-1))  # (B, C)


def make_batch(args: argparse.Namespace) -> Batch:
    generator = torch.Generator().manual_seed(args.seed)
    lengths = torch.randint(args.min_len, args.max_len + 1, (args.batch,), generator=generator)
    x = torch.randn(args.batch, int(lengths.max()), args.dim, generator=generator)
    padded = torch.arange(x.shape[1])[None, :, None] >= lengths[:, None, None]  # (B, T, 1)
    x = x.masked_fill(padded, 0.0)  # (B, T, D)
    labels = torch.randint(0, args.classes, (args.batch,), generator=generator)
    return x, lengths, labels


def train_step_fn(model: nn.Module, batch: Batch) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, lengths, labels = batch

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, lengths), labels)
        loss.backward()
        optimizer.step()

    return step


def frame_batches(args: argparse.Namespace) -> list[FrameBatch]:
    """``--epoch-batches`` batches like :func:`make_batch`'s with a label per valid step, in
    runs of 20-60 steps (segments), ``IGNORE_INDEX`` on padding."""
    generator = torch.Generator().manual_seed(args.seed + 1)
    batches = []
    for _ in range(args.epoch_batches):
        x, lengths, _ = make_batch(args)
        runs = torch.randint(20, 61, (args.batch, x.shape[1] // 20 + 1), generator=generator)
        labels = torch.randint(0, args.classes, runs.shape, generator=generator)
        y = torch.stack([labels[b].repeat_interleave(runs[b])[: x.shape[1]] for b in range(len(x))])
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
        y = y.masked_fill(~mask, IGNORE_INDEX)  # (B, T)
        batches.append(FrameBatch(x, lengths, mask, y, [f"v{b}" for b in range(len(x))]))
    return batches


def train_epoch_fn(
    model: nn.Module, batches: list[FrameBatch], smooth_weight: float
) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cpu = torch.device("cpu")

    def epoch() -> None:
        train_one_epoch(model, batches, optimizer, FRAME, cpu, 1.0, None, smooth_weight)

    return epoch


def timed(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Warm each up once, then time them interleaved; median seconds per run, by name."""
    for run in runs.values():
        run()  # warm-up: allocator, oneDNN primitives
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
        print(
            f"repeat {repeat}: " + "  ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()),
            flush=True,
        )
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(f"{name:>7}: median {value:.3f} s (min {min(times[name]):.3f})")
    return median


def frame_epochs(args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per frame-model training epoch: one stage, ``--stages``, tcn."""
    batches = frame_batches(args)
    rnn = dict(cell="gru", hidden=args.hidden, layers=args.layers, dropout=args.dropout)
    tcn = dict(cell="tcn", dropout=args.dropout, stages=args.stages)
    models = {
        "stages1": build_model("frame", args.dim, args.classes, rnn),
        f"stages{args.stages}": build_model(
            "frame", args.dim, args.classes, {**rnn, "stages": args.stages}
        ),
        "tcn": build_model("frame", args.dim, args.classes, tcn),
    }
    print(
        f"frame epoch: {args.epoch_batches} batches, BiGRU {args.layers}x{args.hidden}, "
        f"refinement stages: 1-layer BiGRU x{models['stages1'].cfg.stage_hidden}; tcn "
        f"{args.stages} stages x {models['tcn'].cfg.tcn_layers} layers x "
        f"{models['tcn'].cfg.tcn_channels} maps; smooth_weight {args.smooth_weight}",
        flush=True,
    )
    epochs = {name: train_epoch_fn(m, batches, args.smooth_weight) for name, m in models.items()}
    return timed(epochs, args.repeats)


def clip_step_ratios(args: argparse.Namespace) -> list[str]:
    """The clip training step: vidtag's encoder vs packed and padded ``nn.GRU``."""
    batch = make_batch(args)
    # input_norm off: compare the RNN itself, the same work nn.GRU does.
    cfg = dict(
        cell="gru",
        hidden=args.hidden,
        layers=args.layers,
        bidirectional=True,
        dropout=args.dropout,
        pooling="last",
        input_norm=False,
    )
    models = {
        "vidtag": build_model("clip", args.dim, args.classes, cfg),
        "packed": TorchBiGRU(args, packed=True),
        "padded": TorchBiGRU(args, packed=False),
    }
    steps = {name: train_step_fn(model.train(), batch) for name, model in models.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch "
        f"{args.batch} x {batch[1].min()}-{batch[1].max()} steps, D={args.dim}, "
        f"BiGRU {args.layers}x{args.hidden}",
        flush=True,
    )
    median = timed(steps, args.repeats)
    return [
        f"vidtag/packed={median['vidtag'] / median['packed']:.3f}",
        f"vidtag/padded={median['vidtag'] / median['padded']:.3f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--min-len", type=int, default=150)
    parser.add_argument("--max-len", type=int, default=300)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", type=int, default=4, help="frame epoch: stages compared")
    parser.add_argument("--epoch-batches", type=int, default=2, help="frame epoch: batches")
    parser.add_argument("--smooth-weight", type=float, default=0.15, help="frame epoch")
    parser.add_argument(
        "--frame-only", action="store_true", help="only the frame epochs (last line: their ratios)"
    )
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    ratios = [] if args.frame_only else clip_step_ratios(args)
    frame = frame_epochs(args)
    stages = f"stages{args.stages}"
    ratios.append(f"{stages}/stages1={frame[stages] / frame['stages1']:.3f}")
    ratios.append(f"tcn/stages1={frame['tcn'] / frame['stages1']:.3f}")
    print(" ".join(ratios))


if __name__ == "__main__":
    main()
