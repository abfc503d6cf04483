"""pipeline/labeling/outputs.py: labels.json, segments.csv, .vtt, summary.csv, skip rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.jobs import VideoRecord
from pipeline.labeling.outputs import (
    LABELS_SCHEMA,
    OutputPaths,
    current_document,
    segments_csv_text,
    summary_csv_text,
    vtt_text,
    vtt_time,
    write_if_changed,
    write_outputs,
)
from pipeline.labeling.segments import (
    labels_from_clip,
)
from tests.helpers_labeling import (
    CLASSES,
    INFO,
    MODEL,
    document,
    frame_labels,
    parse_vtt,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00.000"), (1.2345, "00:00:01.234"), (61.0005, "00:01:01.000"),
     (3661.5, "01:01:01.500"), (-0.001, "00:00:00.000")],
)  # fmt: skip
def test_vtt_time(seconds: float, text: str) -> None:
    assert vtt_time(seconds) == text


def test_vtt_has_one_cue_per_segment_with_label_and_score() -> None:
    segments = frame_labels().segments + [
        {"label": "a<b>&c", "start_s": 5.0, "end_s": 5.0, "score": 0.5}
    ]
    cues = parse_vtt(vtt_text(segments))
    assert cues[:2] == [(0.4, 1.0, "stir (0.80)"), (1.2, 1.6, "pour (0.80)")]
    assert cues[-1] == (5.0, 5.001, "a&lt;b&gt;&amp;c (0.50)")  # never empty, escaped
    assert vtt_text([]).startswith("WEBVTT\n")


def test_segments_and_summary_csv(tmp_path) -> None:
    text = segments_csv_text(frame_labels().segments)
    assert text.splitlines()[:2] == [
        "label,start_s,end_s,start_frame,end_frame,score",
        "stir,0.4,1.0,4,10,0.8",
    ]
    records = [
        VideoRecord("a.mp4", "ok", label="stir", score=0.81234),
        VideoRecord("b,c.mp4", "failed", error="not a video"),
    ]
    assert summary_csv_text(records).splitlines() == [
        "video,status,label,score,error",
        "a.mp4,ok,stir,0.8123,",
        '"b,c.mp4",failed,,,not a video',
    ]


def test_labels_json_info_keeps_exactly_its_five_fields() -> None:
    info = document()["info"]
    assert info == {"fps": 10.0, "frames": 20, "duration_s": 2.0, "width": 64, "height": 48}
    assert list(info) == ["fps", "frames", "duration_s", "width", "height"]


def test_documents_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    clip_model = {**MODEL, "task": "clip"}
    clip_doc = document(labels_from_clip(np.array([0.1, 0.7, 0.2]), CLASSES, INFO))
    clip_doc["model"] = clip_model
    for doc in (document(), clip_doc):
        jsonschema.validate(json.loads(json.dumps(doc)), LABELS_SCHEMA)
    broken = document()
    broken["segments"][0].pop("end_frame")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, LABELS_SCHEMA)


def test_outputs_are_current_only_for_the_same_video_model_and_options(tmp_path) -> None:
    paths = OutputPaths.at(tmp_path, "sub/a")
    doc = document()
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    write_outputs(paths, doc)
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) == doc
    assert current_document(paths, "1" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    assert current_document(paths, "0" * 64, "e" * 64, {"min_segment_s": 0.0}) is None
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 1.0}) is None
    paths.vtt.unlink()  # a run killed between two files
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    paths.labels_json.write_text("{not json")
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_write_if_changed_leaves_identical_files_alone(tmp_path) -> None:
    path = tmp_path / "summary.csv"
    assert write_if_changed(path, "a\n")
    before = path.stat().st_mtime_ns
    assert not write_if_changed(path, "a\n")
    assert path.stat().st_mtime_ns == before
    assert write_if_changed(path, "b\n") and path.read_text() == "b\n"


def test_labels_json_text_is_valid_json_with_one_segment_per_line(tmp_path) -> None:
    from pipeline.labeling.outputs import document_text

    doc = document()
    text = document_text(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    assert len(text.splitlines()) == len(doc) + len(doc["segments"]) + 3
    assert document_text({**doc, "segments": []}).count("\n") == len(doc) + 2
