"""``vidtag watch``: the inbox watcher (:mod:`pipeline.labeling.watch`) on the console.

One line per video handled, a status line while waiting, and a summary at the end. The first
Ctrl-C or SIGTERM stops after the video in hand; a second one stops at once (claims and temp
files are still cleaned up). Either way summary.csv and index.html are written.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pipeline.config import Config
from pipeline.jobs import JobSummary, plural
from pipeline.labeling.watch import InboxWatcher, WatchEvent

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_watch(
    cfg: Config,
    inbox: Path,
    model_uri: str,
    output: Path,
    console: Console,
    poll_s: float = 0.5,
    damaged_after_s: float = 10.0,
) -> JobSummary:
    """Label each new video of ``inbox`` until stopped; the session's summary."""
    from pipeline.cli.console import print_failures
    from pipeline.labeling.watch import load_watch_model, warm_up

    with console.status(f"loading {model_uri}"):
        loaded = load_watch_model(model_uri, cfg)
        warm_up(loaded, cfg)
    watcher = InboxWatcher(Path(inbox), Path(output), cfg, loaded, poll_s, damaged_after_s)
    stop = threading.Event()
    started = time.monotonic()
    console.print(
        f"watching {watcher.inbox} with {model_uri} into {watcher.output} "
        f"(every {poll_s:g} s; Ctrl-C stops)",
        highlight=False,
    )
    with console.status("waiting for new videos") as status, _stopping_on_signals(stop, console):
        watcher.on_event = lambda event: _show(event, watcher.summary, console, status)
        try:
            watcher.run(stop)
        except KeyboardInterrupt:
            console.print("stopped at once: the video in hand was not finished", highlight=False)
    summary = watcher.summary
    elapsed = _duration(time.monotonic() - started)
    console.print(
        f"watched {elapsed}: {plural(summary.count('ok'), 'video')} labelled, "
        f"{summary.count('skipped')} skipped (already labelled), {summary.count('failed')} failed",
        highlight=False,
    )
    print_failures(console, summary.to_dict()["failures"])
    console.print(f"summary: {watcher.output / 'summary.csv'}", highlight=False)
    return summary


def _show(event: WatchEvent, summary: JobSummary, console: Console, status: Any) -> None:
    record = event.record
    if record.status == "failed":
        console.print(f"[red]failed[/] {record.video}: {record.error}", highlight=False)
    elif record.status == "skipped":
        console.print(f"skipped {record.video}: already labelled {record.label}", highlight=False)
    else:
        console.print(
            f"labelled {record.video}: {record.label} ({record.score:.2f}), "
            f"{event.after_complete_s:.1f} s after it was complete",
            highlight=False,
        )
    status.update(
        f"waiting for new videos ({summary.count('ok')} labelled, {summary.count('failed')} failed)"
    )


class _stopping_on_signals:
    """The first SIGINT/SIGTERM sets ``stop``; the second raises KeyboardInterrupt."""

    def __init__(self, stop: threading.Event, console: Console) -> None:
        self.stop, self.console, self.previous = stop, console, {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.stop.set()
        self.console.print(
            f"{signal.Signals(signum).name}: stopping after the video in hand (again: at once)",
            highlight=False,
        )

    def __enter__(self) -> _stopping_on_signals:
        for number in _STOP_SIGNALS:
            self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"
