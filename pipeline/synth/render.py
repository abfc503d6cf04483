"""Pixels of the synthetic videos: backgrounds, shapes and one drawing function per class.

The features downstream are a globally pooled CNN (often randomly initialised), which is nearly
blind to *where* something is. So every class differs in what pooling keeps — colour, size,
brightness, count, shape — and objects are large and saturated against a moderate grey texture.
Frames are BGR uint8, OpenCV's order, so they compare directly with ``cv2.VideoCapture`` output.

Every frame is a pure function of (video, frame index): the background comes from the video's
seed and the sensor noise from (seed, index). That makes datasets reproducible and lets a
reversed class be *exactly* its partner's frames in the opposite order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

BACKGROUND = "background"

BGR = tuple[float, float, float]
YELLOW: BGR = (0, 215, 255)
RED: BGR = (40, 30, 230)
BLUE: BGR = (230, 70, 20)
GREEN: BGR = (40, 205, 30)
CYAN: BGR = (225, 210, 0)
MAGENTA: BGR = (215, 40, 215)

_SUBPIXEL_BITS = 4  # cv2 drawing takes fixed-point coordinates: 1/16 px is smooth enough
_ONE = 1 << _SUBPIXEL_BITS


@dataclass(frozen=True)
class Look:
    """Per-video (or per-segment) jitter of a class's appearance: no two videos are identical,
    yet the jitter stays well inside what separates the classes."""

    scale: float  # object size multiplier
    shade: BGR  # per-channel colour gain
    speed: float  # multiplier of periodic motion
    phase: float  # start phase of periodic motion, in turns
    direction: int  # +1 or -1: sense of rotations and orbits
    offset: tuple[float, float]  # object centre shift, as a fraction of the short side


@dataclass(frozen=True)
class VideoSpec:
    """Container-level facts plus the seed that decides background and noise."""

    width: int
    height: int
    fps: int
    frames: int
    seed: int
    noise: int  # amplitude of per-frame sensor noise, grey levels

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


class ClipVideo(NamedTuple):
    """One clip-task video: a single activity over the whole video."""

    spec: VideoSpec
    label: str
    look: Look


class Segment(NamedTuple):
    """One activity in a frame-task video: native frames ``[start_frame, end_frame)``."""

    start_frame: int
    end_frame: int
    label: str
    look: Look


class FrameVideo(NamedTuple):
    """One frame-task video: activity segments separated by background."""

    spec: VideoSpec
    segments: tuple[Segment, ...]


# (canvas, progress in [0, 1] over the activity, seconds since the activity began, look)
Draw = Callable[[np.ndarray, float, float, Look], None]


def sample_look(rng: np.random.Generator) -> Look:
    blue, green, red = rng.uniform(0.82, 1.0, size=3)
    dx, dy = rng.uniform(-0.08, 0.08, size=2)
    return Look(
        scale=float(rng.uniform(0.88, 1.12)),
        shade=(float(blue), float(green), float(red)),
        speed=float(rng.uniform(0.75, 1.3)),
        phase=float(rng.uniform(0.0, 1.0)),
        direction=int(rng.choice([-1, 1])),
        offset=(float(dx), float(dy)),
    )


# --- primitives --------------------------------------------------------------------------------


def _tinted(colour: BGR, look: Look, gain: float = 1.0) -> BGR:
    return tuple(min(255.0, c * s * gain) for c, s in zip(colour, look.shade, strict=True))


def _centre(img: np.ndarray, look: Look) -> tuple[float, float]:
    height, width = img.shape[:2]
    side = min(width, height)
    return width / 2 + look.offset[0] * side, height / 2 + look.offset[1] * side


def _fixed(x: float) -> int:
    return int(round(x * _ONE))


def disk(img: np.ndarray, centre: tuple[float, float], radius: float, colour: BGR) -> None:
    point = (_fixed(centre[0]), _fixed(centre[1]))
    cv2.circle(img, point, _fixed(max(radius, 1.0)), colour, -1, cv2.LINE_AA, _SUBPIXEL_BITS)


def rotated_rect(
    img: np.ndarray,
    centre: tuple[float, float],
    size: tuple[float, float],
    angle_deg: float,
    colour: BGR,
) -> None:
    corners = cv2.boxPoints((centre, size, angle_deg))
    points = np.round(corners * _ONE).astype(np.int32)
    cv2.fillPoly(img, [points], colour, cv2.LINE_AA, _SUBPIXEL_BITS)


def _side(img: np.ndarray) -> int:
    return min(img.shape[:2])


# --- classes -----------------------------------------------------------------------------------
# Ramp classes (grow, fade) read `progress` so that their reversed partner is the same frames
# backwards; periodic classes read seconds so that their look does not depend on video length.


def draw_grow(img: np.ndarray, progress: float, _t: float, look: Look) -> None:
    radius = _side(img) * look.scale * (0.10 + 0.36 * progress)
    disk(img, _centre(img, look), radius, _tinted(YELLOW, look))


def draw_fade(img: np.ndarray, progress: float, _t: float, look: Look) -> None:
    # Both ends are saturated and the middle is a dark purple: colour and brightness both move.
    colour = tuple(a + (b - a) * progress for a, b in zip(RED, BLUE, strict=True))
    side = _side(img) * 0.72 * look.scale
    rotated_rect(img, _centre(img, look), (side, side), 0.0, _tinted(colour, look))


def draw_blink(img: np.ndarray, _p: float, t: float, look: Look) -> None:
    if (1.2 * look.speed * t + look.phase) % 1.0 < 0.5:
        side = _side(img) * 0.62 * look.scale
        rotated_rect(img, _centre(img, look), (side, side), 0.0, _tinted(GREEN, look))


def draw_orbit(img: np.ndarray, _p: float, t: float, look: Look) -> None:
    side = _side(img)
    turn = 2 * math.pi * (look.direction * 0.4 * look.speed * t + look.phase)
    cx, cy = _centre(img, look)
    centre = (cx + 0.2 * side * math.cos(turn), cy + 0.2 * side * math.sin(turn))
    disk(img, centre, 0.22 * side * look.scale, _tinted(CYAN, look))


def draw_pulse(img: np.ndarray, _p: float, t: float, look: Look) -> None:
    swing = 1.0 + 0.18 * math.sin(2 * math.pi * (1.0 * look.speed * t + look.phase))
    disk(img, _centre(img, look), 0.32 * _side(img) * look.scale * swing, _tinted(RED, look))


def draw_flicker(img: np.ndarray, _p: float, t: float, look: Look) -> None:
    # Dims instead of vanishing, so every single frame still shows the class.
    bright = (1.5 * look.speed * t + look.phase) % 1.0 < 0.5
    side = _side(img) * 0.62 * look.scale
    colour = _tinted(GREEN, look, 1.0 if bright else 0.6)
    rotated_rect(img, _centre(img, look), (side, side), 0.0, colour)


def draw_spin(img: np.ndarray, _p: float, t: float, look: Look) -> None:
    side = _side(img) * look.scale
    angle = 360.0 * (look.direction * 0.5 * look.speed * t + look.phase)
    rotated_rect(img, _centre(img, look), (0.95 * side, 0.26 * side), angle, _tinted(BLUE, look))


def draw_swarm(img: np.ndarray, _p: float, t: float, look: Look) -> None:
    height, width = img.shape[:2]
    side = _side(img)
    cx, cy = _centre(img, look)
    for dot in range(7):
        # Fixed irrational-ish frequencies per dot: a wandering but bounded cloud.
        fx, fy = 0.31 + 0.07 * dot, 0.23 + 0.05 * dot
        phase = 2 * math.pi * (look.phase + dot / 7)
        x = cx + 0.3 * side * math.sin(2 * math.pi * fx * look.speed * t + phase)
        y = cy + 0.25 * side * math.cos(2 * math.pi * fy * look.speed * t + 1.7 * phase)
        x, y = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
        disk(img, (x, y), 0.1 * side * look.scale, _tinted(MAGENTA, look))


CLIP_DRAW: dict[str, Draw] = {
    "grow": draw_grow,
    "fade_red_to_blue": draw_fade,
    "blink": draw_blink,
    "orbit": draw_orbit,
}
# Second of each pair -> first: the second class is the first one's frames played backwards.
REVERSED_OF: dict[str, str] = {"shrink": "grow", "fade_blue_to_red": "fade_red_to_blue"}
CLIP_CLASSES: list[str] = [
    "grow",
    "shrink",
    "fade_red_to_blue",
    "fade_blue_to_red",
    "blink",
    "orbit",
]
REVERSED_PAIRS: list[tuple[str, str]] = [(first, second) for second, first in REVERSED_OF.items()]

FRAME_DRAW: dict[str, Draw] = {
    "pulse": draw_pulse,
    "flicker": draw_flicker,
    "spin": draw_spin,
    "orbit": draw_orbit,
    "swarm": draw_swarm,
}
FRAME_CLASSES: list[str] = list(FRAME_DRAW)


# --- background and noise ----------------------------------------------------------------------


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A static, moderately textured grey: coarse blotches plus finer grain, slightly tinted."""
    base = rng.uniform(95, 140) + rng.uniform(-10, 10, size=3)
    coarse = rng.uniform(-22, 22, size=(3, 4, 3)).astype(np.float32)
    fine = rng.uniform(-12, 12, size=(max(height // 8, 2), max(width // 8, 2), 3))
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture += cv2.resize(fine.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def add_noise(frame: np.ndarray, spec: VideoSpec, index: int) -> np.ndarray:
    """Sensor grain seeded by (video seed, frame index), drawn at half resolution for speed."""
    rng = np.random.default_rng((spec.seed, 0, index))
    small = (max(spec.height // 2, 1), max(spec.width // 2, 1), 3)
    grain = rng.integers(-spec.noise, spec.noise + 1, size=small, dtype=np.int16)
    grain = cv2.resize(grain, (spec.width, spec.height), interpolation=cv2.INTER_NEAREST)
    return np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)


def video_background(spec: VideoSpec) -> np.ndarray:
    return make_background(spec.width, spec.height, np.random.default_rng((spec.seed, 1)))


# --- whole videos ------------------------------------------------------------------------------


def _progress(index: int, frames: int) -> float:
    return index / (frames - 1) if frames > 1 else 0.0


def clip_frame(video: ClipVideo, background: np.ndarray, index: int) -> np.ndarray:
    """Frame ``index`` of a clip video. A reversed class renders its partner at the mirrored
    index — noise included — so it is exactly the partner's video played backwards."""
    spec = video.spec
    label, source = video.label, index
    if label in REVERSED_OF:
        label, source = REVERSED_OF[label], spec.frames - 1 - index
    frame = background.copy()
    CLIP_DRAW[label](frame, _progress(source, spec.frames), source / spec.fps, video.look)
    return add_noise(frame, spec, source)


def iter_clip_frames(video: ClipVideo) -> Iterator[np.ndarray]:
    background = video_background(video.spec)
    for index in range(video.spec.frames):
        yield clip_frame(video, background, index)


def render_clip(video: ClipVideo) -> np.ndarray:
    """All frames of a clip video in memory, ``(T, H, W, 3)`` BGR uint8, nothing written."""
    return np.stack(list(iter_clip_frames(video)))


def frame_labels(video: FrameVideo) -> list[str]:
    """The label of every native frame: its segment's, else ``background``."""
    labels = [BACKGROUND] * video.spec.frames
    for segment in video.segments:
        labels[segment.start_frame : segment.end_frame] = [segment.label] * (
            segment.end_frame - segment.start_frame
        )
    return labels


def iter_frame_video_frames(video: FrameVideo) -> Iterator[np.ndarray]:
    spec = video.spec
    background = video_background(spec)
    owner = {i: seg for seg in video.segments for i in range(seg.start_frame, seg.end_frame)}
    for index in range(spec.frames):
        frame = background.copy()
        segment = owner.get(index)
        if segment is not None:
            local = index - segment.start_frame
            progress = _progress(local, segment.end_frame - segment.start_frame)
            FRAME_DRAW[segment.label](frame, progress, local / spec.fps, segment.look)
        yield add_noise(frame, spec, index)


def render_frame_video(video: FrameVideo) -> np.ndarray:
    """All frames of a frame-task video in memory, ``(T, H, W, 3)`` BGR uint8."""
    return np.stack(list(iter_frame_video_frames(video)))
