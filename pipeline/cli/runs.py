"""What the extract, train and label commands (and the demo) run: a flow under vidtag's Prefect
settings, with live progress from the flow's reporter events, then a summary.

:func:`run_flow` is the one scaffold; the flow discovers the videos and reports their count, so
the command never walks the input itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress

from pipeline.cli.console import ProgressReporter, print_failures, progress_bar, summary_table
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.jobs import plural
from pipeline.progress import reporting

T = TypeVar("T")


def run_flow(
    cfg: Config,
    console: Console,
    start: Callable[[], T],
    reporter: Callable[[Progress], ProgressReporter],
    verbose: bool = False,
    tracking: bool = False,
) -> T:
    """``start()`` (which imports and calls a flow) with bars drawn by ``reporter(progress)``.

    Prefect is configured before it is first imported (the ``vidtag server`` when one is up);
    a Dask runner without a Prefect server and (with ``tracking``) an unreachable MLflow server
    fail here, before any long work.
    """
    from pipeline.cli.prefect_server import use_running_server

    use_running_server(lambda message: console.print(message, highlight=False))
    from flows.prefect_env import configure
    from flows.runner import check_runner

    configure(verbose, run_logs=False)
    check_runner(cfg)  # dask without a Prefect server: say so before anything starts
    if tracking:
        from pipeline.tracking.mlflow import check_reachable, resolve_uri

        check_reachable(resolve_uri(cfg))
    from flows.prefect_env import lean_flow_runs

    with progress_bar(console) as progress, lean_flow_runs():
        with reporting(reporter(progress)):
            return start()


def run_extract(cfg: Config, console: Console, verbose: bool = False) -> dict[str, Any]:
    """``vidtag extract``: every video of ``data.videos`` into the feature store."""
    if cfg.data.videos is None:
        raise UserError("data.videos is not set: give a folder of videos or a manifest")

    def start() -> dict[str, Any]:
        from flows.extract import extract_features

        return extract_features(cfg, print_summary=False)

    def announce(videos: int) -> str:
        return f"extracting features of {plural(videos, 'video')} into {cfg.features.store}"

    summary = run_flow(
        cfg, console, start, lambda p: ProgressReporter(p, announce=announce), verbose=verbose
    )
    console.print(summary_table(summary, "extract_features"))
    print_failures(console, summary["failures"])
    console.print(f"extractor key: {summary['extractor_key']}  store: {cfg.features.store}")
    return summary


def run_train(
    cfg: Config,
    console: Console,
    resume: bool,
    test_only: bool,
    verbose: bool = False,
    promote: bool = False,
) -> dict[str, Any]:
    """``vidtag train``: extraction (videos and frames bars), then the epochs bar."""

    def start() -> dict[str, Any]:
        from flows.train import train

        return train(cfg, resume=resume, test_only=test_only, promote=promote)

    def bars(progress: Progress) -> ProgressReporter:
        return ProgressReporter(progress, "extracting videos", epochs=cfg.train.epochs)

    return run_flow(cfg, console, start, bars, verbose=verbose, tracking=True)


def run_label(
    cfg: Config,
    input: str | Path,
    model_uri: str,
    output: str | Path,
    console: Console,
    overwrite: bool = False,
    verbose: bool = False,
    truth: Path | None = None,
) -> dict[str, Any]:
    """``vidtag label``: every video under ``input`` into ``output``; the flow's summary dict.

    The summary holds ``videos``/``ok``/``skipped``/``failed`` counts, ``failures``,
    ``records`` (one per video) and the paths ``summary_csv`` and ``index_html``.
    """

    def start() -> dict[str, Any]:
        from flows.label import label_folder

        return label_folder(
            str(input), model_uri, str(output), cfg,
            overwrite=overwrite or cfg.label.overwrite, print_summary=False,
            truth=None if truth is None else str(truth),
        )  # fmt: skip

    def announce(videos: int) -> str:
        return f"labelling {plural(videos, 'video')} with {model_uri} into {output}"

    def bars(progress: Progress) -> ProgressReporter:
        return ProgressReporter(progress, "labelling videos", announce=announce)

    local_model = Path(model_uri).expanduser().is_dir()
    if not local_model:
        from pipeline.tracking.mlflow import require_store, resolve_uri

        require_store(resolve_uri(cfg))  # before any progress bar: labelling only reads
    summary = run_flow(cfg, console, start, bars, verbose=verbose, tracking=not local_model)
    console.print(summary_table(summary, "label_folder"))
    print_failures(console, summary["failures"])
    console.print(f"review page: {summary['index_html']}", highlight=False)
    console.print(f"summary:     {summary['summary_csv']}", highlight=False)
    return summary


def ui_hint(uri: str, config: str | Path | None = None) -> str:
    """The ``vidtag ui`` command that opens the store ``uri``: ``-c CONFIG`` when the config file
    alone names that store, else the store itself (``--set`` or the environment chose it)."""
    import shlex

    from pipeline.config import load_config
    from pipeline.tracking.mlflow import resolve_uri

    if config is not None and resolve_uri(load_config(config, [])) == uri:
        return f"vidtag ui -c {shlex.quote(str(config))}"
    return f"vidtag ui --set {shlex.quote(f'tracking.uri={uri}')}"
