"""Video errors and warnings: each error names the file and the cause, is a UserError (the CLI
prints it and exits 2), and the warnings are one family a caller can filter as a whole."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.video.errors import (
    DamagedVideoWarning,
    DecodeError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoWarning,
    UnreadableVideoError,
    VideoError,
    VideoNotFoundError,
    VideoWarning,
)

ERRORS = [
    VideoError,
    VideoNotFoundError,
    NotAVideoError,
    UnreadableVideoError,
    NoVideoStreamError,
    EmptyVideoError,
    DecodeError,
]


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize("path", ["clips/a.mp4", Path("clips") / "a.mp4"])
def test_each_error_names_the_file_and_the_cause(error: type[VideoError], path) -> None:
    raised = error(path, "the cause")
    assert str(raised) == "clips/a.mp4: the cause"
    assert (raised.path, raised.cause) == ("clips/a.mp4", "the cause")


@pytest.mark.parametrize("error", ERRORS)
def test_every_error_is_a_video_error_and_a_user_error(error: type[VideoError]) -> None:
    assert issubclass(error, VideoError) and issubclass(error, UserError)


@pytest.mark.parametrize("error", ERRORS)
def test_a_caught_error_is_told_apart_by_its_type(error: type[VideoError]) -> None:
    with pytest.raises(error):
        raise error("a.mp4", "cause")
    others = [other for other in ERRORS[1:] if other is not error]
    assert not any(isinstance(error("a.mp4", "cause"), other) for other in others)


@pytest.mark.parametrize("warning", [TruncatedVideoWarning, DamagedVideoWarning])
def test_warnings_are_one_family_of_user_warnings(warning: type[VideoWarning]) -> None:
    assert issubclass(warning, VideoWarning) and issubclass(warning, UserWarning)
    assert not issubclass(warning, UserError)
    with pytest.warns(VideoWarning, match="cut at frame 12"):
        warnings.warn(warning("a.mp4: cut at frame 12"), stacklevel=1)
