"""pipeline/labeling/label_studio.py: a labelled folder -> Label Studio tasks and label config
(`vidtag export`); read back, the tasks' predictions give the same labels frame for frame."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.colours import class_colours
from pipeline.data.label_studio import read_label_studio
from pipeline.labeling.label_studio import ExportError, export_label_studio

CLASSES = ["background", "pour", "stir"]


def labels_doc(video_path: Path, key: str, segments: list[tuple[int, int, str]], fps: float,
               frames: int) -> dict:  # fmt: skip
    """A labels.json as `vidtag label` writes it (the fields the export reads)."""
    return {
        "schema": "vidtag.labels/1",
        "video": key,
        "path": str(video_path),
        "video_sha256": "ab" * 32,
        "info": {
            "fps": fps,
            "frames": frames,
            "duration_s": frames / fps,
            "width": 64,
            "height": 48,
        },  # fmt: skip
        "model": {
            "uri": "models:/m@candidate",
            "run_id": "r",
            "version": "3",
            "task": "frame",
            "classes": CLASSES,
            "background": "background",
        },  # fmt: skip
        "summary": {"label": "pour", "score": 0.75},
        "segments": [
            {
                "label": label,
                "start_s": s / fps,
                "end_s": e / fps,
                "start_frame": s,
                "end_frame": e,
                "score": 0.75,
            }  # fmt: skip
            for s, e, label in segments
        ],
    }


VIDEOS = {
    "kitchen/a b.mp4": ([(0, 12, "pour"), (12, 13, "stir"), (40, 50, "pour")], 25.0, 50),
    "c.mp4": ([(3, 7, "stir")], 29.97, 20),
}


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, Path]:
    """(input folder with the videos, output folder with their labels.json)."""
    videos, out = tmp_path / "in", tmp_path / "out"
    for key, (segments, fps, frames) in VIDEOS.items():
        path = videos / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"video")
        doc = labels_doc(path, key, segments, fps, frames)
        target = out / Path(key).with_suffix(".labels.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(doc))
    return videos, out


def test_tasks_carry_the_segments_as_1_based_inclusive_frame_ranges(labelled, tmp_path) -> None:
    _, out = labelled
    summary = export_label_studio(out, tmp_path / "ls")
    assert (summary.tasks, summary.regions, summary.classes) == (2, 4, ["pour", "stir"])
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    by_video = {t["data"]["vidtag_video"]: t for t in tasks}
    task = by_video["kitchen/a b.mp4"]
    assert task["data"]["video"] == "/data/local-files/?d=kitchen/a%20b.mp4"
    assert task["data"]["fps"] == 25.0 and task["data"]["frames"] == 50
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "vidtag models:/m@candidate 3"
    values = [r["value"] for r in prediction["result"]]
    ranges = [(v["ranges"][0]["start"], v["ranges"][0]["end"], v["timelinelabels"]) for v in values]
    assert ranges == [(1, 12, ["pour"]), (13, 13, ["stir"]), (41, 50, ["pour"])]
    assert {r["type"] for r in prediction["result"]} == {"timelinelabels"}


def test_the_label_config_has_one_label_per_class_in_vidtags_colours(labelled, tmp_path) -> None:
    _, out = labelled
    export_label_studio(out, tmp_path / "ls")
    root = ET.fromstring((tmp_path / "ls" / "label_config.xml").read_text())
    video = root.find("Video")
    assert video.get("value") == "$video" and video.get("frameRate") == "$fps"
    timeline = root.find("TimelineLabels")
    assert timeline.get("toName") == video.get("name")
    colours = class_colours(CLASSES, "background")
    assert [(label.get("value"), label.get("background")) for label in timeline] == [
        ("pour", colours["pour"]), ("stir", colours["stir"]),
    ]  # fmt: skip


def accept_predictions(tasks: list[dict]) -> list[dict]:
    """What Label Studio's "Create Annotations From Predictions" action stores (the real tool
    does this in tests/test_labeling_label_studio_interop.py)."""
    return [
        {**task, "id": i, "annotations": [{"id": i, "result": task["predictions"][0]["result"]}]}
        for i, task in enumerate(tasks, start=1)
    ]


def test_accepted_predictions_read_back_frame_for_frame(labelled, tmp_path) -> None:
    videos, out = labelled
    export_label_studio(out, tmp_path / "ls")
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    (tmp_path / "export.json").write_text(json.dumps(accept_predictions(tasks)))
    annotations = read_label_studio(tmp_path / "export.json", videos)
    for item in annotations.items:
        segments, fps, frames = VIDEOS[item.video]
        expected = ["background"] * frames
        for start, end, label in segments:
            expected[start:end] = [label] * (end - start)
        assert item.labels_at(np.arange(frames), np.arange(frames) / fps) == expected, item.video


def test_videos_outside_the_document_root_are_refused(labelled, tmp_path) -> None:
    _, out = labelled
    with pytest.raises(ExportError, match="not under the document root"):
        export_label_studio(out, tmp_path / "ls", document_root=tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda p: None, "not a folder of labels"),
        (lambda p: p.mkdir(), "no *.labels.json files"),
        (lambda p: (p.mkdir(), (p / "x.labels.json").write_text("{}")), "not a vidtag.labels/1"),
    ],
)
def test_a_folder_without_labels_is_a_clear_error(tmp_path, setup, problem) -> None:
    folder = tmp_path / "labels"
    setup(folder)
    with pytest.raises(ExportError, match=problem.replace("*", r"\*")):
        export_label_studio(folder, tmp_path / "ls")


def test_cli_exports_and_says_what_it_wrote(labelled, tmp_path) -> None:
    _, out = labelled
    target = tmp_path / "ls"
    result = CliRunner().invoke(
        app, ["export", str(out), "--to", "label-studio", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "2 tasks, 4 regions, 2 classes" in result.output
    assert (target / "tasks.json").is_file() and (target / "label_config.xml").is_file()


def test_cli_refuses_an_unknown_tool(labelled, tmp_path) -> None:
    _, out = labelled
    result = CliRunner().invoke(app, ["export", str(out), "--to", "cvat", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "only label-studio" in result.output
