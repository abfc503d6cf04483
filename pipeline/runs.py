"""What the commands run: a flow under the right Prefect settings with live progress."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from pipeline.config import Config
from pipeline.console import ProgressReporter, print_failures, summary_table
from pipeline.discovery import discover_videos
from pipeline.errors import UserError
from pipeline.progress import progress_bar, set_reporter


def run_extract(cfg: Config, console: Console, verbose: bool = False) -> dict[str, Any]:
    from pipeline.prefect_env import configure
    from pipeline.runner import check_runner

    configure(verbose)
    check_runner(cfg)  # dask without a Prefect server: say so before anything starts
    if cfg.data.videos is None:
        raise UserError("data.videos is not set: give a folder of videos or a manifest")
    videos = discover_videos(cfg.data.videos, cfg.data.extensions)
    console.print(f"extracting features of {len(videos)} videos into {cfg.features.store}")
    from flows.extract import extract_features
    from pipeline.prefect_env import lean_flow_runs

    with progress_bar(console) as progress, lean_flow_runs():
        set_reporter(ProgressReporter(progress, len(videos)))
        try:
            summary = extract_features(cfg, print_summary=False)
        finally:
            set_reporter(None)
    console.print(summary_table(summary, "extract_features"))
    print_failures(console, summary["failures"])
    console.print(f"extractor key: {summary['extractor_key']}  store: {cfg.features.store}")
    return summary


class EpochReporter:
    """Per-epoch progress line for `vidtag train` (the Reporter protocol's epoch event)."""

    def __init__(self, progress, epochs: int) -> None:
        self.progress = progress
        self.bar = progress.add_task("training", total=epochs)

    def frames(self, count: int) -> None:
        pass

    def video_done(self, record: dict) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict) -> None:
        shown = {k: v for k, v in metrics.items() if k in _EPOCH_SHOWN}
        text = " ".join(f"{k}={v:.3f}" for k, v in shown.items())
        self.progress.update(self.bar, completed=epoch, description=f"epoch {epoch}: {text}")


_EPOCH_SHOWN = ("train_loss", "val_loss", "val_accuracy", "val_frame_accuracy", "val_f1_50")


def run_train(
    cfg: Config, console: Console, resume: bool, test_only: bool, verbose: bool = False
) -> dict[str, Any]:
    from pipeline.prefect_env import configure
    from pipeline.runner import check_runner
    from pipeline.tracking import check_reachable, resolve_uri

    configure(verbose)
    check_runner(cfg)  # dask without a Prefect server: say so before anything starts
    check_reachable(resolve_uri(cfg))  # before any long work
    from flows.train import train
    from pipeline.prefect_env import lean_flow_runs

    with progress_bar(console) as progress, lean_flow_runs():
        set_reporter(_TrainReporter(progress, cfg))
        try:
            outcome = train(cfg, resume=resume, test_only=test_only)
        finally:
            set_reporter(None)
    return outcome


class _TrainReporter(EpochReporter):
    """Extraction bars first, then the epoch bar."""

    def __init__(self, progress, cfg: Config) -> None:
        self.progress = progress
        self.cfg = cfg
        self.bar = None
        videos = discover_videos(cfg.data.videos, cfg.data.extensions) if cfg.data.videos else []
        self.extraction = ProgressReporter(progress, len(videos), "extracting videos")

    def frames(self, count: int) -> None:
        self.extraction.frames(count)

    def video_done(self, record: dict) -> None:
        self.extraction.video_done(record)

    def epoch(self, epoch: int, metrics: dict) -> None:
        if self.bar is None:
            self.bar = self.progress.add_task("training", total=self.cfg.train.epochs)
        super().epoch(epoch, metrics)
