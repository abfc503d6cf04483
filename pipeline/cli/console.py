"""Rich rendering for the commands: progress bars driven by the library's reporter events, and
the end-of-job summaries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich import get_console
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipeline.jobs import VideoRecord


def progress_bar(console: Console | None = None, transient: bool = False) -> Progress:
    """One look for every progress bar the tools draw.

    When the output is not a terminal (a pipe, a log file, a scheduler) no bar is drawn: rich
    would leave one cut bar in the file. The bars still count, and :class:`ProgressReporter`
    prints a plain line per finished video or epoch instead.
    """
    console = console if console is not None else get_console()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,
    )


class ProgressReporter:
    """:class:`pipeline.progress.Reporter` drawing two bars (videos, frames), then one over the
    training epochs when a training run reports them.

    The videos bar gets its total when the flow reports the count it discovered; ``announce``
    turns that count into a line printed above the bars. When ``progress`` draws nothing (not a
    terminal), each finished video and each epoch is one plain line instead.
    """

    def __init__(
        self,
        progress: Progress,
        what: str = "videos",
        announce: Callable[[int], str] | None = None,
        epochs: int | None = None,
    ) -> None:
        self.progress = progress
        self.announce = announce
        self.videos_bar = progress.add_task(what, total=None)
        self.frames_bar = progress.add_task("frames", total=None)
        self.epochs = epochs
        self.epoch_bar: TaskID | None = None
        self.plain = progress.disable
        self._done = 0
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def videos(self, count: int) -> None:
        if self.announce is not None:
            self.progress.console.print(self.announce(count))
        self.progress.update(self.videos_bar, total=count)

    def frames(self, count: int) -> None:
        self.progress.advance(self.frames_bar, count)

    def video_done(self, record: VideoRecord) -> None:
        self.progress.advance(self.videos_bar)
        if self.plain:
            with self._lock:  # tasks report from several threads: each line its own number
                self._done += 1
                done = self._done
            (task,) = [t for t in self.progress.tasks if t.id == self.videos_bar]
            of = f"/{task.total:.0f}" if task.total is not None else ""
            error = f": {record.error}" if record.error else ""
            self._line(f"{done}{of} {record.status} {record.video}{error}")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.epoch_bar is None:
            self.epoch_bar = self.progress.add_task("training", total=self.epochs)
        shown = " ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k in EPOCH_SHOWN)
        self.progress.update(self.epoch_bar, completed=epoch, description=f"epoch {epoch}: {shown}")
        if self.plain:
            of = f"/{self.epochs}" if self.epochs else ""
            self._line(f"epoch {epoch}{of}: {shown}")


EPOCH_SHOWN = ("train_loss", "val_loss", "val_accuracy", "val_frame_accuracy", "val_f1_50")


def summary_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("videos", "ok", "skipped", "failed", "frames", "frames/s"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(summary[k]) for k in ("videos", "ok", "skipped", "failed", "frames")),
        f"{summary['frames_per_s']:.1f}",
    )
    return table


def print_failures(console: Console, failures: list[dict[str, Any]]) -> None:
    for failure in failures:
        console.print(f"[red]failed[/] {failure['video']}: {failure['error']}", highlight=False)
