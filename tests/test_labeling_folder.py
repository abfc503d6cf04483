"""pipeline/labeling/folder.py: which videos a run labels and where their outputs go."""

from __future__ import annotations

from pipeline.labeling.folder import output_bases
from pipeline.labeling.outputs import (
    OutputPaths,
)


def test_output_bases_mirror_folders_and_keep_the_extension_on_shared_stems(tmp_path) -> None:
    names = ["a.mp4", "a.AVI", "b.mp4", "sub/a.mp4", "sub/c.mkv", "sub/C.mov"]
    videos = [tmp_path / name for name in names]
    bases = output_bases(videos, tmp_path)
    assert [bases[v] for v in videos] == [
        "a.mp4",
        "a.AVI",
        "b",
        "sub/a",
        "sub/c.mkv",
        "sub/C.mov",
    ]
    paths = OutputPaths.at(tmp_path / "out", "sub/a.mp4")
    assert [p.name for p in paths] == ["a.mp4.labels.json", "a.mp4.segments.csv", "a.mp4.vtt"]


def test_plan_folder_names_each_video_and_its_output_base(tmp_path) -> None:
    from pipeline.labeling.folder import PlannedVideo, plan_folder

    for name in ("a.mp4", "sub/b.mp4", "sub/b.avi", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    root = tmp_path.resolve()
    expected = [
        PlannedVideo(root / "a.mp4", "a.mp4", "a"),
        PlannedVideo(root / "sub/b.avi", "sub/b.avi", "sub/b.avi"),
        PlannedVideo(root / "sub/b.mp4", "sub/b.mp4", "sub/b.mp4"),
    ]
    assert sorted(plan_folder(tmp_path, [".mp4", ".avi"])) == expected
    # A single file: its folder is the root, as for a manifest.
    assert plan_folder(tmp_path / "sub" / "b.mp4", [".mp4"]) == [
        PlannedVideo(root / "sub/b.mp4", "b.mp4", "b")
    ]
