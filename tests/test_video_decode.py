"""pipeline/video/decode.py: VideoInfo comes back typed from a feature-store header."""

from __future__ import annotations

import json

import pytest

from pipeline.video.decode import VideoInfo
from tests.helpers_labeling import (
    INFO,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (INFO.to_dict(), INFO),
        ({**INFO.to_dict(), "decoder_extra": 1}, INFO),  # a newer header's extra key
        ({k: getattr(INFO, k) for k in ("fps", "frames", "duration_s", "width", "height")},
         VideoInfo("", 20, 10.0, 2.0, 64, 48, 0, "unknown", "unknown")),  # an older header
    ],
)  # fmt: skip
def test_video_info_comes_back_typed_from_a_store_header(header, expected) -> None:
    assert VideoInfo.from_dict(json.loads(json.dumps(header))) == expected
