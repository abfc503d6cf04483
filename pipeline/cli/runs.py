"""What the commands run: a flow under the right Prefect settings with live progress."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID

from pipeline.cli.console import ProgressReporter, print_failures, summary_table
from pipeline.config import Config
from pipeline.data.discovery import discover_videos
from pipeline.errors import UserError
from pipeline.progress import progress_bar, set_reporter


def run_extract(cfg: Config, console: Console, verbose: bool = False) -> dict[str, Any]:
    from flows.prefect_env import configure
    from flows.runner import check_runner

    configure(verbose, run_logs=False)
    check_runner(cfg)  # dask without a Prefect server: say so before anything starts
    if cfg.data.videos is None:
        raise UserError("data.videos is not set: give a folder of videos or a manifest")
    videos = discover_videos(cfg.data.videos, cfg.data.extensions)
    console.print(f"extracting features of {len(videos)} videos into {cfg.features.store}")
    from flows.extract import extract_features
    from flows.prefect_env import lean_flow_runs

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


_EPOCH_SHOWN = ("train_loss", "val_loss", "val_accuracy", "val_frame_accuracy", "val_f1_50")


def run_train(
    cfg: Config, console: Console, resume: bool, test_only: bool, verbose: bool = False
) -> dict[str, Any]:
    from flows.prefect_env import configure
    from flows.runner import check_runner
    from pipeline.tracking.mlflow import check_reachable, resolve_uri

    configure(verbose, run_logs=False)
    check_runner(cfg)  # dask without a Prefect server: say so before anything starts
    check_reachable(resolve_uri(cfg))  # before any long work
    from flows.prefect_env import lean_flow_runs
    from flows.train import train

    with progress_bar(console) as progress, lean_flow_runs():
        set_reporter(_TrainReporter(progress, cfg))
        try:
            outcome = train(cfg, resume=resume, test_only=test_only)
        finally:
            set_reporter(None)
    return outcome


class _TrainReporter(ProgressReporter):
    """The extraction bars (videos, frames), then one bar over the training epochs."""

    def __init__(self, progress: Progress, cfg: Config) -> None:
        videos = discover_videos(cfg.data.videos, cfg.data.extensions) if cfg.data.videos else []
        super().__init__(progress, len(videos), "extracting videos")
        self.epochs = cfg.train.epochs
        self.epoch_bar: TaskID | None = None

    def epoch(self, epoch: int, metrics: dict) -> None:
        if self.epoch_bar is None:
            self.epoch_bar = self.progress.add_task("training", total=self.epochs)
        shown = " ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k in _EPOCH_SHOWN)
        self.progress.update(self.epoch_bar, completed=epoch, description=f"epoch {epoch}: {shown}")
