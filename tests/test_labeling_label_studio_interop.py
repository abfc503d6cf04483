"""The Label Studio round trip against the real tool: a folder labelled by a trained model ->
`vidtag export` -> a Label Studio server (its own virtual environment, `make test-interop`)
-> predictions accepted as annotations, one corrected through the API -> the tool's JSON export
-> `data.annotations` -> the same label on every native frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers_label_studio import label_studio_executable, round_trip, running_label_studio

pytestmark = [pytest.mark.slow, pytest.mark.interop]


@pytest.fixture(scope="module")
def label_studio_exe() -> Path:
    executable = label_studio_executable()
    if executable is None:
        pytest.skip(
            "Label Studio is not installed in .venv-interop (run `make test-interop`, which "
            "creates it) and $VIDTAG_LABEL_STUDIO names no label-studio executable"
        )
    return executable


def native_frame_labels(doc: dict, store_root: Path) -> tuple[list[str], np.ndarray]:
    """Every native frame's label as `vidtag label` wrote it, and the frames' real times."""
    from pipeline.features.store import FeatureStore
    from pipeline.labeling.segments import expand_frame_runs

    store = FeatureStore(store_root)
    entry = store.get(store.video_key(Path(doc["path"])), doc["model"]["extractor"]["key"])
    count = doc["frames"]["count"]
    times = entry.frame_times_s if entry.frame_times_s is not None else None
    if times is None or len(times) != count:
        times = np.arange(count) / doc["info"]["fps"]
    return expand_frame_runs(doc["frames"]), np.asarray(times)


def test_tasks_round_trip_through_label_studio_frame_for_frame(
    labelled, label_studio_exe, tmp_path
) -> None:
    from pipeline.config import DataConfig
    from pipeline.data.annotations import load_annotations
    from pipeline.labeling.label_studio import export_label_studio

    summary = export_label_studio(labelled.output, tmp_path / "ls")
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    config = (tmp_path / "ls" / "label_config.xml").read_text()
    assert summary.tasks == len(tasks) >= 5 and summary.regions > 0
    with running_label_studio(label_studio_exe, tmp_path / "home", labelled.input) as server:
        exported = round_trip(server, tasks, config)
        # A reviewer corrects one video: the first region removed, saved as a new annotation.
        first = next(t for t in exported if len(t["annotations"][0]["result"]) > 1)
        corrected = first["annotations"][0]["result"][1:]
        server.call("POST", f"/api/tasks/{first['id']}/annotations", {"result": corrected})
        project = first["project"]
        exported = server.call("GET", f"/api/projects/{project}/export?exportType=JSON")
    (tmp_path / "export.json").write_text(json.dumps(exported))
    assert all(t["annotations"] for t in exported), "every task has its accepted prediction"
    cfg = DataConfig(task="frame", videos=labelled.input, annotations=tmp_path / "export.json")
    annotations = load_annotations(cfg)
    items = {item.video: item for item in annotations.items}
    docs = {doc["video"]: doc for doc in map(json.loads, _labels_files(labelled.output))}
    assert set(items) == set(docs)
    store_root = Path(labelled.trained.cfg.features.store)
    corrected_video = first["data"]["vidtag_video"]
    for video, doc in docs.items():
        expected, times = native_frame_labels(doc, store_root)
        if video == corrected_video:  # the removed region's frames are background now
            first_segment = doc["segments"][0]
            start, end = first_segment["start_frame"], first_segment["end_frame"]
            expected[start:end] = [doc["model"]["background"]] * (end - start)
        got = items[video].labels_at(np.arange(len(expected)), times)
        wrong = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
        assert not wrong, f"{video}: {len(wrong)} frames differ, first {wrong[:5]}"


def _labels_files(folder: Path) -> list[str]:
    return [path.read_text() for path in sorted(folder.rglob("*.labels.json"))]
