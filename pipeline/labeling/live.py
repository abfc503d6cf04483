"""Label a live stream as it plays: ``vidtag label --live SOURCE``.

Frames come from :mod:`pipeline.labeling.live_source` (sampled at the model's rate by the
stream's timestamps), are embedded by the model's own extractor a few at a time, and go
through the model *step by step*: a causal frame model carries its state (:class:`LiveStepper`),
so nothing is recomputed over the past and memory does not grow with the stream. On the same
frames the probabilities equal the offline ones (``predict_proba`` over the whole video).

:class:`LiveSegmenter` turns the steps into segments with the offline rules
(:mod:`pipeline.labeling.segments`: runs of one label, ``label.min_segment_s`` merging,
scores over native frames). Smoothing may revise only the last ``label.live_window_s``
seconds: a segment that ended longer ago than that is final, appended to
``<name>.segments.jsonl`` (one whole line per ``write``, flushed and fsynced) and cued in
``<name>.vtt`` (rewritten atomically). With a window longer than the stream the segments equal
the offline ones. A dropped connection ends the open segments at its last frame and writes a
``gap`` record; labelling resumes with a fresh model state when frames come back.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import UserError
from pipeline.fileio import atomic_write_text
from pipeline.labeling.outputs import vtt_text

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.labeling.live_source import Sampled, Session, SessionEnd
    from pipeline.labeling.predict import LoadedModel
    from pipeline.tracking.model_io import TrainedModel

SCHEMA = "vidtag.live/1"
LIVE_BATCH = 4  # most frames embedded at once: a backlog catches up, one frame waits for none
# torch intra-op threads unless features.threads says: a live stream needs a few frames a second,
# and one thread leaves a core to decoding; two OpenMP threads on cores shared with the decoder
# (and other programs) stall in barriers: the 60-s benchmark stream took 183 s with 2 threads
# and 62 s with 1 on a loaded 2-core machine (benchmarks/live.py).
LIVE_THREADS = 1


def _round(value: float) -> float:
    return round(float(value), 6)


# --- the model, step by step -------------------------------------------------------------------


class LiveStepper:
    """A causal frame model fed a few steps at a time, its state carried between calls.

    Any model whose module offers ``why_not_causal()`` (None when it may stream) and
    ``step(x (1, T, D), state) -> (logits (1, T, C), state)`` streams: the RNN tagger carries
    its hidden state; a causal convolution would carry its receptive field's inputs.
    """

    def __init__(self, model: TrainedModel, name: str) -> None:
        module = model.module
        if model.task != "frame":
            raise UserError(
                f"{name} is a {model.task} model (one label per whole video): live labelling "
                "needs a frame model (data.task frame) that labels every step"
            )
        why = getattr(module, "why_not_causal", None)
        reason = why() if why is not None else f"{type(module).__name__} cannot be stepped"
        if reason is not None:
            raise UserError(
                f"{name} cannot label a live stream: {reason}; train one with "
                "model.bidirectional false (a causal model) to label live"
            )
        self.module = module
        self.state: Any = None

    def reset(self) -> None:
        """Forget the past: the next step starts a new sequence (after a gap)."""
        self.state = None

    def step(self, features: np.ndarray) -> np.ndarray:
        """``(T, D)`` features of the next steps -> ``(T, C)`` class probabilities."""
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(features, np.float32))[None]  # (1, T, D)
            logits, self.state = self.module.step(x, self.state)  # (1, T, C)
            return logits.float().softmax(-1)[0].numpy()


# --- steps -> runs -> segments, revisable within a window --------------------------------------


@dataclass
class LiveRun:
    """A run of one label over native frames ``[start_frame, end_frame)``."""

    label: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    prob_sum: np.ndarray  # (C,) class probabilities summed over the run's native frames
    parts: int = 1  # runs of the unsmoothed tail it covers

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def mean(self, label: int) -> float:
        """The mean probability of ``label`` over the run's native frames."""
        return float(self.prob_sum[label]) / max(1, self.end_frame - self.start_frame)

    def joined(self, other: LiveRun, label: int) -> LiveRun:
        return LiveRun(
            label, self.start_s, other.end_s, self.start_frame, other.end_frame,
            self.prob_sum + other.prob_sum, self.parts + other.parts,
        )  # fmt: skip


def smooth_runs(runs: list[LiveRun], min_s: float) -> list[LiveRun]:
    """:func:`pipeline.labeling.segments.merge_short_runs` over run aggregates: every run
    shorter than ``min_s`` merges, shortest first, into the neighbour whose label the model
    scores higher over the short run's frames (the longer one on ties)."""
    runs = list(runs)
    while len(runs) > 1 and min_s > 0:
        durations = [run.duration_s for run in runs]
        short = int(np.argmin(durations))
        if durations[short] >= min_s - 1e-9:
            break
        neighbours = [j for j in (short - 1, short + 1) if 0 <= j < len(runs)]
        into = max(neighbours, key=lambda j: (runs[short].mean(runs[j].label), durations[j]))
        label = runs[into].label
        first, last = min(short, into), max(short, into)
        if last + 1 < len(runs) and runs[last + 1].label == label:
            last += 1
        if first > 0 and runs[first - 1].label == label:
            first -= 1
        merged = runs[first]
        for run in runs[first + 1 : last + 1]:
            merged = merged.joined(run, label)
        merged.label = label
        runs[first : last + 1] = [merged]
    return runs


class LiveSegmenter:
    """Sampled steps -> final segments, smoothing revisable over the last ``window_s``.

    Each step covers its native frames up to the next step's. The tail keeps the unsmoothed
    runs not yet final (each an aggregate: memory grows with the window, not the stream).
    """

    def __init__(
        self, classes: list[str], background: str | None, min_segment_s: float, window_s: float
    ) -> None:
        self.classes = classes
        self.background_id = classes.index(background) if background in classes else -1
        self.min_segment_s, self.window_s = min_segment_s, window_s
        self.tail: list[LiveRun] = []
        self.pending: tuple[int, float, np.ndarray] | None = None  # the latest step

    def add(self, index: int, time_s: float, probs: np.ndarray) -> None:
        """The next sampled step: native frame ``index`` at ``time_s``, ``probs (C,)``."""
        if self.pending is not None:
            self._commit(index, time_s)
        self.pending = (index, time_s, np.asarray(probs, np.float64))

    def current(self) -> tuple[str, float] | None:
        """The latest step's label and probability."""
        if self.pending is None:
            return None
        probs = self.pending[2]
        best = int(probs.argmax())
        return self.classes[best], float(probs[best])

    def update(self, now_frames: int, now_s: float) -> list[dict[str, Any]]:
        """Segments that became final: those ending ``window_s`` or more before ``now_s``."""
        runs = smooth_runs(self._view(now_frames, now_s), self.min_segment_s)
        final = []
        for run in runs[:-1]:  # the last run is still open
            if run.end_s > now_s - self.window_s:
                break
            final.append(run)
        del self.tail[: sum(run.parts for run in final)]
        return self._segments(final)

    def close(self, end_frames: int, end_s: float) -> list[dict[str, Any]]:
        """The stream (or the session) ended at ``end_s``: every segment is final."""
        if self.pending is not None:
            self._commit(end_frames, end_s)
        runs = smooth_runs(self.tail, self.min_segment_s)
        self.tail, self.pending = [], None
        return self._segments(runs)

    def _commit(self, end_frame: int, end_s: float) -> None:
        start_frame, start_s, probs = self.pending
        frames = max(0, end_frame - start_frame)
        run = LiveRun(int(probs.argmax()), start_s, end_s, start_frame, end_frame, probs * frames)
        last = self.tail[-1] if self.tail else None
        if last is not None and last.label == run.label and last.end_frame == start_frame:
            self.tail[-1] = last.joined(run, run.label)
            self.tail[-1].parts = 1
        else:
            self.tail.append(run)
        self.pending = None

    def _view(self, now_frames: int, now_s: float) -> list[LiveRun]:
        """The tail with the latest step extended to now (one more run, or the last longer)."""
        if self.pending is None:
            return list(self.tail)
        start_frame, start_s, probs = self.pending
        frames = max(1, now_frames - start_frame)
        end_s = max(now_s, start_s)
        run = LiveRun(int(probs.argmax()), start_s, end_s, start_frame, start_frame + frames,
                      probs * frames)  # fmt: skip
        view = list(self.tail)
        if view and view[-1].label == run.label and view[-1].end_frame == start_frame:
            view[-1] = view[-1].joined(run, run.label)
            view[-1].parts = 1
        else:
            view.append(run)
        return view

    def _segments(self, runs: list[LiveRun]) -> list[dict[str, Any]]:
        return [
            {
                "label": self.classes[run.label],
                "start_s": _round(run.start_s),
                "end_s": _round(run.end_s),
                "start_frame": run.start_frame,
                "end_frame": run.end_frame,
                "score": _round(run.mean(run.label)),
            }
            for run in runs
            if run.label != self.background_id
        ]


# --- the output files --------------------------------------------------------------------------


class LiveOutputs:
    """``<name>.segments.jsonl`` (appended line by line) and ``<name>.vtt`` (rewritten whole).

    Each record is one ``os.write`` of a whole line on an ``O_APPEND`` descriptor, then
    ``fsync``: after a crash the file ends with whole lines, and a reader that keeps only lines
    ending in a newline never takes half a record.
    """

    def __init__(self, out: Path, name: str, overwrite: bool = False) -> None:
        self.jsonl = out / f"{name}.segments.jsonl"
        self.vtt = out / f"{name}.vtt"
        if not overwrite and (self.jsonl.exists() or self.vtt.exists()):
            raise UserError(
                f"{self.jsonl} already exists (an earlier live run): choose another --out, "
                "or pass --overwrite to start it again"
            )
        out.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        self._fd = os.open(self.jsonl, flags, 0o666)
        self.cues: list[dict[str, Any]] = []  # final segments, for the VTT file
        atomic_write_text(self.vtt, vtt_text([]))

    def record(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:  # a regular file takes it in one write; a short write is finished here
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def segments(self, segments: list[dict[str, Any]], session: int) -> None:
        for segment in segments:
            self.record({"type": "segment", "session": session, **segment})
        if segments:
            self.cues.extend(segments)
            atomic_write_text(self.vtt, vtt_text(self.cues))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# --- the live loop -----------------------------------------------------------------------------


@dataclass
class LiveStatus:
    """What the console line shows, after each batch of steps."""

    time_s: float  # the latest step's time on the live timeline
    label: str | None
    score: float | None
    lag_s: float  # how far the latest step is behind real time
    steps: int
    segments: int
    session: int
    connected: bool


@dataclass
class _Lag:
    last: float = 0.0
    max: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, lag: float) -> None:
        self.last, self.max = lag, max(self.max, lag)
        self.total, self.count = self.total + lag, self.count + 1


@dataclass
class _Run:
    """One live run's counters (the summary)."""

    steps: int = 0
    segments: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    sessions: int = 0
    missed: int = 0
    end_s: float = 0.0
    lag: _Lag = field(default_factory=_Lag)


def label_live(
    source: str,
    cfg: Config,
    loaded: LoadedModel,
    out: Path,
    name: str | None = None,
    overwrite: bool = False,
    stop: threading.Event | None = None,
    on_status: Callable[[LiveStatus], None] | None = None,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Label ``source`` until it ends, fails for ``label.live_give_up_s``, or ``stop`` is set
    (Ctrl-C/SIGTERM in the CLI): the open segment is closed and the summary returned."""
    from pipeline.features.extractor import FeatureExtractor
    from pipeline.labeling.live_source import source_kind
    from pipeline.labeling.predict import check_spec

    if source_kind(source) == "file" and not Path(source).exists():
        raise UserError(
            f"{source}: no such file (a live source is a URL such as rtsp://host/path or "
            "udp://127.0.0.1:5000, a device such as /dev/video0, or a file being written)"
        )
    model = loaded.model
    stepper = LiveStepper(model, loaded.uri)
    check_spec(model.spec)
    with intra_op_threads(cfg.features.threads or LIVE_THREADS):
        extractor = FeatureExtractor(
            model.spec, device=cfg.features.device,
            batch_size=min(LIVE_BATCH, cfg.features.batch_size), compile_mode="off",
        )  # fmt: skip
        _warm_up(extractor, stepper)
        return _run_live(source, cfg, loaded, out, name, overwrite, stop, on_status, timeout_s,
                         stepper, extractor)  # fmt: skip


def _run_live(
    source, cfg, loaded, out, name, overwrite, stop, on_status, timeout_s, stepper, extractor
) -> dict[str, Any]:
    from pipeline.labeling.live_source import LiveSource, source_name
    from pipeline.labeling.segments import merge_length

    model = loaded.model
    min_segment_s = merge_length(cfg.label.min_segment_s, model.options)  # auto: the model's
    name = name or source_name(source)
    outputs = LiveOutputs(Path(out), name, overwrite=overwrite or cfg.label.overwrite)
    outputs.record(
        {"type": "start", "schema": SCHEMA, "source": source, "started": time.time(),
         "model": loaded.describe(), "min_segment_s": min_segment_s,
         "live_window_s": cfg.label.live_window_s}
    )  # fmt: skip
    live = _LiveLoop(
        cfg, model.classes, model.background, stepper, extractor, outputs, on_status, min_segment_s
    )
    reader = LiveSource(
        source, model.spec.sample_fps, extractor.decode_size,
        timeout_s=timeout_s, give_up_s=cfg.label.live_give_up_s,
    ).start()  # fmt: skip
    ended = None
    try:
        ended = live.run(reader, stop or threading.Event())
    finally:
        reader.close()
        live.finish_open()
        outputs.record({"type": "end", "end_s": _round(live.run_stats.end_s),
                        "reason": ended.reason if ended else "interrupted"})  # fmt: skip
        outputs.close()
    return live.summary(source, outputs, ended, reader.reconnects)


@contextlib.contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside, restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _warm_up(extractor, stepper: LiveStepper) -> None:
    """One blank batch through the backbone and the model before the stream opens: the first
    call builds the kernels (seconds on a CPU), which would otherwise be lag on the first frames."""
    size = extractor.decode_size
    stepper.step(extractor.embed(np.zeros((1, size, size, 3), np.uint8)))
    stepper.reset()


class _LiveLoop:
    def __init__(
        self, cfg, classes, background, stepper, extractor, outputs, on_status, min_segment_s
    ) -> None:
        self.classes, self.stepper, self.extractor = list(classes), stepper, extractor
        self.outputs, self.on_status = outputs, on_status
        self.segmenter = LiveSegmenter(
            self.classes, background, min_segment_s, cfg.label.live_window_s
        )
        self.run_stats = _Run()
        self.session: Session | None = None
        self.batch: list[Sampled] = []
        self.frames_now = 0  # native frames seen (index past the latest step)
        self.time_now = 0.0
        self.anchor = 0.0  # time.time() at the live timeline's 0 (see _steps)

    def run(self, reader, stop: threading.Event):
        """Events until the source ends or ``stop`` is set -> the :class:`Ended` event."""
        from pipeline.labeling.live_source import Ended, Sampled, Session, SessionEnd

        for event in reader.events():
            if stop.is_set():
                # Frames read but not yet labelled are dropped: the run ends now, closing the
                # open segment at the last labelled step (finish_open), not after a backlog.
                reader.close()
                return Ended("stopped")
            if isinstance(event, Sampled):
                self.batch.append(event)
                if len(self.batch) >= LIVE_BATCH or reader.pending() == 0:
                    self._steps()
            elif isinstance(event, Session):
                self._begin(event)
            elif isinstance(event, SessionEnd):
                self._end(event)
            elif isinstance(event, Ended):
                return event
            elif self.session is None and self.on_status is not None:
                self._status(connected=False)
        return None

    def _begin(self, session: Session) -> None:
        stats = self.run_stats
        if stats.sessions:
            gap = (stats.end_s, session.offset_s)
            stats.gaps.append(gap)
            self.outputs.record({"type": "gap", "start_s": _round(gap[0]),
                                 "end_s": _round(gap[1]), "session": session.number})  # fmt: skip
        stats.sessions += 1
        self.session = session
        self.stepper.reset()  # a new sequence: the model's past ends at the gap
        self.anchor = session.wall_s - session.offset_s
        self.frames_now, self.time_now = session.first_index, session.offset_s

    def _steps(self) -> None:
        batch, self.batch = self.batch, []
        features = self.extractor.embed(np.stack([s.frame for s in batch]))  # (T, D)
        # The feature store keeps float16, so the model trained on, and labels offline from,
        # float16-rounded features: round the same way.
        features = features.astype(np.float16).astype(np.float32)
        probs = self.stepper.step(features)  # (T, C)
        for sampled, p in zip(batch, probs, strict=True):
            self.segmenter.add(sampled.index, sampled.time_s, p)
        last = batch[-1]
        self.frames_now, self.time_now = last.index + 1, last.time_s
        self.run_stats.steps += len(batch)
        final = self.segmenter.update(self.frames_now, self.time_now)
        self._write(final)
        # The stream's clock: the earliest any frame read was due, by its own timestamp.
        for sampled in batch:
            self.anchor = min(self.anchor, sampled.wall_s - sampled.time_s)
        self.run_stats.lag.add(time.time() - (self.anchor + last.time_s))
        self._status(connected=True)

    def _end(self, end: SessionEnd) -> None:
        if self.batch:
            self._steps()
        self._write(self.segmenter.close(end.frames, end.end_s))
        self.run_stats.end_s = end.end_s
        self.run_stats.missed += end.missed
        self.session = None
        self._status(connected=False)

    def finish_open(self) -> None:
        """After a stop or an error: close what is open one step after the latest step."""
        if self.session is None:
            return
        if self.batch:
            self._steps()
        # The last labelled step covers its own frame: it ends one native frame later.
        end_s = self.time_now + 1.0 / (self.session.fps or self.extractor.spec.sample_fps or 30.0)
        self._write(self.segmenter.close(self.frames_now, end_s))
        self.run_stats.end_s = end_s
        self.session = None

    def _write(self, segments: list[dict[str, Any]]) -> None:
        number = self.session.number if self.session is not None else 0
        self.outputs.segments(segments, number)
        self.run_stats.segments += len(segments)

    def _status(self, connected: bool) -> None:
        if self.on_status is None:
            return
        current = self.segmenter.current() if connected else None
        self.on_status(
            LiveStatus(
                time_s=self.time_now,
                label=current[0] if current else None,
                score=current[1] if current else None,
                lag_s=self.run_stats.lag.last,
                steps=self.run_stats.steps,
                segments=self.run_stats.segments,
                session=self.session.number if self.session else -1,
                connected=connected,
            )
        )

    def summary(self, source: str, outputs: LiveOutputs, ended, reconnects: int) -> dict:
        stats, lag = self.run_stats, self.run_stats.lag
        return {
            "source": source,
            "segments_jsonl": str(outputs.jsonl),
            "vtt": str(outputs.vtt),
            "duration_s": _round(stats.end_s),
            "steps": stats.steps,
            "segments": stats.segments,
            "sessions": stats.sessions,
            "gaps": len(stats.gaps),
            "gap_s": _round(sum(b - a for a, b in stats.gaps)),
            "reconnects": reconnects,
            "missed_frames": stats.missed,
            "lag_max_s": _round(lag.max),
            "lag_mean_s": _round(lag.total / lag.count) if lag.count else 0.0,
            "ended": ended.reason if ended else "interrupted",
            "failed": bool(ended and ended.error),
        }
