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

    configure(verbose)
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
