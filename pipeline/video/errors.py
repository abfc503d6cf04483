"""Typed errors and warnings of video probing and decoding.

Every error message names the file and the cause, so that a batch job can log it and move on.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UserError


class VideoError(UserError):
    """Base of every error about one video file."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class VideoNotFoundError(VideoError):
    """The path does not exist."""


class NotAVideoError(VideoError):
    """Not a video container, or its header cannot be read (a directory, text, random bytes)."""


class UnreadableVideoError(VideoError):
    """The file exists but cannot be read (permissions, an I/O error)."""


class NoVideoStreamError(VideoError):
    """A readable media file without any video stream (audio only, empty container)."""


class EmptyVideoError(VideoError):
    """A video stream that holds no frames."""


class DecodeError(VideoError):
    """The decoder failed before it produced a single usable frame, or made no progress."""


class VideoWarning(UserWarning):
    """Base of the warnings a decode can raise while still returning correct frames."""


class TruncatedVideoWarning(VideoWarning):
    """The file ends (or breaks) before its last frame: the frames before the damage are kept."""


class DamagedVideoWarning(VideoWarning):
    """Damaged data inside the file: frames the decoder could not produce are left out (the
    others keep their own indices), or decoding stopped where the frames stopped matching the
    file's timestamps."""
