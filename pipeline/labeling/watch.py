"""An inbox that labels itself: each new video labelled once it is complete.

:class:`InboxWatcher` polls a folder every ``poll_s`` seconds. A video is *complete* when its
size and modification time did not change between two polls **and** its container reads whole
(:func:`pipeline.video.decode.probe`: a demux pass, nothing decoded). A file still being
copied changes between polls, or does not read whole yet: it waits, it is not a damaged file.
One that stays unchanged for ``damaged_after_s`` but still does not read whole is labelled
anyway, and becomes a failed row with the reason, as in ``vidtag label``.

Each complete video goes through :func:`pipeline.labeling.folder.label_one` with the model
loaded once: the same outputs, skip rule (a restart relabels nothing) and claims as ``vidtag
label``; ``summary.csv`` and ``index.html`` are rewritten after each change. A video is looked
at again only when its content changes (size or mtime). Direct library calls, not a flow run
per video: a warm process labels a short clip within seconds of its completion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.jobs import JobSummary, VideoRecord

if TYPE_CHECKING:
    from pipeline.labeling.predict import LoadedModel

Signature = tuple[int, int]  # (size in bytes, mtime in ns)


@dataclass
class _Seen:
    signature: Signature
    since: float  # monotonic time this signature was first seen
    handled: Signature | None = None  # the signature last labelled (or skipped, or failed)


@dataclass
class WatchEvent:
    """One video handled: its record and how long after its last change was first seen."""

    record: VideoRecord
    after_complete_s: float


@dataclass
class InboxWatcher:
    """Label the videos of ``inbox`` into ``output`` with ``loaded`` as they become complete."""

    inbox: Path
    output: Path
    cfg: Config
    loaded: LoadedModel
    poll_s: float = 0.5
    damaged_after_s: float = 10.0
    on_event: Callable[[WatchEvent], None] | None = None
    clock: Callable[[], float] = time.monotonic
    summary: JobSummary = field(init=False)
    _seen: dict[Path, _Seen] = field(init=False, default_factory=dict)
    _records: dict[Path, VideoRecord] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        from pipeline.errors import UserError

        self.inbox = Path(self.inbox).expanduser().resolve()
        self.output = Path(self.output).expanduser().resolve()
        if not self.inbox.is_dir():
            raise UserError(f"inbox folder not found: {self.inbox}")
        self.output.mkdir(parents=True, exist_ok=True)
        self.summary = JobSummary(job="watch", extractor_key=self.loaded.model.spec.key())

    # --- one poll --------------------------------------------------------------------------

    def poll(self, stop: threading.Event | None = None) -> list[WatchEvent]:
        """Look at the inbox once; label what became complete. The events of this poll."""
        from pipeline.labeling.folder import output_bases, relative_path

        now = self.clock()
        videos = self._videos()
        # As `vidtag label` of the inbox would name them (two stems alike keep their suffix).
        bases = output_bases(videos, self.inbox)
        ready = [video for video in videos if self._ready(video, bases[video], now)]
        gone = set(self._seen) - set(videos)
        for video in gone:  # moved away: no longer in the summary, as `vidtag label` would say
            self._seen.pop(video)
            self._records.pop(video, None)
        events = []
        for video in ready:
            if stop is not None and stop.is_set():
                break
            events.append(self._label(video, relative_path(video, self.inbox), bases[video]))
        if events or gone:
            self.write_summary()
        return events

    def _videos(self) -> list[Path]:
        from pipeline.data.discovery import discover_videos

        return discover_videos(self.inbox, self.cfg.data.extensions)

    def _ready(self, video: Path, base: str, now: float) -> bool:
        """Whether ``video`` is complete and not handled in its current content."""
        try:
            stat = video.stat()
        except OSError:
            return False  # gone between listing and stat
        signature = (stat.st_size, stat.st_mtime_ns)
        seen = self._seen.get(video)
        if seen is None or seen.signature != signature:
            handled = seen.handled if seen is not None else None
            self._seen[video] = _Seen(signature, now, handled)
            return False  # changed since the last poll: maybe still being written
        if seen.handled == signature:
            return False
        if self._already_labelled(video, base):
            return True  # a quick skipped row: no need to read the container
        if _reads_whole(video):
            return True
        return now - seen.since >= self.damaged_after_s  # stable but unreadable: damaged

    def _already_labelled(self, video: Path, base: str) -> bool:
        from pipeline.labeling.folder import already_labelled

        found = already_labelled(video, video.name, base, self.output, self.cfg, self.loaded)
        return found is not None

    def _label(self, video: Path, relative: str, base: str) -> WatchEvent:
        from pipeline.labeling.folder import label_one

        seen = self._seen[video]
        try:
            record = label_one(video, relative, base, self.output, self.cfg, self.loaded)
        except Exception as exc:  # noqa: BLE001 - one bad video never stops the inbox
            record = VideoRecord(relative, "failed", path=str(video), base=base).failed(
                str(exc) or type(exc).__name__
            )
        seen.handled = seen.signature
        self._records[video] = record
        self.summary.add(record)
        event = WatchEvent(record, self.clock() - seen.since)
        if self.on_event is not None:
            self.on_event(event)
        return event

    # --- outputs and the loop ------------------------------------------------------------------

    def write_summary(self) -> None:
        """summary.csv and index.html of the videos now in the inbox (only when changed)."""
        from pipeline.labeling.outputs import (
            INDEX_HTML,
            SUMMARY_CSV,
            summary_csv_text,
            write_if_changed,
        )
        from pipeline.labeling.page import index_html

        records = [self._records[video] for video in sorted(self._records)]
        write_if_changed(self.output / SUMMARY_CSV, summary_csv_text(records))
        page = index_html(self.output, records, self.loaded.describe())
        write_if_changed(self.output / INDEX_HTML, page)

    def run(self, stop: threading.Event, run_for_s: float | None = None) -> JobSummary:
        """Poll until ``stop`` is set (or ``run_for_s`` passed); the summary of this session.

        A stop request ends the loop after the video in hand; the summary files are written
        whatever ends it (a second Ctrl-C included).
        """
        deadline = None if run_for_s is None else self.clock() + run_for_s
        try:
            while not stop.is_set():
                self.poll(stop)
                if deadline is not None and self.clock() >= deadline:
                    break
                stop.wait(self.poll_s)
        finally:
            self.write_summary()
        return self.summary


def _reads_whole(video: Path) -> bool:
    """Whether the container opens and demuxes to its end with nothing missing (its frame
    count, size fields and timestamps agree: not cut short). Nothing is decoded."""
    import warnings

    from pipeline.video.decode import probe

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut file warns: its copy may still be going on
            info = probe(video)
    except Exception:  # noqa: BLE001 - not whole yet (or damaged: decided by damaged_after_s)
        return False
    return not info.truncated


def load_watch_model(model_uri: str, cfg: Config) -> LoadedModel:
    """The model for a watch session, pinned to one version and loaded once, as ``vidtag
    label`` does (an alias that moves later is picked up at the next start)."""
    from dataclasses import replace

    from pipeline.labeling.predict import check_spec, get_model
    from pipeline.tracking.mlflow import require_store, resolve_uri
    from pipeline.tracking.registry import resolve_model

    tracking = resolve_uri(cfg)
    if not Path(model_uri).expanduser().is_dir():
        require_store(tracking)  # labelling only reads: never create an empty store
    pinned = resolve_model(model_uri, tracking).source
    loaded = replace(get_model(pinned, tracking), uri=model_uri)
    check_spec(loaded.model.spec)
    return loaded


def warm_up(loaded: LoadedModel, cfg: Config) -> None:
    """Load the model's backbone and run it and the model once on blank input, so that the
    first video that lands pays no model load or kernel set-up."""
    import numpy as np

    from pipeline.features.extract import get_extractor

    extractor = get_extractor(loaded.model.spec, cfg)
    size = extractor.decode_size
    features = extractor.embed(np.zeros((1, size, size, 3), np.uint8))  # (1, D)
    loaded.model.predict_proba([np.repeat(features, 2, axis=0)])
