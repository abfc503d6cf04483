"""Pure functions that decide which native frames to decode and at what size."""

from __future__ import annotations

import numpy as np

# Matroska/WebM store times in whole milliseconds (frame 8 of 30 fps is 0.267 s, not 0.2667):
# a frame whose timestamp is at most 1 ms after a target counts as shown at that target.
_TIME_EPS = 1e-3


def sample_plan(
    times_s: np.ndarray,
    sample_fps: float | None,
    max_frames: int | None,
    duration_s: float | None = None,
) -> np.ndarray:
    """Indices of the native frames to keep, sorted and unique (int64).

    `times_s` are the native frames' presentation times in presentation order (strictly
    increasing). The last frame is shown until `duration_s` (relative to the first frame; `None`
    = the last frame's time plus the median frame interval). With `sample_fps` = f, the target
    times 0, 1/f, 2/f, ... before that end (and up to the last frame's time) each pick the frame
    *shown* at that time: the last frame whose timestamp is <= the target (so variable frame
    rate files sample by real time, not by frame count). When f is above the native rate a frame
    can be shown at two targets: it is kept once. `None` keeps every frame. `max_frames` then
    thins the result uniformly (first frame always kept).
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    if sample_fps is not None and not (np.isfinite(sample_fps) and sample_fps > 0):
        raise ValueError(f"sample_fps must be positive and finite or None, got {sample_fps!r}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames!r}")
    if duration_s is not None and not np.isfinite(duration_s):
        raise ValueError(f"duration_s must be finite or None, got {duration_s!r}")
    if times_s.size == 0:
        return np.zeros(0, dtype=np.int64)
    if sample_fps is None:
        picked = np.arange(times_s.size, dtype=np.int64)
    else:
        end = _shown_until(times_s, duration_s)
        picked = _frames_shown_at_targets(times_s, float(sample_fps), end)
    return thin_uniformly(picked, max_frames)


def _shown_until(times_s: np.ndarray, duration_s: float | None) -> float:
    """When the last frame stops being shown, relative to the first frame."""
    if duration_s is not None:
        return float(duration_s)
    step = float(np.median(np.diff(times_s))) if times_s.size > 1 else 0.0
    return times_s[-1] - times_s[0] + step


def _frames_shown_at_targets(times_s: np.ndarray, sample_fps: float, end: float) -> np.ndarray:
    # Targets are k / f (computed by multiplication, not repeated addition, so no drift): every
    # one up to the last frame's timestamp, and every one before `end` less 1 ms (a Matroska end
    # is rounded like its timestamps), so an end given too early never drops a frame.
    up_to_last = int(np.floor((times_s[-1] - times_s[0]) * sample_fps + _TIME_EPS)) + 1
    before_end = int(np.ceil((end - _TIME_EPS) * sample_fps))
    targets = times_s[0] + np.arange(max(up_to_last, before_end), dtype=np.float64) / sample_fps
    shown = np.searchsorted(times_s, targets + _TIME_EPS, side="right") - 1
    return np.unique(np.clip(shown, 0, times_s.size - 1)).astype(np.int64)


def thin_uniformly(indices: np.ndarray, max_frames: int | None) -> np.ndarray:
    """At most `max_frames` of `indices`, evenly spread, first one kept."""
    if max_frames is None or indices.size <= max_frames:
        return indices
    positions = np.floor(np.arange(max_frames) * (indices.size / max_frames)).astype(np.int64)
    return indices[positions]


def resized_shape(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(height, width) with the short side equal to `size`, aspect kept; `None` = unchanged."""
    if size is None:
        return height, width
    if size < 1:
        raise ValueError(f"size must be >= 1 or None, got {size!r}")
    scale = size / min(height, width)
    if height <= width:
        return size, max(1, round(width * scale))
    return max(1, round(height * scale)), size
