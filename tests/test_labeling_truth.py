"""pipeline/labeling/truth.py: ground truth beside the labels, and each video's frame metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.data.annotations import AnnotationError
from pipeline.jobs import VideoRecord
from pipeline.labeling.truth import load_truth, match, truth_views
from tests.helpers_labeling import document
from tests.helpers_video import index_frame

# document(): 20 native frames labelled background 0-3, stir 4-9, background 10-11,
# pour 12-15, background 16-17, stir 18-19 (tests/helpers_labeling.frame_labels).
EXACT_FRAMES = "video,start_frame,end_frame,label\nsub/a.mp4,4,10,stir\nsub/a.mp4,12,16,pour\n" \
    "sub/a.mp4,18,20,stir\n"  # fmt: skip


def write_video(path: Path) -> Path:
    """20 frames at 10 fps: the video document() describes."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for index in range(20):
        writer.write(index_frame(index))
    writer.release()
    return path


def dataset(tmp_path: Path, csv_text: str) -> tuple[Path, Path]:
    """document()'s video at data/sub/a.mp4 and the truth CSV beside data/."""
    (tmp_path / "data" / "sub").mkdir(parents=True)
    video = write_video(tmp_path / "data" / "sub" / "a.mp4")
    truth = tmp_path / "data" / "truth.csv"
    truth.write_text(csv_text)
    return video, truth


def views(tmp_path: Path, csv_text: str, record_path: Path | None = None):
    video, truth = dataset(tmp_path, csv_text)
    annotations = load_truth(truth, "frame", "background", tmp_path / "data", [".mp4"])
    record = VideoRecord("sub/a.mp4", "ok", path=str(record_path or video))
    return views_of(annotations, record)


def views_of(annotations, record):
    return truth_views(annotations, [record], {record.video: document()})[record.video]


def test_truth_equal_to_the_labels_scores_perfectly_frame_for_frame(tmp_path: Path) -> None:
    view = views(tmp_path, EXACT_FRAMES)
    assert view["error"] is None
    assert view["metrics"] == {"frame_accuracy": 1.0, "f1_macro": 1.0, "edit": 1.0,
                               "f1_10": 1.0, "f1_25": 1.0, "f1_50": 1.0}  # fmt: skip
    # frames become seconds through the video's own frame times, end exclusive
    assert view["segments"] == [["stir", 0.4, 1.0], ["pour", 1.2, 1.6], ["stir", 1.8, 2.0]]


def test_seconds_truth_is_read_at_each_frames_time(tmp_path: Path) -> None:
    # stir from frame 0 (4 frames too early), pour on time, the last stir missing
    text = "video,start,end,label\nsub/a.mp4,0.0,1.0,stir\nsub/a.mp4,1.2,1.6,pour\n"
    view = views(tmp_path, text)
    metrics = view["metrics"]
    assert metrics["frame_accuracy"] == pytest.approx(14 / 20, abs=1e-4)  # 4 early, 2 missed
    assert metrics["edit"] == pytest.approx(1 - 1 / 3, abs=1e-4)  # one of three segments missing
    assert view["segments"] == [["stir", 0.0, 1.0], ["pour", 1.2, 1.6]]


def test_a_copy_of_a_video_is_matched_by_its_unique_name(tmp_path: Path) -> None:
    video, truth = dataset(tmp_path, EXACT_FRAMES)
    annotations = load_truth(truth, "frame", "background", tmp_path / "data", [".mp4"])
    (tmp_path / "inbox").mkdir()
    copy = tmp_path / "inbox" / "a.mp4"
    copy.write_bytes(video.read_bytes())
    records = [VideoRecord("a.mp4", "ok", path=str(copy)), VideoRecord("b.mp4", "ok", path="b")]
    assert set(match(annotations, records)) == {"a.mp4"}
    view = truth_views(annotations, records, {"a.mp4": document(), "b.mp4": document()})
    assert view["a.mp4"]["metrics"]["frame_accuracy"] == 1.0
    assert view["b.mp4"] == {"segments": [], "metrics": None, "error": "no truth"}


def test_a_clip_truth_says_whether_the_label_is_right(tmp_path: Path) -> None:
    video, truth = dataset(tmp_path, "video,label\nsub/a.mp4,stir\n")
    annotations = load_truth(truth, "clip", None, tmp_path / "data", [".mp4"])
    view = views_of(annotations, VideoRecord("sub/a.mp4", "ok", path=str(video)))
    # document()'s dominant label is stir
    assert view["metrics"] == {"truth_label": "stir", "correct": True}
    assert view["segments"] == [["stir", 0.0, 2.0]]


def test_a_bad_truth_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("video,start,end,label\nmissing.mp4,0,1,stir\n")
    with pytest.raises(AnnotationError, match="truth.csv.*missing.mp4"):
        load_truth(truth, "frame", "background", tmp_path, [".mp4"])


def test_an_mstcn_folder_finds_its_videos_under_itself(tmp_path: Path) -> None:
    video, _ = dataset(tmp_path, EXACT_FRAMES)
    labels = "background\n" * 4 + "stir\n" * 6 + "background\n" * 2 + "pour\n" * 4 + \
        "background\n" * 2 + "stir\n" * 2  # fmt: skip
    (tmp_path / "data" / "groundTruth").mkdir()
    (tmp_path / "data" / "groundTruth" / "a.txt").write_text(labels)
    (tmp_path / "data" / "mapping.txt").write_text("0 background\n1 stir\n2 pour\n")
    # labelling a copy elsewhere: the MS-TCN folder still finds its own videos
    annotations = load_truth(tmp_path / "data", "frame", "background", tmp_path / "x", [".mp4"])
    view = views_of(annotations, VideoRecord("sub/a.mp4", "ok", path=str(video)))
    assert view["metrics"]["frame_accuracy"] == 1.0 and view["metrics"]["edit"] == 1.0
