"""Rich rendering shared by the commands: live progress from tasks, end-of-job summaries."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.progress import Reporter


class ProgressReporter(Reporter):
    """Drives two bars (videos, frames) from task events raised in this process."""

    def __init__(self, progress: Progress, videos: int, what: str = "videos") -> None:
        self.progress = progress
        self.videos_bar = progress.add_task(what, total=videos)
        self.frames_bar = progress.add_task("frames", total=None)

    def frames(self, count: int) -> None:
        self.progress.advance(self.frames_bar, count)

    def video_done(self, record: dict) -> None:
        self.progress.advance(self.videos_bar)


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
