"""What ``vidtag label`` (and the demo) runs: the label flow with live progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from pipeline.cli.console import ProgressReporter, print_failures, summary_table
from pipeline.config import Config
from pipeline.data.discovery import discover_videos
from pipeline.progress import progress_bar, set_reporter


def run_label(
    cfg: Config,
    input: str | Path,
    model_uri: str,
    output: str | Path,
    console: Console,
    overwrite: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Label every video under ``input`` into ``output``; the flow's summary dict.

    The summary holds ``videos``/``ok``/``skipped``/``failed`` counts, ``failures``,
    ``records`` (one per video) and the paths ``summary_csv`` and ``index_html``.
    """
    from flows.prefect_env import configure
    from flows.runner import check_runner
    from pipeline.tracking.mlflow import check_reachable, resolve_uri

    configure(verbose, run_logs=False)
    check_runner(cfg)  # dask without a Prefect server: say so before anything starts
    if not Path(model_uri).expanduser().is_dir():
        check_reachable(resolve_uri(cfg))  # before any long work
    videos = discover_videos(Path(input), cfg.data.extensions)
    console.print(f"labelling {len(videos)} videos with {model_uri} into {output}")
    from flows.label import label_folder
    from flows.prefect_env import lean_flow_runs

    with progress_bar(console) as progress, lean_flow_runs():
        set_reporter(ProgressReporter(progress, len(videos), "labelling videos"))
        try:
            summary = label_folder(
                str(input), model_uri, str(output), cfg,
                overwrite=overwrite or cfg.label.overwrite, print_summary=False,
            )  # fmt: skip
        finally:
            set_reporter(None)
    console.print(summary_table(summary, "label_folder"))
    print_failures(console, summary["failures"])
    console.print(f"review page: {summary['index_html']}", highlight=False)
    console.print(f"summary:     {summary['summary_csv']}", highlight=False)
    return summary
