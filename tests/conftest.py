"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}

# Keep every tool's state inside the test session, never in the user's home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def shared_video_files() -> list[Path]:
    """The real test videos in ../shared/data/videos (empty when that folder is absent)."""
    if not SHARED_VIDEOS.is_dir():
        return []
    return sorted(p for p in SHARED_VIDEOS.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


@pytest.fixture(scope="session")
def shared_videos() -> list[Path]:
    files = shared_video_files()
    if not files:
        pytest.skip("../shared/data/videos is absent: real-video tests skipped")
    return files
