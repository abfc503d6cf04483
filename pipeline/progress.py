"""Progress events from library code to whoever shows them.

The flows and the per-video work tell :func:`reporter` what happened; nothing here draws
anything. ``pipeline/cli`` installs a reporter that renders progress bars
(:class:`pipeline.cli.console.ProgressReporter`); elsewhere (deployments, the MLflow pyfunc,
tests) the default :class:`SilentReporter` ignores every event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipeline.jobs import VideoRecord


class Reporter(Protocol):
    """What a folder job reports, from the flow and from its tasks (threads of this process)."""

    def videos(self, count: int) -> None:
        """The job's video count, once discovered, before the first video starts."""

    def frames(self, count: int) -> None:
        """``count`` more frames embedded in the video in progress."""

    def video_done(self, record: VideoRecord) -> None:
        """One video finished: ok, skipped or failed."""

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """One training epoch finished, with its metrics."""


class SilentReporter:
    """The default reporter: ignores every event."""

    def videos(self, count: int) -> None:
        pass

    def frames(self, count: int) -> None:
        pass

    def video_done(self, record: VideoRecord) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


_reporter: Reporter = SilentReporter()


def set_reporter(new: Reporter | None) -> None:
    """Install ``new`` for this process (None: back to the silent default)."""
    global _reporter
    _reporter = new if new is not None else SilentReporter()


def reporter() -> Reporter:
    """The reporter events go to now."""
    return _reporter


@contextlib.contextmanager
def reporting(new: Reporter) -> Iterator[Reporter]:
    """``new`` receives the events inside the block; the silent default after it."""
    set_reporter(new)
    try:
        yield new
    finally:
        set_reporter(None)
