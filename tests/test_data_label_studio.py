"""pipeline/data/label_studio.py: Label Studio's frame numbering both ways, and its JSON export
(one that Label Studio 1.23.2 itself wrote, tests/data/label_studio) read as frame labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.data.annotations import AnnotationError, Segment, VideoAnnotation, load_annotations
from pipeline.data.label_studio import ls_frame, ls_range, range_seconds, read_label_studio

DATA = Path(__file__).parent / "data" / "label_studio"
# The labels.json the committed tasks came from: 90 frames at 30 fps, frames 0-29 pour,
# frame 30 stir, frames 60-89 pour; Label Studio turned the predictions into an annotation.
EXPECTED = ["pour"] * 30 + ["stir"] + ["background"] * 29 + ["pour"] * 30


@pytest.mark.parametrize(
    ("time_s", "fps", "frame"),
    [(0.0, 30, 1), (1 / 30, 30, 2), (0.9999999 / 30, 30, 2), (1.0, 25, 26), (1.001, 29.97, 31)],
)
def test_a_time_is_the_nearest_1_based_frame(time_s, fps, frame) -> None:
    assert ls_frame(time_s, fps) == frame


@pytest.mark.parametrize(
    ("span", "frames", "expected"),
    [
        ((0.0, 1.0), 90, (1, 30)),  # native frames 0..29: Label Studio 1..30, end inclusive
        ((1.0, 1.0 + 1 / 30), 90, (31, 31)),  # one frame: start == end
        ((2.0, 3.02), 90, (61, 90)),  # a duration a little past the last frame: clamped
    ],
)
def test_a_half_open_span_becomes_an_inclusive_range(span, frames, expected) -> None:
    assert ls_range(*span, fps=30.0, frame_count=frames) == expected


def per_frame(segments_frames: list[tuple[int, int, str]], count: int) -> list[str]:
    labels = ["background"] * count
    for start, end, label in segments_frames:
        labels[start:end] = [label] * (end - start)
    return labels


@pytest.mark.parametrize("fps", [24.0, 25.0, 29.97, 30.0, 59.94])
@pytest.mark.parametrize("jitter", [0.0, 1e-7, -1e-7])
def test_export_then_import_labels_every_native_frame_as_before(fps, jitter) -> None:
    """Frame runs -> real times -> Label Studio ranges -> seconds -> label of every frame."""
    rng = np.random.default_rng(int(fps * 100))
    count = 400
    cuts = np.sort(rng.choice(np.arange(1, count), 12, replace=False))
    runs = [
        (int(a), int(b), f"c{i % 3}")
        for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True))
        if i % 2 == 0
    ]
    times = np.arange(count) / fps + jitter  # (frames,) as a decoder reports them
    times[0] = max(times[0], 0.0)
    segments = []
    for start, end, label in runs:
        end_s = times[end] if end < count else count / fps
        first, last = ls_range(float(times[start]), float(end_s), fps, count)
        segments.append(Segment(*range_seconds(first, last, fps), label))
    item = VideoAnnotation("v.mp4", Path("v.mp4"), segments=tuple(segments), unit="seconds")
    assert item.labels_at(np.arange(count), times) == per_frame(runs, count)


def export_setup(tmp_path: Path, export: Path) -> DataConfig:
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    (videos / "sub" / "a b.mp4").write_bytes(b"not read")
    copied = tmp_path / "export.json"
    shutil.copy(export, copied)
    return DataConfig(task="frame", videos=videos, annotations=copied)


def test_label_studios_own_export_reads_back_frame_for_frame(tmp_path) -> None:
    cfg = export_setup(tmp_path, DATA / "export_1.23.2.json")
    annotations = load_annotations(cfg)
    assert annotations.task == "frame" and annotations.classes == ["background", "pour", "stir"]
    (item,) = annotations.items
    assert item.video == "sub/a b.mp4" and item.path == cfg.videos.resolve() / "sub" / "a b.mp4"
    assert item.labels_at(np.arange(90), np.arange(90) / 30.0) == EXPECTED


def edited_export(tmp_path: Path, edit) -> DataConfig:
    tasks = json.loads((DATA / "export_1.23.2.json").read_text())
    edit(tasks[0])
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(tasks))
    return export_setup(tmp_path, path)


def _newer_correction(task: dict) -> None:
    corrected = json.loads(json.dumps(task["annotations"][0]))
    corrected.update(id=2, updated_at="2030-01-01T00:00:00Z")
    corrected["result"] = corrected["result"][:1]  # the reviewer deleted stir and second pour
    cancelled = {**corrected, "id": 3, "was_cancelled": True, "updated_at": "2031-01-01T00:00:00Z"}
    task["annotations"] += [corrected, cancelled]


def test_the_latest_annotation_that_was_not_cancelled_counts(tmp_path) -> None:
    (item,) = load_annotations(edited_export(tmp_path, _newer_correction)).items
    assert (
        item.labels_at(np.arange(90), np.arange(90) / 30.0) == ["pour"] * 30 + ["background"] * 60
    )


def test_whole_numbers_written_as_floats_are_frames(tmp_path) -> None:
    def edit(task: dict) -> None:
        for region in _regions(task):
            span = region["value"]["ranges"][0]
            span.update(start=float(span["start"]), end=float(span["end"]))

    (item,) = load_annotations(edited_export(tmp_path, edit)).items
    assert item.labels_at(np.arange(90), np.arange(90) / 30.0) == EXPECTED


def test_the_video_is_found_from_its_url_without_vidtags_own_field(tmp_path) -> None:
    def edit(task: dict) -> None:
        del task["data"]["vidtag_video"]
        task["data"]["video"] = "/data/upload/7/1a2b3c4d-a%20b.mp4"  # an uploaded copy

    (item,) = load_annotations(edited_export(tmp_path, edit)).items
    assert item.video == "sub/a b.mp4"


def _regions(task: dict) -> list[dict]:
    return task["annotations"][0]["result"]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: t["data"].pop("fps"), "task 1: no frame rate"),
        (lambda t: t["data"].update(vidtag_video="x.mp4", video="/x.mp4"), "task 1: no video"),
        (
            lambda t: _regions(t)[1]["value"]["ranges"][0].update(start=30, end=31),
            "task 1: frames 30-31 'stir' overlap frames 1-30 'pour'",
        ),
        (
            lambda t: _regions(t)[0]["value"].update(timelinelabels=["pour", "stir"]),
            "region vidtag0 has labels ['pour', 'stir']",
        ),
        (
            lambda t: _regions(t)[0]["value"]["ranges"][0].update(start=0),
            "region vidtag0 has a bad range",
        ),
        (
            lambda t: _regions(t)[0]["value"]["ranges"][0].update(start=1.5),
            "region vidtag0 has a bad range {'start': 1.5, 'end': 30} (video frames are whole",
        ),
        (lambda t: t.update(annotations=[]), "no annotated tasks among 1"),
    ],
)
def test_problems_name_the_file_the_task_and_what_is_wrong(tmp_path, edit, problem) -> None:
    cfg = edited_export(tmp_path, edit)
    with pytest.raises(AnnotationError, match="export.json: ") as caught:
        load_annotations(cfg)
    assert problem in str(caught.value)


def test_an_export_is_frame_labels_only(tmp_path) -> None:
    cfg = export_setup(tmp_path, DATA / "export_1.23.2.json").model_copy(update={"task": "clip"})
    with pytest.raises(AnnotationError, match="a Label Studio JSON export holds frame labels"):
        load_annotations(cfg)


@pytest.mark.parametrize(
    ("text", "problem"), [("{", "not JSON"), ('{"a": 1}', "expected a Label Studio JSON export")]
)
def test_a_file_that_is_not_an_export_says_so(tmp_path, text, problem) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=problem):
        read_label_studio(path, tmp_path)
