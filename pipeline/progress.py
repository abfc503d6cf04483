"""One look for every progress bar the tools draw."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console | None = None, transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


class Reporter:
    """Receives progress events from work running in this process (tasks in threads)."""

    def frames(self, count: int) -> None:  # frames embedded so far in the current video
        pass

    def video_done(self, record: dict) -> None:  # one video finished (ok, skipped or failed)
        pass

    def epoch(self, epoch: int, metrics: dict) -> None:  # one training epoch finished
        pass


_reporter: Reporter = Reporter()


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter or Reporter()


def reporter() -> Reporter:
    return _reporter
