"""Browser-playable previews of labelled videos, for the review page.

Browsers play H.264, VP8, VP9 and AV1 in MP4 or WebM; they do not play AVI, MPEG-4 Part 2
(OpenCV's ``mp4v``, Xvid), MJPEG or most camera files. For those, :func:`make_preview` writes
``<base>.preview.mp4`` beside the labels: H.264 (yuv420p, short side at most
:data:`PREVIEW_SHORT_SIDE`) made by the ffmpeg binary that ``imageio-ffmpeg`` ships. It is
frame-exact with the source: every frame is kept with its own timestamp (no frame-rate
conversion, no B-frames, first frame at 0 like vidtag's frame times), and the result is checked
(same frame count, every frame time within :data:`TIME_TOLERANCE_S`) before it replaces
anything, so the WebVTT track and the page's timeline stay in sync with what plays.

Where no preview can be had (ffmpeg missing, it fails, ``label.previews: never``), a strip of
thumbnails at the sampled times, ``<base>.thumbs.jpg``, shows what the video holds instead.

:func:`preview_entry` decides and makes what a video needs; it never raises: the labels are
worth more than their preview, so a failure is recorded in the entry (labels.json
``preview.error``) and labelling goes on.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.fileio import atomic_write_bytes, default_file_mode

PREVIEW_SHORT_SIDE = 360
THUMB_HEIGHT = 72
MAX_THUMBS = 24
TIME_TOLERANCE_S = 0.001  # exact in practice (the source time base is kept); rounding room
PREVIEW_SUFFIX = ".preview.mp4"
THUMBS_SUFFIX = ".thumbs.jpg"
# What Chromium, Firefox and Safari all play, by container (pipeline.video container kinds).
BROWSER_CODECS = {"mp4": {"h264", "vp9", "av1"}, "matroska": {"vp8", "vp9", "av1"}}
WEBM_SUFFIXES = {".webm"}  # Matroska plays in browsers only as WebM


class PreviewError(UserError):
    """A preview could not be made (ffmpeg missing or failing, a result that is not exact)."""


def browser_playable(video: Path, codec: str) -> bool:
    """Does a browser play ``video`` as it is? By container and codec (``VideoInfo.codec``)."""
    from pipeline.video import container_kind, read_head

    try:
        kind = container_kind(read_head(video)[:64])
    except OSError:
        return False
    if kind == "matroska" and video.suffix.lower() not in WEBM_SUFFIXES:
        return False
    return codec.lower() in BROWSER_CODECS.get(kind, set())


def ffmpeg_exe() -> str | None:
    """The ffmpeg binary of ``imageio-ffmpeg`` (or ``$IMAGEIO_FFMPEG_EXE``); None when absent."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def preview_command(ffmpeg: str, video: Path, target: Path, frames: int) -> list[str]:
    """H.264 of every frame of ``video`` (its first ``frames``) with its own timestamp."""
    short = PREVIEW_SHORT_SIDE
    scale = (  # short side <= 360 (never upscaled), even sizes, after ffmpeg's autorotation
        f"scale=w='if(lte(iw,ih),trunc(min(iw,{short})/2)*2,-2)'"
        f":h='if(lte(iw,ih),-2,trunc(min(ih,{short})/2)*2)'"
    )
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        # passthrough: no frame dropped or duplicated; setpts: the first frame at 0 s
        "-fps_mode", "passthrough", "-vf", f"setpts=PTS-STARTPTS,{scale},format=yuv420p",
        # demux: the encoder keeps the source's time base (else it rounds times to 1/fps)
        "-enc_time_base", "demux", "-frames:v", str(frames),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "28",
        "-bf", "0", "-g", "30", "-movflags", "+faststart", "-f", "mp4", str(target),
    ]  # fmt: skip


def make_preview(video: Path, target: Path, source_times_s: np.ndarray, timeout_s: float) -> None:
    """Write the preview of ``video`` to ``target`` atomically, checked frame for frame
    against ``source_times_s`` (every native frame's time, from 0); raises PreviewError."""
    ffmpeg = ffmpeg_exe()
    if ffmpeg is None:
        raise PreviewError(f"{video}: no ffmpeg for a preview (pip install imageio-ffmpeg)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        command = preview_command(ffmpeg, video, tmp, len(source_times_s))
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as error:
            raise PreviewError(f"{video}: ffmpeg took more than {timeout_s:.0f} s") from error
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise PreviewError(f"{video}: ffmpeg failed ({done.returncode}): {last}")
        check_same_frames(video, tmp, source_times_s)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def frame_times(video: Path) -> np.ndarray:
    """Every native frame's presentation time (s, from the first frame): a demux-only scan."""
    from pipeline.video.decode import iter_chunks

    return np.asarray(iter_chunks(video).times_s, dtype=np.float64)


def check_same_frames(video: Path, preview: Path, source_times_s: np.ndarray) -> None:
    """Raise PreviewError unless ``preview`` has the same frames at the same times."""
    times = frame_times(preview)
    if len(times) != len(source_times_s):
        raise PreviewError(
            f"{video}: the preview has {len(times)} frames, the video {len(source_times_s)}"
        )
    worst = float(np.max(np.abs(times - source_times_s))) if len(times) else 0.0
    if worst > TIME_TOLERANCE_S:
        raise PreviewError(f"{video}: preview frame times differ from the video's by {worst:.4f} s")


def make_thumbnails(video: Path, target: Path, times_s: list[float]) -> list[float]:
    """A JPEG strip (one row) of at most :data:`MAX_THUMBS` frames at the sampled ``times_s``
    (evenly thinned); returns the times of the frames in it."""
    import cv2

    from pipeline.video.decode import iter_chunks

    wanted = _thinned(times_s)
    stream = iter_chunks(video, size=THUMB_HEIGHT, chunk_frames=MAX_THUMBS)
    native = np.asarray(stream.times_s)
    # the native frame shown at each wanted time: the last one that starts at or before it
    indices = np.clip(np.searchsorted(native, np.asarray(wanted) + 1e-9, side="right") - 1, 0, None)
    stream.plan = np.unique(indices)
    frames: list[np.ndarray] = []
    shown: list[float] = []
    for chunk in stream:
        for frame, index in zip(chunk.frames, chunk.indices, strict=True):
            frames.append(frame)
            shown.append(float(native[index]))
    if not frames:
        raise PreviewError(f"{video}: no frame decoded for the thumbnails")
    strip = np.concatenate(frames, axis=1)  # (H, n*W, 3) RGB
    ok, encoded = cv2.imencode(".jpg", strip[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise PreviewError(f"{video}: the thumbnail strip could not be encoded")
    atomic_write_bytes(target, encoded.tobytes())
    return shown


def _thinned(times_s: list[float]) -> list[float]:
    if len(times_s) <= MAX_THUMBS:
        return list(times_s) or [0.0]
    picks = np.linspace(0, len(times_s) - 1, MAX_THUMBS).round().astype(int)
    return [times_s[i] for i in picks]


def preview_entry(
    video: Path, base_path: Path, codec: str, policy: str, sample_times_s: list[float]
) -> dict[str, Any]:
    """What the page plays for ``video`` (labels.json ``preview``), made as needed.

    ``base_path``: the output base (``out/sub/a``); ``policy``: ``label.previews``. The entry:
    ``policy``, ``playable`` (the source plays in a browser), ``file`` (the preview's name
    beside the labels, or None), ``thumbs`` ({file, times_s} or None) and ``error`` (why a
    wanted preview is missing, or None). Never raises.
    """
    playable = browser_playable(video, codec)
    entry: dict[str, Any] = {
        "policy": policy, "playable": playable, "file": None, "thumbs": None, "error": None,
    }  # fmt: skip
    preview = base_path.with_name(base_path.name + PREVIEW_SUFFIX)
    if policy == "always" or (policy == "auto" and not playable):
        try:
            times = frame_times(video)
            make_preview(video, preview, times, timeout_s=120 + len(times) / 10)
            entry["file"] = preview.name
            return entry
        except Exception as error:  # noqa: BLE001 - a preview never fails the labels
            entry["error"] = str(error)
    preview.unlink(missing_ok=True)  # never leave one that no longer matches
    if not playable:
        thumbs = base_path.with_name(base_path.name + THUMBS_SUFFIX)
        try:
            shown = make_thumbnails(video, thumbs, sample_times_s)
            entry["thumbs"] = {"file": thumbs.name, "times_s": [round(t, 4) for t in shown]}
        except Exception as error:  # noqa: BLE001 - neither do thumbnails
            entry["error"] = "; ".join(filter(None, [entry["error"], str(error)]))
    return entry


def entry_current(entry: Any, base_path: Path, policy: str) -> bool:
    """Is a stored ``preview`` entry still what ``policy`` asks for, with its files present?"""
    if not isinstance(entry, dict) or entry.get("policy") != policy:
        return False
    folder = base_path.parent
    if entry.get("file") and not (folder / entry["file"]).is_file():
        return False
    thumbs = entry.get("thumbs")
    return not (thumbs and not (folder / thumbs["file"]).is_file())
