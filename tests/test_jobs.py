"""Per-video records and the job summary: counts, throughput over the ok videos, table rows,
the flow's plain-data return value, and the text and markdown a user reads."""

from __future__ import annotations

import pickle

import pytest

from pipeline.jobs import JobSummary, VideoRecord


def _summary() -> JobSummary:
    summary = JobSummary("extract", extractor_key="0123456789abcdef0123")
    summary.add(VideoRecord("a.mp4", "ok", video_key="k1", frames=100, seconds=2.0))
    summary.add(VideoRecord("b.mp4", "skipped", video_key="k2", frames=7, seconds=0.1))
    summary.add(VideoRecord("c.mp4", "ok", frames=50, seconds=3.0, warnings=["cut short"]))
    summary.add(VideoRecord("d.mp4", "ok", frames=9).failed("d.mp4: no such file"))
    return summary


@pytest.mark.parametrize(("status", "count"), [("ok", 2), ("skipped", 1), ("failed", 1)])
def test_counts_by_status(status: str, count: int) -> None:
    assert _summary().count(status) == count


def test_throughput_counts_only_the_videos_done_now() -> None:
    summary = _summary()
    assert (summary.frames, summary.seconds, summary.frames_per_s) == (150, 5.0, 30.0)
    assert JobSummary("label").frames_per_s == 0.0  # nothing done: no division by zero


def test_failed_is_a_copy_with_the_reason() -> None:
    record = VideoRecord("d.mp4", "ok", frames=9)
    failed = record.failed("boom")
    assert (failed.status, failed.error, failed.frames) == ("failed", "boom", 9)
    assert record.status == "ok" and record.error is None


def test_rows_and_the_flows_return_value() -> None:
    summary = _summary()
    assert summary.rows()[3] == {
        "video": "d.mp4", "status": "failed", "frames": 9, "seconds": 0.0,
        "error": "d.mp4: no such file", "host": None,
    }  # fmt: skip
    data = summary.to_dict()
    assert {k: data[k] for k in ("videos", "ok", "skipped", "failed", "frames")} == {
        "videos": 4, "ok": 2, "skipped": 1, "failed": 1, "frames": 150,
    }  # fmt: skip
    assert data["failures"] == [{"video": "d.mp4", "error": "d.mp4: no such file"}]
    assert data["records"][2]["warnings"] == ["cut short"] and data["frames_per_s"] == 30.0


def test_text_and_markdown_name_each_failure() -> None:
    text = _summary().text()
    assert text == (
        "extract: 4 videos: 2 ok, 1 skipped, 1 failed; 150 frames at 30.0 frames/s\n"
        "  FAILED d.mp4: d.mp4: no such file"
    )
    assert _summary().markdown() == text.replace("\n", "  \n")


def test_a_record_crosses_processes() -> None:
    record = VideoRecord("a.mp4", "ok", path="/in/a.mp4", label="cat", score=0.9, outputs=["x"])
    assert pickle.loads(pickle.dumps(record)) == record


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 videos"), (1, "1 video"), (2, "2 videos")],
)
def test_plural_counts_in_the_right_number(count: int, expected: str) -> None:
    from pipeline.jobs import plural

    assert plural(count, "video") == expected
    assert plural(count, "entry", "entries").endswith("entry" if count == 1 else "entries")


def test_a_one_video_summary_says_video() -> None:
    summary = JobSummary("label", records=[VideoRecord("a.mp4", "ok", frames=3, seconds=1.0)])
    assert summary.text().startswith("label: 1 video: 1 ok")
