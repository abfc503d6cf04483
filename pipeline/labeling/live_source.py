"""A live source's sampled frames, as events: sessions, frames on one timeline, session ends.

A source is a URL FFmpeg opens (``rtsp://``, ``udp://``, ``rtp://``, ``http(s)://``,
``tcp://``, ``srt://``), a capture device (``/dev/video0`` or its number) or a file still being
written. :class:`LiveSource` reads it in a background thread and hands out events:

- :class:`Session`: a connection delivered its first frame; its frames' times continue the
  live timeline at ``offset_s`` (so a reconnection never rewinds time);
- :class:`Sampled`: a frame the model's rate picks, by the stream's own timestamps
  (:class:`OnlineSampler`, the same rule as offline sampling), upright RGB at the decode size;
- :class:`SessionEnd`: the connection dropped, the stream jumped in time, or the source ended.

A dropped connection is reopened with exponential backoff; the time between two sessions is a
gap that the consumer records, never bridged. A file being written is followed by reopening
it at its end and skipping the frames already read (same timeline, no gap). Memory is one
bounded queue of small frames, whatever the stream's length.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.video import resize_frame, resized_shape, upright_rgb

# After pipeline.video, which quiets OpenCV's own console warnings before cv2 first loads.
import cv2  # noqa: E402  isort: skip

# A frame that is at most this much after a sampling target counts as shown at that target
# (the tolerance of offline sampling, pipeline.video.plan).
_TIME_EPS = 1e-3
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A timestamp jump larger than this (or any jump back) ends the session: the stream restarted.
_MAX_JUMP_S = 2.0
# Frames of a file still being written held back until more follow (the most a decoder
# reorders, plus one): the last ones may have been decoded from part of their data.
FILE_HOLD = 17


# --- sampling by the stream's timestamps -------------------------------------------------------


class OnlineSampler:
    """Offline sampling (:func:`pipeline.video.plan.sample_plan`), one frame at a time.

    Targets are ``k / f`` after the first frame; each picks the frame *shown* at it (the last
    one whose time is <= the target). Whether a frame is shown at a target is known once the
    next frame's time is, so a frame is decided one frame late. ``sample_fps`` None picks every
    frame. There is no ``max_frames`` thinning: a live stream has no length to thin over.
    """

    def __init__(self, sample_fps: float | None) -> None:
        self.sample_fps = sample_fps
        self.target = 0  # the next target not yet given a frame
        self.held: tuple[int, float, np.ndarray | None, float] | None = None
        self.missed = 0  # frames picked whose pixels were not kept (see wants)
        self.interval: float | None = None  # the last native frame interval
        self.longest: float | None = None  # the longest interval seen (at most 1 s)

    def _target_s(self) -> float:
        return self.target / self.sample_fps

    def wants(self, time_s: float, longest: float | None = None) -> bool:
        """Might the frame at ``time_s`` be picked (so its pixels must be kept)? Assumes the
        next frame comes within twice the longest frame interval seen (capped at 1 s; a caller
        ahead of the sampler passes the longest it has seen); a longer one is counted in
        ``missed`` when the frame left unkept turns out picked. Asking early, before the
        frames in between are pushed, only keeps more: the target can only move on."""
        longest = max(self.longest or 0.0, longest or 0.0) or None
        if self.sample_fps is None or longest is None:
            return True
        return self._target_s() + _TIME_EPS < time_s + 2 * longest

    def push(
        self, index: int, time_s: float, frame: np.ndarray | None, wall_s: float = 0.0
    ) -> Iterator[Sampled]:
        """Take the next frame (times strictly increasing; ``wall_s`` when it was read); yield
        the frame before it if picked."""
        if self.held is not None:
            self.interval = time_s - self.held[1]
            self.longest = min(1.0, max(self.longest or 0.0, self.interval))
            yield from self._decide(next_time_s=time_s)
        self.held = (index, time_s, frame, wall_s)

    def finish(self, end_s: float) -> Iterator[Sampled]:
        """The stream ended at ``end_s`` (the last frame shown until then): decide the last."""
        if self.held is None:
            return
        last = self.held[1]
        if self.sample_fps is None:
            yield from self._decide(next_time_s=np.inf)
            return
        # Offline keeps the targets up to the last frame's time and those before the end.
        up_to_last = int(np.floor(last * self.sample_fps + _TIME_EPS)) + 1
        before_end = int(np.ceil((end_s - _TIME_EPS) * self.sample_fps))
        if self.target < max(up_to_last, before_end):
            yield from self._emit()
        self.held = None

    def _decide(self, next_time_s: float) -> Iterator[Sampled]:
        if self.sample_fps is None:
            yield from self._emit()
            return
        picked = False
        while self._target_s() + _TIME_EPS < next_time_s:
            picked, self.target = True, self.target + 1
        if picked:
            yield from self._emit()

    def _emit(self) -> Iterator[Sampled]:
        index, time_s, frame, wall_s = self.held
        if frame is None:
            self.missed += 1
            return
        yield Sampled(index, time_s, frame, wall_s)


# --- events ------------------------------------------------------------------------------------


class Sampled(NamedTuple):
    index: int  # native frame index on the live timeline (frames counted over all sessions)
    time_s: float  # presentation time on the live timeline (s)
    frame: np.ndarray  # (H, W, 3) uint8 RGB, upright, resized to the decode size
    wall_s: float = 0.0  # time.time() when it was read from the source


@dataclass(frozen=True)
class Session:
    number: int  # 0 for the first connection
    offset_s: float  # live-timeline time of the session's first frame
    first_index: int  # live-timeline index of its first frame
    fps: float  # the stream's nominal rate (0: unknown)
    width: int
    height: int
    wall_s: float  # time.time() when its first frame arrived


@dataclass(frozen=True)
class SessionEnd:
    number: int
    frames: int  # live-timeline index one past the session's last frame
    end_s: float  # when its last frame stops being shown (live timeline)
    reason: str
    missed: int = 0  # picked frames whose pixels were not kept (a stream jumping in time)


@dataclass(frozen=True)
class Ended:
    reason: str  # why the source will give no more frames
    error: bool = False  # True when it ended on a failure (never opened, gave up reconnecting)


Event = Session | Sampled | SessionEnd | Ended


# --- opening a source --------------------------------------------------------------------------


def source_kind(source: str) -> str:
    """``url``, ``device`` or ``file``."""
    if _URL.match(source):
        return "url"
    if source.isdigit() or re.fullmatch(r"/dev/video\d+", source):
        return "device"
    return "file"


def source_name(source: str) -> str:
    """A file-name stem for the outputs: a file's stem, a URL's host, port and path."""
    kind = source_kind(source)
    if kind == "file":
        return Path(source).stem or "live"
    text = _URL.sub("", source) if kind == "url" else f"video{source.rsplit('video', 1)[-1]}"
    text = text.split("?", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "live"


def open_source(source: str, timeout_s: float) -> cv2.VideoCapture | None:
    """An opened capture (FFmpeg for URLs and files, V4L2 for devices), or None."""
    kind = source_kind(source)
    if kind == "device":
        number = int(source) if source.isdigit() else int(source.rsplit("video", 1)[-1])
        capture = cv2.VideoCapture(number, cv2.CAP_V4L2)
    else:
        millis = max(1, int(timeout_s * 1000))
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, millis, cv2.CAP_PROP_READ_TIMEOUT_MSEC, millis]
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        return None
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # rotated as offline decoding does
    return capture


# --- the reader --------------------------------------------------------------------------------


@dataclass
class _Timeline:
    """Where sessions sit on the live timeline."""

    frames: int = 0  # frames read over all sessions
    end_s: float = 0.0  # where the last session ended
    wall_origin: float | None = None  # time.monotonic() of the timeline's 0
    sessions: int = 0


class LiveSource:
    """Reads ``source`` in a thread; iterate :meth:`events` in the consumer.

    ``timeout_s`` bounds one open or read; reconnecting waits 0.5 s, 1 s, 2 s ... (at most
    ``max_backoff_s``) and stops after ``give_up_s`` without a frame: the stream's end, or an
    :class:`Ended` with ``error`` when it never gave one. A file is at its end when it stops
    growing for ``give_up_s``.
    """

    def __init__(
        self,
        source: str,
        sample_fps: float | None,
        decode_size: int | None,
        timeout_s: float = 5.0,
        give_up_s: float = 60.0,
        max_backoff_s: float = 8.0,
        queue_size: int = 64,
    ) -> None:
        self.source, self.kind = source, source_kind(source)
        self.sample_fps, self.decode_size = sample_fps, decode_size
        self.timeout_s, self.give_up_s, self.max_backoff_s = timeout_s, give_up_s, max_backoff_s
        self.reconnects = 0
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()  # hard stop: give up putting events too
        self._finish = threading.Event()  # stop reading (the session ends where it is)
        self._timeline = _Timeline()
        self._thread = threading.Thread(target=self._run, name="vidtag-live-source", daemon=True)

    def start(self) -> LiveSource:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reader thread (within one read timeout); events not taken are dropped."""
        self._finish.set()
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 2)

    def events(self, poll_s: float = 0.2) -> Iterator[Event | None]:
        """Events in order, ending with :class:`Ended`; None every ``poll_s`` without one (so the
        consumer can check for a stop request)."""
        while True:
            try:
                event = self._queue.get(timeout=poll_s)
            except queue.Empty:
                yield None
                continue
            yield event
            if isinstance(event, Ended):
                return

    def pending(self) -> int:
        """Events read but not yet taken (the consumer's backlog)."""
        return self._queue.qsize()

    # -- the thread --

    def _put(self, event: Event) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(event, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._put(self._read_all())
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which reports it
            self._put(Ended(f"reading {self.source} failed: {exc}", error=True))

    def _read_all(self) -> Ended:
        backoff, waiting_since = 0.5, time.monotonic()
        state: _SessionState | None = None  # a file's carries over reopenings
        while not self._finish.is_set():
            capture = open_source(self.source, self.timeout_s)
            got = 0
            if capture is not None:
                if state is None or self.kind != "file":
                    state = _SessionState()
                state.reopened()
                try:
                    got = self._read_session(capture, state)
                finally:
                    capture.release()
            if self._finish.is_set():
                break
            if got:
                backoff, waiting_since = 0.5, time.monotonic()
            elif time.monotonic() - waiting_since >= self.give_up_s:
                if state is not None and state.sampler is not None:  # a file that stopped
                    self._flush_held(state)
                    self._end_session(state, f"no new frame for {self.give_up_s:g} s")
                    return Ended(f"{self.source} stopped growing for {self.give_up_s:g} s")
                if self._timeline.sessions:  # it streamed, then stopped: its end
                    return Ended(f"no frame from {self.source} for {self.give_up_s:g} s")
                what = "could not be opened" if capture is None else "gave no frame"
                return Ended(f"{self.source} {what} for {self.give_up_s:g} s", error=True)
            self.reconnects += 1
            self._finish.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
        if state is not None and state.sampler is not None:
            self._end_session(state, "stopped")
        return Ended("stopped")

    def _read_session(self, capture: cv2.VideoCapture, state: _SessionState) -> int:
        """Frames of one open capture -> how many new frames it gave.

        A file's last ``FILE_HOLD`` frames wait until more follow: at the end of a file still
        being written the decoder may have seen only part of the last frames' data, so they
        are read again after reopening (or taken once the file has stopped growing).
        """
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if np.isfinite(fps) and fps > 0 else 0.0
        rotation = int(round(capture.get(cv2.CAP_PROP_ORIENTATION_META))) % 360
        hold = FILE_HOLD if self.kind == "file" else 0
        while not self._finish.is_set():
            if not capture.grab():
                break
            own_s = self._timestamp(capture)
            if state.skip(own_s):
                continue  # a reopened file: already read
            if state.jumped(own_s):  # the sender restarted: a new session from this frame
                self._flush_held(state)
                self._end_session(state, "the stream's timestamps jumped (sender restarted)")
            if state.sampler is None and not self._begin(state, capture, fps, rotation, own_s):
                return state.new_frames
            state.read(own_s)
            keep = state.sampler.wants(own_s - state.origin_s, state.longest)
            frame = None
            if keep:
                ok, bgr = capture.retrieve()
                frame = self._picture(bgr, rotation) if ok and bgr is not None else None
            state.held.append((own_s, frame, time.time()))
            while len(state.held) > hold:
                if not self._take(state, *state.held.pop(0)):
                    return state.new_frames
        if state.sampler is not None and (self.kind != "file" or self._finish.is_set()):
            self._flush_held(state)
            self._end_session(state, "stopped" if self._finish.is_set() else "connection lost")
        return state.new_frames

    def _timestamp(self, capture: cv2.VideoCapture) -> float:
        """The frame's own time (s): the stream's timestamp; for a capture device, whose
        driver timestamps OpenCV may not pass on, the time it was read (it is live)."""
        if self.kind == "device":
            return time.monotonic()
        return capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0

    def _take(
        self, state: _SessionState, own_s: float, frame: np.ndarray | None, wall_s: float
    ) -> bool:
        """One frame of the session to the sampler (its picks to the queue)."""
        rel = own_s - state.origin_s
        for sampled in state.sampler.push(self._timeline.frames, rel, frame, wall_s):
            if not self._put(self._on_timeline(sampled, state)):
                return False
        state.seen(own_s)
        self._timeline.frames += 1
        return True

    def _flush_held(self, state: _SessionState) -> None:
        held, state.held = state.held, []
        for own_s, frame, wall_s in held:
            if not self._take(state, own_s, frame, wall_s):
                return

    def _begin(self, state, capture, fps: float, rotation: int, own_s: float) -> bool:
        timeline = self._timeline
        now = time.monotonic()
        if timeline.wall_origin is None:
            timeline.wall_origin = now
        offset = max(timeline.end_s, now - timeline.wall_origin)
        state.start(own_s, offset, OnlineSampler(self.sample_fps))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if rotation in (90, 270):
            width, height = height, width
        session = Session(
            timeline.sessions, offset, timeline.frames, fps, width, height, time.time()
        )
        state.number = timeline.sessions
        timeline.sessions += 1
        return self._put(session)

    def _picture(self, bgr: np.ndarray, rotation: int) -> np.ndarray:
        rgb = upright_rgb(bgr, rotation)
        out_hw = resized_shape(rgb.shape[0], rgb.shape[1], self.decode_size)
        return resize_frame(rgb, out_hw)

    def _on_timeline(self, sampled: Sampled, state: _SessionState) -> Sampled:
        return sampled._replace(time_s=state.offset_s + sampled.time_s)

    def _end_session(self, state: _SessionState, reason: str) -> None:
        rel_end = state.last_rel + (state.sampler.interval or 0.0)
        for sampled in state.sampler.finish(rel_end):
            self._put(self._on_timeline(sampled, state))
        timeline = self._timeline
        timeline.end_s = state.offset_s + rel_end
        end = SessionEnd(
            state.number, timeline.frames, timeline.end_s, reason, state.sampler.missed
        )
        self._put(end)
        state.sampler = None


class _SessionState:
    """One session's reading position (a file's carries over reopenings)."""

    def __init__(self) -> None:
        self.resume_after: float | None = None  # skip frames up to this own time (a file)
        self.sampler: OnlineSampler | None = None
        self.origin_s = 0.0  # the first frame's own time
        self.offset_s = 0.0
        self.number = 0
        self.last_own_s: float | None = None  # the last frame taken
        self.last_read_s: float | None = None  # the last frame read (taken or held)
        self.held: list[tuple[float, np.ndarray | None, float]] = []  # read, not yet taken
        self.new_frames = 0  # taken since the capture was (re)opened
        self.longest: float | None = None  # the longest interval between frames read (<= 1 s)

    def read(self, own_s: float) -> None:
        """A frame was read (it may wait in ``held`` before the sampler takes it)."""
        if self.last_read_s is not None and own_s > self.last_read_s:
            self.longest = min(1.0, max(self.longest or 0.0, own_s - self.last_read_s))
        self.last_read_s = own_s

    def reopened(self) -> None:
        self.resume_after, self.new_frames, self.held = self.last_own_s, 0, []
        self.last_read_s = self.last_own_s

    @property
    def last_rel(self) -> float:
        return (self.last_own_s or 0.0) - self.origin_s

    def skip(self, own_s: float) -> bool:
        return self.resume_after is not None and own_s <= self.resume_after + _TIME_EPS

    def jumped(self, own_s: float) -> bool:
        last = self.last_read_s
        if self.sampler is None or last is None:
            return False
        return own_s <= last or own_s - last > _MAX_JUMP_S

    def start(self, own_s: float, offset_s: float, sampler: OnlineSampler) -> None:
        self.origin_s, self.offset_s, self.sampler = own_s, offset_s, sampler
        self.longest, self.last_read_s = None, None  # a new stream: its own intervals

    def seen(self, own_s: float) -> None:
        self.last_own_s = own_s
        self.new_frames += 1
