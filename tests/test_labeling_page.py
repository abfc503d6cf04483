"""pipeline/labeling/page.py: the self-contained review page (index.html) and its data.

What the page does in a browser is tested in tests/test_labeling_page_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.jobs import VideoRecord
from pipeline.labeling.page import CODE, page_data, render_index
from tests.helpers_labeling import CLASSES, MODEL, document


def record(name: str, stem: str, **fields) -> VideoRecord:
    return VideoRecord(
        name, "ok", path=f"/videos/{name}", base=stem, label="stir", score=0.8,
        outputs=[f"{stem}.labels.json", f"{stem}.segments.csv", f"{stem}.vtt"], **fields,
    )  # fmt: skip


def embedded(page: str) -> dict:
    """The page's inline JSON block."""
    match = re.search(r'<script type="application/json" id="vidtag-data">(.*?)</script>', page)
    assert match, "no data block"
    return json.loads(match.group(1))


def test_review_page_is_self_contained_with_one_entry_per_video() -> None:
    hostile = "</script><script>alert(1)</script>.mp4"
    records = [
        record("sub/a.mp4", "sub/a"),
        VideoRecord(hostile, "failed", error="bad & broken </script>"),
    ]
    page = render_index(records, {"sub/a.mp4": document()}, MODEL, output=Path("/out"))
    assert page.count("<script") == 2 and page.count("</script>") == 2  # data + code, no more
    assert "<style>" in page and 'rel="stylesheet"' not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no network, no external assets
    assert "http://" not in page and "https://" not in page
    data = embedded(page)
    assert [v["name"] for v in data["videos"]] == ["sub/a.mp4", hostile]
    assert data["videos"][1] == {"name": hostile, "status": "failed",
                                 "error": "bad & broken </script>"}  # fmt: skip
    assert data["classes"] == CLASSES and len(data["colours"]) == len(CLASSES)
    video = data["videos"][0]
    doc = document()
    assert len(video["segments"]) == len(doc["segments"])
    first = doc["segments"][0]
    assert video["segments"][0] == [CLASSES.index(first["label"]), first["start_s"],
                                    first["end_s"], first["start_frame"], first["end_frame"],
                                    round(first["score"], 3)]  # fmt: skip


def test_links_are_relative_to_the_page_and_url_encoded() -> None:
    records = [record(name, stem) for name, stem in
               (("take#2.mp4", "take#2"), ("50%.mp4", "50%"), ("a&b c.mp4", "a&b c"))]  # fmt: skip
    data = page_data(records, {r.video: document() for r in records}, MODEL, output=Path("/out"))
    files = [v["files"] for v in data["videos"]]
    assert files[0] == {"json": "take%232.labels.json", "csv": "take%232.segments.csv",
                        "vtt": "take%232.vtt"}  # fmt: skip
    assert files[1]["vtt"] == "50%25.vtt" and files[2]["csv"] == "a%26b%20c.segments.csv"
    # the videos relative to the page's folder (/out), never file:// URLs
    assert [v["source"] for v in data["videos"]] == [
        "../videos/take%232.mp4",
        "../videos/50%25.mp4",
        "../videos/a%26b%20c.mp4",
    ]
    assert [v["name"] for v in data["videos"]] == ["take#2.mp4", "50%.mp4", "a&b c.mp4"]


def test_the_player_plays_the_preview_else_the_playable_source_else_shows_thumbnails() -> None:
    preview = {"policy": "auto", "playable": False, "file": "a.preview.mp4", "thumbs": None,
               "error": None}  # fmt: skip
    playable = {**preview, "playable": True, "file": None}
    thumbs = {**preview, "file": None, "thumbs": {"file": "a.thumbs.jpg", "times_s": [0.0, 0.2]},
              "error": "ffmpeg failed (1): boom"}  # fmt: skip
    never = {**thumbs, "policy": "never", "error": None}
    docs = {}
    records = []
    for name, entry in (("p", preview), ("s", playable), ("t", thumbs), ("n", never), ("o", None)):
        records.append(record(f"sub/{name}.avi", f"sub/{name}"))
        docs[f"sub/{name}.avi"] = {**document(), "preview": entry}
    videos = page_data(records, docs, MODEL, output=Path("/videos"))["videos"]
    assert videos[0]["src"] == "sub/a.preview.mp4" and videos[0]["preview"] is True
    assert videos[1]["src"] == "sub/s.avi" == videos[1]["source"]
    assert "src" not in videos[2] and videos[2]["thumbs"] == "sub/a.thumbs.jpg"
    assert videos[2]["note"] == "the browser cannot play this video: ffmpeg failed (1): boom"
    assert "label.previews: never" in videos[3]["note"]
    assert videos[4]["src"] == "sub/o.avi"  # labelled before previews existed: try the video


def test_sample_scores_and_labels_travel_one_character_each() -> None:
    doc = document()
    video = page_data([record("sub/a.mp4", "sub/a")], {"sub/a.mp4": doc}, MODEL)["videos"][0]
    samples = doc["samples"]
    scores = [CODE.index(c) / 63 for c in video["samples"]["scores"]]
    assert max(abs(a - b) for a, b in zip(scores, samples["scores"], strict=True)) <= 0.5 / 63
    labels = [CLASSES[CODE.index(c)] for c in video["samples"]["labels"]]
    assert labels == samples["labels"]
    # evenly spaced sample times travel as start and step
    assert video["samples"]["start"] == 0.0 and video["samples"]["count"] == 10
    assert abs(video["samples"]["step"] - 0.2) < 1e-9


def test_truth_and_clip_scores_reach_the_page() -> None:
    clip_doc = {
        **document(),
        "clip": {
            "label": "stir",
            "score": 0.7,
            "scores": {"background": 0.1, "stir": 0.7, "pour": 0.2},
        },
    }
    truth = {"sub/a.mp4": {"segments": [["pour", 0.5, 1.0]], "metrics": {"edit": 1.0},
                           "error": None}}  # fmt: skip
    video = page_data([record("sub/a.mp4", "sub/a")], {"sub/a.mp4": clip_doc}, MODEL, truth)
    entry = video["videos"][0]
    assert entry["top"] == [[1, 0.7], [2, 0.2], [0, 0.1]]  # best first
    assert entry["truth"] == [[2, 0.5, 1.0]] and entry["metrics"] == {"edit": 1.0}
    assert video["truth"] is True
