"""pipeline/labeling/folder.py with previews: made beside the labels, resumed, never failing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers_review import Folder, label_into

pytestmark = pytest.mark.slow  # labels a folder (the session's review_folder)


def docs(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in out.glob("*.labels.json")}


def test_previews_are_made_for_what_a_browser_cannot_play(review_folder: Folder) -> None:
    out = review_folder.output
    labels = docs(out)
    assert set(labels) == {"camera.labels.json", "video_000.labels.json", "video_001.labels.json"}
    for name, doc in labels.items():
        stem = name.removesuffix(".labels.json")
        assert doc["preview"] == {
            "policy": "auto",
            "playable": False,
            "file": f"{stem}.preview.mp4",
            "thumbs": None,
            "error": None,
        }
        assert (out / f"{stem}.preview.mp4").is_file()
    assert [r.status for r in review_folder.records] == ["failed", "ok", "ok", "ok"]


def test_a_second_run_skips_and_a_missing_preview_alone_is_made_again(
    review_folder: Folder, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(review_folder.output, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    records = label_into(review_folder.input, out, review_folder.cfg, review_folder.model)
    assert [r.status for r in records] == ["failed", "skipped", "skipped", "skipped"]
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"}  # fmt: skip

    (out / "camera.preview.mp4").unlink()
    segments_before = docs(out)["camera.labels.json"]["segments"]
    records = label_into(review_folder.input, out, review_folder.cfg, review_folder.model)
    assert [r.status for r in records] == ["failed", "ok", "skipped", "skipped"]
    assert (out / "camera.preview.mp4").is_file()
    assert docs(out)["camera.labels.json"]["segments"] == segments_before
    assert (out / "video_000.preview.mp4").stat().st_mtime_ns == before["video_000.preview.mp4"]

    # label.previews changed: previews go, thumbnails come, labels stay
    cfg = review_folder.cfg.model_copy(deep=True)
    cfg.label.previews = "never"
    records = label_into(review_folder.input, out, cfg, review_folder.model)
    assert [r.status for r in records] == ["failed", "ok", "ok", "ok"]
    assert not list(out.glob("*.preview.mp4"))
    assert sorted(p.name for p in out.glob("*.thumbs.jpg")) == [
        "camera.thumbs.jpg",
        "video_000.thumbs.jpg",
        "video_001.thumbs.jpg",
    ]


def test_a_failing_preview_never_fails_the_labels(
    review_folder: Folder, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    out = tmp_path / "out"
    records = label_into(review_folder.input, out, review_folder.cfg, review_folder.model)
    assert [r.status for r in records] == ["failed", "ok", "ok", "ok"]
    camera = docs(out)["camera.labels.json"]["preview"]
    assert camera["file"] is None and "no-ffmpeg" in camera["error"]
    assert camera["thumbs"]["file"] == "camera.thumbs.jpg"
