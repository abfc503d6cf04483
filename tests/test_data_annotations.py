"""Annotation readers: every format to the same Annotations, every error kind, alignment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.data.annotations import (
    AnnotationError,
    Annotations,
    Segment,
    VideoAnnotation,
    load_annotations,
    read_class_names,
)
from pipeline.errors import UserError

CLIP_VIDEOS = {"cook/a.mp4": "cook", "cook/b.mp4": "cook", "wash/c.mov": "wash"}
# Native frame segments of the frame dataset at FPS; frames outside them are background.
FPS = 4
FRAME_SEGMENTS = {"v1.mp4": [(4, 8, "pour"), (8, 12, "stir")], "v2.mp4": [(2, 6, "stir")]}


def touch(path: Path) -> Path:
    """A placeholder video: the readers only check that the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def clip_videos(root: Path) -> Path:
    for key in CLIP_VIDEOS:
        touch(root / key)
    return root


# --- clip formats parse to the same Annotations ----------------------------------------------


def clip_folder(root: Path) -> DataConfig:
    return DataConfig(task="clip", videos=clip_videos(root))


def clip_folder_as_annotations(root: Path) -> DataConfig:
    return DataConfig(task="clip", annotations=clip_videos(root))


def clip_csv(root: Path) -> DataConfig:
    rows = "".join(f"{key},{label}\n" for key, label in CLIP_VIDEOS.items())
    return DataConfig(
        task="clip", annotations=write(clip_videos(root) / "l.csv", "video,label\n" + rows)
    )


def clip_mmaction(root: Path) -> DataConfig:
    ids = {"cook": 0, "wash": 1}
    lines = "".join(f"{key} {ids[label]}\n" for key, label in CLIP_VIDEOS.items())
    listing = write(clip_videos(root) / "train_list.txt", "# comment\n\n" + lines)
    names = write(root / "classes.txt", "cook\nwash\n")
    return DataConfig(task="clip", annotations=listing, class_names=names)


@pytest.mark.parametrize(
    "make_config", [clip_folder, clip_folder_as_annotations, clip_csv, clip_mmaction]
)
def test_clip_formats_parse_to_the_same_annotations(
    tmp_path: Path, make_config: Callable[[Path], DataConfig]
) -> None:
    root = tmp_path / "data"
    annotations = load_annotations(make_config(root))
    expected = Annotations(
        task="clip",
        classes=["cook", "wash"],
        items=[
            VideoAnnotation(key, (root / key).resolve(), label=label)
            for key, label in CLIP_VIDEOS.items()
        ],
    )
    assert annotations == expected
    assert annotations.root == root.resolve()


def test_folder_per_class_skips_other_extensions_hidden_and_loose_files(tmp_path: Path) -> None:
    root = clip_videos(tmp_path / "data")
    for extra in ("cook/notes.txt", "cook/.hidden.mp4", ".cache/x.mp4", "loose.mp4"):
        touch(root / extra)
    touch(root / "wash" / "sub" / "d.MP4")
    annotations = load_annotations(DataConfig(task="clip", videos=root))
    assert [i.video for i in annotations.items] == [*CLIP_VIDEOS, "wash/sub/d.MP4"]
    assert annotations.classes == ["cook", "wash"]


def test_declared_class_names_keep_their_order_and_unused_names(tmp_path: Path) -> None:
    cfg = clip_csv(tmp_path)
    cfg.class_names = write(tmp_path / "names.txt", "wash\nidle\ncook\n")
    assert load_annotations(cfg).classes == ["wash", "idle", "cook"]


def test_clip_csv_split_column(tmp_path: Path) -> None:
    clip_videos(tmp_path)
    text = "video,label,split\ncook/a.mp4,cook,train\ncook/b.mp4,cook,TEST\nwash/c.mov,wash,val\n"
    annotations = load_annotations(DataConfig(annotations=write(tmp_path / "l.csv", text)))
    assert [i.split for i in annotations.items] == ["train", "test", "val"]


# --- frame formats -------------------------------------------------------------------------


def frame_videos(root: Path) -> Path:
    for key in FRAME_SEGMENTS:
        touch(root / key)
    return root


def frames_csv(root: Path) -> DataConfig:
    rows = [
        f"{video},{start},{end},{label}\n"
        for video, segments in FRAME_SEGMENTS.items()
        for start, end, label in reversed(segments)  # order within a file must not matter
    ]
    text = "video,start_frame,end_frame,label\n" + "".join(rows) + "v2.mp4,0,2,background\n"
    return DataConfig(task="frame", annotations=write(frame_videos(root) / "seg.csv", text))


def seconds_csv(root: Path) -> DataConfig:
    rows = [
        f"{video},{start / FPS},{end / FPS},{label}\n"
        for video, segments in FRAME_SEGMENTS.items()
        for start, end, label in segments
    ]
    text = "video,start,end,label\n" + "".join(rows)
    return DataConfig(task="frame", annotations=write(frame_videos(root) / "seg.csv", text))


def mstcn(root: Path) -> DataConfig:
    labels_dir = root / "labels"
    write(labels_dir / "mapping.txt", "0 background\n1 pour\n2 stir\n")
    for video, segments in FRAME_SEGMENTS.items():
        per_frame = ["background"] * 14
        for start, end, label in segments:
            per_frame[start:end] = [label] * (end - start)
        write(labels_dir / "groundTruth" / f"{Path(video).stem}.txt", "\n".join(per_frame) + "\n")
    return DataConfig(task="frame", videos=frame_videos(root), annotations=labels_dir)


def expected_frame_items(root: Path, unit: str) -> list[VideoAnnotation]:
    scale = 1 / FPS if unit == "seconds" else 1
    return [
        VideoAnnotation(
            video,
            (root / video).resolve(),
            segments=tuple(Segment(s * scale, e * scale, label) for s, e, label in segments),
            unit=unit,  # type: ignore[arg-type]
        )
        for video, segments in FRAME_SEGMENTS.items()
    ]


@pytest.mark.parametrize(
    ("make_config", "unit"), [(frames_csv, "frames"), (seconds_csv, "seconds"), (mstcn, "frames")]
)
def test_frame_formats_parse_to_the_same_annotations(
    tmp_path: Path, make_config: Callable[[Path], DataConfig], unit: str
) -> None:
    annotations = load_annotations(make_config(tmp_path))
    expected = Annotations(
        task="frame",
        classes=["background", "pour", "stir"],
        items=expected_frame_items(tmp_path, unit),
        background="background",
    )
    assert annotations == expected


@pytest.mark.parametrize("make_config", [frames_csv, seconds_csv, mstcn])
def test_frame_formats_label_sampled_frames_alike(
    tmp_path: Path, make_config: Callable[[Path], DataConfig]
) -> None:
    item = load_annotations(make_config(tmp_path)).items[0]  # v1: pour [4, 8), stir [8, 12)
    indices = np.arange(0, 16, 2, dtype=np.int64)
    labels = item.labels_at(indices, indices / FPS)
    assert labels == ["background"] * 2 + ["pour"] * 2 + ["stir"] * 2 + ["background"] * 2


def test_mstcn_finds_videos_by_stem_in_subfolders(tmp_path: Path) -> None:
    cfg = mstcn(tmp_path / "labels_root")
    videos = tmp_path / "videos"
    touch(videos / "day1" / "v1.mp4")
    touch(videos / "v2.mkv")
    cfg.videos = videos
    assert [i.video for i in load_annotations(cfg).items] == ["day1/v1.mp4", "v2.mkv"]


def test_background_goes_first_and_once(tmp_path: Path) -> None:
    cfg = frames_csv(tmp_path)
    cfg.background = "stir"
    assert load_annotations(cfg).classes == ["stir", "background", "pour"]


class Align(NamedTuple):
    name: str
    item: VideoAnnotation
    indices: list[int]
    times_s: list[float]
    expected: list[str]


SECONDS = VideoAnnotation(
    "v.mp4", Path("/v.mp4"), segments=(Segment(1.0, 2.0, "a"), Segment(2.0, 2.5, "b"))
)
FRAMES = VideoAnnotation(
    "v.mp4", Path("/v.mp4"), segments=(Segment(3, 5, "a"),), unit="frames", background="bg"
)
ALIGNMENTS = [
    Align(
        "start inclusive, end exclusive",
        SECONDS,
        [0] * 4,
        [1.0, 2.0, 2.5, 0.999],
        ["a", "b", "background", "background"],
    ),
    Align("seconds use time, not index", SECONDS, [150, 0], [0.5, 1.5], ["background", "a"]),
    Align(
        "frames use index, not time",
        FRAMES,
        [2, 3, 4, 5],
        [3.0, 0.0, 0.0, 4.0],
        ["bg", "a", "a", "bg"],
    ),
    Align("no frames", FRAMES, [], [], []),
    Align(
        "no segments: all background",
        VideoAnnotation("v", Path("/v")),
        [0, 1],
        [0.0, 1.0],
        ["background"] * 2,
    ),
    Align(
        "clip label everywhere",
        VideoAnnotation("v", Path("/v"), label="c"),
        [0, 9],
        [0.0, 3.0],
        ["c", "c"],
    ),
]


@pytest.mark.parametrize("case", ALIGNMENTS, ids=[a.name for a in ALIGNMENTS])
def test_labels_at(case: Align) -> None:
    indices = np.array(case.indices, dtype=np.int64)
    assert case.item.labels_at(indices, np.array(case.times_s, dtype=np.float64)) == case.expected


# --- errors --------------------------------------------------------------------------------


class Bad(NamedTuple):
    name: str
    task: str
    header: str
    rows: str
    message: str
    line: int | None


CLIP_HEADER = "video,label,split"
SEG_HEADER = "video,start,end,label,split"
FRAME_HEADER = "video,start_frame,end_frame,label"
BAD_CSVS = [
    Bad(
        "unknown video",
        "clip",
        CLIP_HEADER,
        "cook/a.mp4,cook,\nnope.mp4,cook,",
        "unknown video 'nope.mp4'",
        3,
    ),
    Bad(
        "dotdot escape",
        "clip",
        CLIP_HEADER,
        "../data/cook/a.mp4,cook,",
        "escapes the dataset root",
        2,
    ),
    Bad(
        "nested dotdot escape",
        "frame",
        SEG_HEADER,
        "cook/../../x.mp4,0,1,a,",
        "escapes the dataset root",
        2,
    ),
    Bad("absolute path", "clip", CLIP_HEADER, "/etc/passwd,cook,", "absolute video path", 2),
    Bad("windows absolute path", "clip", CLIP_HEADER, "C:\\v.mp4,cook,", "absolute video path", 2),
    Bad(
        "too few fields",
        "clip",
        CLIP_HEADER,
        "cook/a.mp4,cook,\ncook/b.mp4",
        "expected 3 fields",
        3,
    ),
    Bad("missing column", "clip", "video", "cook/a.mp4", "missing label", 1),
    Bad("unknown column", "clip", "video,label,spilt", "cook/a.mp4,cook,x", "unknown spilt", 1),
    Bad("empty label", "clip", CLIP_HEADER, "cook/a.mp4,,", "empty label", 2),
    Bad(
        "bad split name", "clip", CLIP_HEADER, "cook/a.mp4,cook,dev", "split 'dev' is not one of", 2
    ),
    Bad(
        "split for some only",
        "clip",
        CLIP_HEADER,
        "cook/a.mp4,cook,train\ncook/b.mp4,cook,",
        "has none while",
        3,
    ),
    Bad(
        "duplicate video",
        "clip",
        CLIP_HEADER,
        "cook/a.mp4,cook,\n./cook/a.mp4,wash,",
        "duplicate video 'cook/a.mp4' (first on line 2)",
        3,
    ),
    Bad(
        "end equals start",
        "frame",
        SEG_HEADER,
        "cook/a.mp4,1.5,1.5,a,",
        "end (1.5) must be greater than start (1.5)",
        2,
    ),
    Bad(
        "end before start",
        "frame",
        FRAME_HEADER,
        "cook/a.mp4,9,3,a",
        "end_frame (3) must be greater",
        2,
    ),
    Bad(
        "overlap",
        "frame",
        SEG_HEADER,
        "cook/a.mp4,0,2,a,\ncook/b.mp4,0,9,a,\ncook/a.mp4,1.5,3,b,",
        "overlaps [0, 2) 'a' from line 2",
        4,
    ),
    Bad(
        "inconsistent split",
        "frame",
        SEG_HEADER,
        "cook/a.mp4,0,1,a,train\ncook/a.mp4,1,2,a,test",
        "inconsistent split for 'cook/a.mp4'",
        3,
    ),
    Bad(
        "not a number",
        "frame",
        SEG_HEADER,
        "cook/a.mp4,zero,1,a,",
        "start 'zero' is not a number",
        2,
    ),
    Bad("not finite", "frame", SEG_HEADER, "cook/a.mp4,0,inf,a,", "end 'inf' is not a number", 2),
    Bad("negative", "frame", SEG_HEADER, "cook/a.mp4,-1,1,a,", "start '-1' is negative", 2),
    Bad(
        "fractional frame",
        "frame",
        FRAME_HEADER,
        "cook/a.mp4,1.5,3,a",
        "'1.5' is not a frame index",
        2,
    ),
    Bad(
        "segments for clip task",
        "clip",
        SEG_HEADER,
        "cook/a.mp4,0,1,a,",
        "set data.task: frame",
        None,
    ),
    Bad(
        "clip csv for frame task",
        "frame",
        CLIP_HEADER,
        "cook/a.mp4,cook,",
        "set data.task: clip",
        None,
    ),
    Bad("empty file", "clip", "", "", "expected a header line", 1),
    Bad("header only", "clip", CLIP_HEADER, "", "no labelled videos", None),
]


@pytest.mark.parametrize("case", BAD_CSVS, ids=[b.name for b in BAD_CSVS])
def test_csv_errors_name_file_line_and_problem(tmp_path: Path, case: Bad) -> None:
    root = clip_videos(tmp_path / "data")
    labels = write(root / "labels.csv", f"{case.header}\n{case.rows}\n" if case.header else "")
    with pytest.raises(AnnotationError) as caught:
        load_annotations(DataConfig(task=case.task, annotations=labels))  # type: ignore[arg-type]
    where = f"{labels}:{case.line}: " if case.line is not None else f"{labels}: "
    assert str(caught.value).startswith(where)
    assert case.message in str(caught.value)
    assert (caught.value.file, caught.value.line) == (labels, case.line)


def test_label_not_in_declared_class_list(tmp_path: Path) -> None:
    cfg = clip_csv(tmp_path)
    cfg.class_names = write(tmp_path / "names.txt", "cook\n")
    with pytest.raises(AnnotationError, match=r"l\.csv:4: label 'wash' not in the class list"):
        load_annotations(cfg)


class BadFile(NamedTuple):
    name: str
    file: str  # which file of the MMAction2 or MS-TCN dataset to overwrite
    text: str
    message: str


BAD_MMACTION = [
    BadFile(
        "id out of range",
        "train_list.txt",
        "cook/a.mp4 0\ncook/b.mp4 2\n",
        "train_list.txt:2: label id 2 not in the class list (0..1)",
    ),
    BadFile(
        "missing id",
        "train_list.txt",
        "cook/a.mp4\n",
        "train_list.txt:1: expected '<path> <label_id>'",
    ),
    BadFile(
        "unknown video",
        "train_list.txt",
        "# x\ncook/zz.mp4 0\n",
        "train_list.txt:2: unknown video 'cook/zz.mp4'",
    ),
    BadFile(
        "escape",
        "train_list.txt",
        "../x.mp4 0\n",
        "train_list.txt:1: video path '../x.mp4' escapes",
    ),
    BadFile("blank class name", "classes.txt", "cook\n\nwash\n", "classes.txt:2: empty class name"),
    BadFile(
        "duplicate class name",
        "classes.txt",
        "cook\ncook\n",
        "classes.txt:2: duplicate class name 'cook'",
    ),
]


@pytest.mark.parametrize("case", BAD_MMACTION, ids=[b.name for b in BAD_MMACTION])
def test_mmaction_errors(tmp_path: Path, case: BadFile) -> None:
    cfg = clip_mmaction(tmp_path)
    write(tmp_path / case.file, case.text)
    with pytest.raises(AnnotationError) as caught:
        load_annotations(cfg)
    assert f"{tmp_path / case.file}:" in str(caught.value)
    assert case.message in str(caught.value)


BAD_MSTCN = [
    BadFile(
        "label not in mapping",
        "groundTruth/v1.txt",
        "pour\npour\nfly\n",
        "v1.txt:3: label 'fly' not in mapping.txt",
    ),
    BadFile("blank line", "groundTruth/v1.txt", "pour\n\npour\n", "v1.txt:2: empty line"),
    BadFile("unknown video", "groundTruth/v9.txt", "pour\n", "v9.txt: no video with stem 'v9'"),
    BadFile(
        "bad mapping line",
        "mapping.txt",
        "0 background\npour\n",
        "mapping.txt:2: expected '<id> <name>'",
    ),
    BadFile(
        "duplicate mapping",
        "mapping.txt",
        "0 pour\n1 pour\n",
        "mapping.txt:2: duplicate id or name",
    ),
]


@pytest.mark.parametrize("case", BAD_MSTCN, ids=[b.name for b in BAD_MSTCN])
def test_mstcn_errors(tmp_path: Path, case: BadFile) -> None:
    cfg = mstcn(tmp_path)
    write(tmp_path / "labels" / case.file, case.text)
    with pytest.raises(AnnotationError, match=case.message.replace(".", r"\.").replace("(", r"\(")):
        load_annotations(cfg)


def test_mstcn_two_videos_with_one_stem(tmp_path: Path) -> None:
    cfg = mstcn(tmp_path)
    touch(tmp_path / "other" / "v1.mkv")
    with pytest.raises(AnnotationError, match="several videos with stem 'v1'"):
        load_annotations(cfg)


@pytest.mark.parametrize(
    ("cfg_fields", "message"),
    [
        ({"task": "frame"}, "the frame task needs a label file"),
        ({"task": "clip"}, "set data.videos or data.annotations"),
        ({"task": "clip", "annotations": "missing.csv"}, "annotation file or folder not found"),
        ({"task": "clip", "annotations": "list.txt"}, "needs data.class_names"),
        ({"task": "clip", "videos": "empty"}, "no videos found in class folders"),
        ({"task": "frame", "annotations": "empty"}, "not an MS-TCN folder"),
    ],
)
def test_config_level_errors(tmp_path: Path, cfg_fields: dict[str, str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path / "list.txt", "a.mp4 0\n")
    paths = {k: tmp_path / v for k, v in cfg_fields.items() if k != "task"}
    with pytest.raises(AnnotationError, match=message):
        load_annotations(DataConfig(task=cfg_fields["task"], **paths))  # type: ignore[arg-type]


def test_inner_dotdot_that_stays_under_root_is_allowed(tmp_path: Path) -> None:
    clip_videos(tmp_path)
    labels = write(tmp_path / "l.csv", "video,label\nwash/../cook/a.mp4,cook\n")
    item = load_annotations(DataConfig(annotations=labels)).items[0]
    assert (item.video, item.path) == ("cook/a.mp4", (tmp_path / "cook/a.mp4").resolve())


# --- reading the files ----------------------------------------------------------------------


def test_label_files_are_utf8_and_a_leading_bom_is_dropped(tmp_path: Path) -> None:
    clip_videos(tmp_path)
    labels = tmp_path / "l.csv"
    labels.write_bytes("\ufeffvideo,label\ncook/a.mp4,cuisiné\n".encode())
    assert load_annotations(DataConfig(annotations=labels)).items[0].label == "cuisiné"


def test_a_label_file_that_is_not_utf8_names_its_file_line_and_byte(tmp_path: Path) -> None:
    clip_videos(tmp_path)
    labels = write(tmp_path / "l.csv", "")
    labels.write_bytes(b"video,label\ncook/a.mp4,cook\nwash/c.mov,w\xe4sh\n")
    with pytest.raises(AnnotationError) as info:
        load_annotations(DataConfig(annotations=labels))
    assert (info.value.file, info.value.line) == (labels, 3)
    assert str(info.value) == (
        f"{labels}:3: label file is not UTF-8 text: byte 40 (line 3) is 0xe4; save it as UTF-8"
    )


def test_an_unreadable_label_file_is_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "names.txt").mkdir()
    with pytest.raises(AnnotationError, match=r"names.txt: cannot read label file \(Is a dir"):
        read_class_names(tmp_path / "names.txt")


def test_mmaction_paths_are_relative_to_the_videos_folder_when_set(tmp_path: Path) -> None:
    videos = clip_videos(tmp_path / "videos")
    listing = write(tmp_path / "lists" / "val.txt", "wash/c.mov 1\n")
    names = write(tmp_path / "lists" / "names.txt", "cook\nwash\n")
    cfg = DataConfig(videos=videos, annotations=listing, class_names=names)
    assert load_annotations(cfg).items[0].path == (videos / "wash/c.mov").resolve()


def test_annotation_errors_are_user_errors() -> None:
    error = AnnotationError(Path("l.csv"), "bad", 3)
    assert isinstance(error, UserError) and str(error) == "l.csv:3: bad"
