"""Frame-tagging quality on real footage: every frame model, side by side, on the same features.

The set (``benchmarks/montage.py``): montages of cuts of 4-7 real scenes (the shared real
videos of at least 3 s, each scene a class), train montages from the first part of every
source, test montages from the unseen rest; written as mp4 and cached. Features are extracted
once with vidtag's own pipeline (``configs/frame_tagging.yaml``: resnet18, 10 fps, with
``features.weights: none`` since pretrained weights cannot be downloaded here), then each model
trains on the same features and split (``pipeline.training``, no Prefect, no MLflow) for
``--seeds`` seeds. Early stopping and the ``auto`` merge length use validation montages cut
from footage no train montage uses (``--val 0``: carved out of the train montages by
``data.val_fraction``, as ``vidtag train`` does when the split names no val video).

One row per model, the median over seeds of: test frame accuracy, edit, F1@{10,25,50} on the
sampled steps (raw), then the same after labelling on native frames with the merge length
``label.min_segment_s`` the model would label with (smoothed; ``merge`` is that length), and
the training time. ``*`` marks the shipped default. Last line:
``best_rnn_f1_50=<F> tcn_f1_50=<F> best_rnn/tcn=<R>`` (smoothed F1@50).

    python benchmarks/quality.py [--seeds 3] [--cache DIR] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.montage import MontagePlan, MontageSet, build_montage_set  # noqa: E402
from pipeline.config import Config, ConfigError, load_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs" / "frame_tagging.yaml"
RNN_CELLS = ("rnn", "gru", "lstm")

# name -> config overrides on top of the shipped config; every row names what it changes, so
# a row means the same whatever the shipped defaults are.
VARIANTS: dict[str, list[str]] = {
    "none": ["model.cell=none"],
    # vidtag's frame model before this benchmark, still the default: 1 stage, dropout 0.2, no
    # smoothing loss (its batch size is the shipped one: 4 since the residual-stages run).
    "gru": [
        "model.cell=gru",
        "model.stages=1",
        "model.dropout=0.2",
        "train.smooth_weight=0",
    ],
    # Residual refinement stages (model.stage_residual, the default): each starts as the
    # identity, so 4 stages start equal to 1 and learn corrections.
    "gru+stages+smooth": ["model.cell=gru", "model.stages=4", "train.smooth_weight=0.15"],
    "gru+2stages+smooth": ["model.cell=gru", "model.stages=2", "train.smooth_weight=0.15"],
    "lstm": ["model.cell=lstm"],
    # MS-TCN as its paper trains it: 4 stages of 10 layers, 64 maps, smoothing loss 0.15,
    # Adam at lr 0.0005 on one video per batch (at batch 8, 2 steps an epoch, it learns nothing).
    "tcn": [
        "model.cell=tcn",
        "model.stages=4",
        "train.smooth_weight=0.15",
        "train.batch_size=1",
        "train.lr=0.0005",
    ],
}
METRICS = ("frame_accuracy", "edit", "f1_10", "f1_25", "f1_50")


@dataclass
class Outcome:
    raw: dict[str, float]
    smoothed: dict[str, float]
    merge_s: float
    train_s: float


def base_config(montages: MontageSet, store: Path, work: Path, extra: list[str]) -> Config:
    return load_config(
        SHIPPED,
        [
            f"data.videos={montages.root / 'videos'}",
            f"data.annotations={montages.annotations}",
            "features.weights=none",
            f"features.store={store}",
            f"train.checkpoint_dir={work / 'checkpoints'}",
            *extra,
        ],
    )


def extract_all(cfg: Config, montages: MontageSet) -> float:
    """Every montage's features in the store (vidtag's extract step); seconds spent."""
    from pipeline.features.extract import stored_features

    started = time.perf_counter()
    videos = sorted((montages.root / "videos").glob("*.mp4"))
    for done, video in enumerate(videos, start=1):
        record, _ = stored_features(video, cfg)
        print(f"  features {done}/{len(videos)} {video.name}: {record.status}", file=sys.stderr)
    return time.perf_counter() - started


def train_and_test(cfg: Config) -> Outcome:
    """One model trained (early stopping on the validation videos) and tested."""
    from pipeline.data.datasets import class_weights
    from pipeline.training.job import build
    from pipeline.training.loop import FitSpec, evaluate, fit

    setup = build(cfg)
    classes = setup.classes
    weights = None
    if cfg.train.class_weights:
        weights = class_weights(setup.splits["train"], len(classes))
    started = time.perf_counter()
    fit(
        FitSpec(
            model=setup.model,
            task=setup.task,
            train_loader=setup.loaders["train"],
            val_loader=setup.loaders.get("val"),
            cfg=cfg.train,
            num_classes=len(classes),
            device=setup.device,
            class_weights=weights,
        )  # fmt: skip
    )
    train_s = time.perf_counter() - started
    test = evaluate(setup.model, setup.loaders["test"], setup.task, len(classes), setup.device)
    merge_s = merge_length(setup)
    smoothed = labelled_metrics(setup, test, merge_s)
    raw = {k: test.metrics[k] for k in METRICS}
    return Outcome(raw, smoothed, merge_s, train_s)


def merge_length(setup) -> float:
    """The merge length labelling will use: the config's number, or for ``auto`` the one
    training chooses on the validation videos (``pipeline.training.job``'s choice, untracked)."""
    from pipeline.config import AUTO, AUTO_MIN_SEGMENT_FALLBACK_S
    from pipeline.training.loop import evaluate
    from pipeline.training.smoothing import native_videos, select_min_segment

    setting = setup.cfg.label.min_segment_s
    if setting != AUTO:
        return float(setting)
    if "val" not in setup.loaders:
        return AUTO_MIN_SEGMENT_FALLBACK_S
    val = evaluate(setup.model, setup.loaders["val"], setup.task, len(setup.classes), setup.device)
    videos = native_videos(setup.annotations, setup.native, val)
    return select_min_segment(videos, background_ids=setup.task.background_ids).min_segment_s


def labelled_metrics(setup, test, merge_s: float) -> dict[str, float]:
    """The test metrics of what ``vidtag label`` writes: native-frame labels after merging
    (the run's ``test_smoothed_*``)."""
    from pipeline.training.smoothing import native_videos, smoothed_metrics

    videos = native_videos(setup.annotations, setup.native, test)
    if len(videos) != len(test.videos):
        raise RuntimeError("some test montages have no video info in the feature store")
    metrics = smoothed_metrics(videos, merge_s, setup.task.background_ids)
    return {k: metrics[k] for k in METRICS}


def median_outcome(outcomes: list[Outcome]) -> Outcome:
    def med(values):
        return float(statistics.median(values))

    return Outcome(
        raw={k: med([o.raw[k] for o in outcomes]) for k in METRICS},
        smoothed={k: med([o.smoothed[k] for o in outcomes]) for k in METRICS},
        merge_s=med([o.merge_s for o in outcomes]),
        train_s=med([o.train_s for o in outcomes]),
    )


def is_default(cfg: Config, shipped: Config) -> bool:
    """Whether ``cfg`` trains the shipped model (same model and train sections, bar the seed)."""
    seed = {"seed": shipped.train.seed}
    return cfg.model == shipped.model and cfg.train.model_copy(update=seed) == shipped.train


def header() -> str:
    names = ("acc", "edit", "F1@10", "F1@25", "F1@50")
    raw = " ".join(f"{n:>6}" for n in names)
    smooth = " ".join(f"{n:>6}" for n in names)
    return f"{'model':<20} {raw} | {smooth} {'merge':>6} {'train_s':>8}"


def row(name: str, outcome: Outcome) -> str:
    raw = " ".join(f"{outcome.raw[k]:6.3f}" for k in METRICS)
    smooth = " ".join(f"{outcome.smoothed[k]:6.3f}" for k in METRICS)
    return f"{name:<20} {raw} | {smooth} {outcome.merge_s:6.2f} {outcome.train_s:8.1f}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model (median)")
    parser.add_argument("--cache", type=Path, help="keep montages and features here")
    parser.add_argument("--quick", action="store_true", help="one seed, 15 epochs at most")
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once")
    parser.add_argument("--models", default=",".join(VARIANTS), help="comma-separated rows")
    parser.add_argument("--train", type=int, default=16, help="train montages")
    parser.add_argument("--test", type=int, default=8, help="test montages")
    parser.add_argument(
        "--val", type=int, default=4,
        help="validation montages from unseen footage (0: carved out of the train montages)",
    )  # fmt: skip
    parser.add_argument("--set-seed", type=int, default=0, help="seed of the montage plan")
    parser.add_argument("--image-size", type=int, help="features.image_size (default: shipped)")
    parser.add_argument("--epochs", type=int, help="train.epochs (default: shipped)")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (1: on a shared 2-core machine, 2 threads wait on each other and "
        "train ~10x slower)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="config override applied to every model (repeatable)",
    )  # fmt: skip
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="vidtag-quality-"))
    work = Path(tempfile.mkdtemp(prefix="vidtag-quality-work-"))
    extra = list(args.set)
    if args.image_size:
        extra.append(f"features.image_size={args.image_size}")
    epochs = args.epochs or (15 if args.quick else None)
    if epochs:
        extra.append(f"train.epochs={epochs}")
    try:
        plan = MontagePlan(train=args.train, test=args.test, val=args.val, seed=args.set_seed)
        started = time.perf_counter()
        montages = build_montage_set(cache, plan)
        scenes = len({cut.source for montage in montages.montages for cut in montage.cuts})
        print(
            f"montage set {montages.root}: {args.train} train, {args.val} val, {args.test} test "
            f"montages, "
            f"{scenes} scenes ({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )
        base = base_config(montages, cache / "feature_store", work, extra)
        print(f"features: {extract_all(base, montages):.1f} s", file=sys.stderr)
        names = args.models.split(",")
        seeds = 1 if args.quick else args.seeds
        report(compare(names, montages, base, work, extra, seeds, args.jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)


def compare(
    names: list[str],
    montages: MontageSet,
    base: Config,
    work: Path,
    extra: list[str],
    seeds: int,
    jobs: int = 1,
) -> tuple[dict[str, Outcome], int]:
    """Median outcome per model over ``seeds`` seeds; the shipped default gets a ``*``, and its
    own ``default`` row when no named model is it. ``jobs`` > 1 trains that many at once, each
    in its own process (the training times then include the contention)."""
    store = base.features.store
    planned: dict[str, list[Config]] = {}
    for name in names:
        try:
            planned[name] = [
                base_config(montages, store, work, [*extra, *VARIANTS[name], f"train.seed={seed}"])
                for seed in range(seeds)
            ]
        except ConfigError as exc:
            print(f"  {name}: skipped, this version has no such config ({exc})", file=sys.stderr)
    marked = {name: is_default(cfgs[0], base) for name, cfgs in planned.items()}
    if not any(marked.values()):
        planned["default"] = [
            base_config(montages, store, work, [*extra, f"train.seed={seed}"])
            for seed in range(seeds)
        ]
        marked["default"] = True
    runs = [(name, seed, cfg) for name, cfgs in planned.items() for seed, cfg in enumerate(cfgs)]
    outcomes: dict[str, list[Outcome]] = {name: [] for name in planned}
    for (name, seed, _), outcome in zip(runs, _train_all([c for *_, c in runs], jobs), strict=True):
        print(f"  {name} seed {seed}: {row(name, outcome)}", file=sys.stderr)
        outcomes[name].append(outcome)
    results = {
        name + ("*" if marked[name] else ""): median_outcome(values)
        for name, values in outcomes.items()
    }
    return results, seeds


def _train_all(cfgs: list[Config], jobs: int):
    if jobs <= 1:
        yield from map(train_and_test, cfgs)
        return
    context = multiprocessing.get_context("spawn")
    threads = torch.get_num_threads()
    with ProcessPoolExecutor(jobs, context, torch.set_num_threads, (threads,)) as pool:
        yield from pool.map(train_and_test, cfgs)


def report(compared: tuple[dict[str, Outcome], int]) -> None:
    results, seeds = compared
    print(f"median of {seeds} seed(s); raw (sampled steps) | labelled (native frames, merged)")
    print(header())
    for name, outcome in results.items():
        print(row(name, outcome))
    rnn = [
        o.smoothed["f1_50"] for n, o in results.items() if n.rstrip("*").split("+")[0] in RNN_CELLS
    ]
    best_rnn = max(rnn) if rnn else float("nan")
    tcn = next((o.smoothed["f1_50"] for n, o in results.items() if n.startswith("tcn")), None)
    tcn = float("nan") if tcn is None else tcn
    ratio = best_rnn / tcn if tcn else float("inf")
    print(f"best_rnn_f1_50={best_rnn:.3f} tcn_f1_50={tcn:.3f} best_rnn/tcn={ratio:.3f}")


if __name__ == "__main__":
    main()
