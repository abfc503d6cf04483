"""``vidtag label --live SOURCE``: the live loop with a status line and a summary at the end.

Ctrl-C and SIGTERM ask the loop to stop: it closes the open segment, writes it, and the summary
is printed; a second Ctrl-C interrupts at once. No Prefect flow: a live stream is one long
task with its own progress, and starting Prefect's server would only delay the first frame.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.config import Config


def status_line(status: Any) -> Text:
    """The console line: live-timeline time, current label and score, lag behind real time."""
    if not status.connected:
        return Text(f"{_clock(status.time_s)}  waiting for the stream (reconnecting) …", "yellow")
    label = status.label or "-"
    score = f"{status.score:.2f}" if status.score is not None else "-"
    return Text.assemble(
        f"{_clock(status.time_s)}  ",
        (f"{label}", "bold"),
        f" {score}   lag {status.lag_s:.2f} s   steps {status.steps}   ",
        f"segments {status.segments}",
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{secs:06.3f}"


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second SIGINT raises KeyboardInterrupt); restored after."""

    def request(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, request)
    except ValueError:  # not the main thread: the caller stops us through ``stop``
        pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def live_table(summary: dict[str, Any]) -> Table:
    table = Table(title="label --live", show_lines=False)
    columns = ("duration s", "steps", "segments", "gaps", "gap s", "lag max s", "lag mean s")
    keys = ("duration_s", "steps", "segments", "gaps", "gap_s", "lag_max_s", "lag_mean_s")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*(str(summary[k]) for k in keys))
    return table


def run_live(
    cfg: Config,
    source: str,
    model_uri: str,
    out: Path,
    console: Console,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Load the model, label ``source`` live into ``out`` until it ends or is stopped."""
    from pipeline.labeling.live import label_live
    from pipeline.labeling.predict import get_model

    tracking = None
    if not Path(model_uri).expanduser().is_dir():
        from pipeline.tracking.mlflow import require_store, resolve_uri

        tracking = resolve_uri(cfg)
        require_store(tracking)  # labelling only reads: never create an empty store
    loaded = get_model(model_uri, tracking)
    stop = threading.Event()
    console.print(f"labelling {source} live with {model_uri} into {out} (Ctrl-C stops)")
    with stop_on_signals(stop), Live(console=console, transient=True) as line:

        def show(status: Any) -> None:
            line.update(status_line(status))
            if not console.is_terminal and status.connected and status.steps % 50 == 0:
                console.print(status_line(status))

        summary = label_live(
            source, cfg, loaded, out, overwrite=overwrite, stop=stop, on_status=show
        )
    console.print(live_table(summary))
    console.print(f"ended: {summary['ended']}", highlight=False)
    console.print(f"segments: {summary['segments_jsonl']}", highlight=False)
    console.print(f"webvtt:   {summary['vtt']}", highlight=False)
    return summary
