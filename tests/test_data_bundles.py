"""pipeline/data/bundles.py: MS-TCN split bundles give each video its split."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.data.annotations import AnnotationError, load_annotations
from pipeline.data.bundles import bundle_pair
from pipeline.data.datasets import assign_splits

STEMS = [f"rgb-{i:02d}" for i in range(1, 9)]  # 8 videos, 50Salads-style names


def mstcn_dataset(root: Path) -> Path:
    """An MS-TCN layout (groundTruth/, mapping.txt, splits/) over 8 fake videos."""
    (root / "videos" / "cam").mkdir(parents=True)
    (root / "groundTruth").mkdir()
    (root / "mapping.txt").write_text("0 background\n1 cut\n2 mix\n")
    for index, stem in enumerate(STEMS):
        (root / "videos" / "cam" / f"{stem}.mp4").write_bytes(b"not a video")
        action = "cut" if index % 2 else "mix"
        (root / "groundTruth" / f"{stem}.txt").write_text(
            "\n".join(["background"] * 3 + [action] * 5) + "\n"
        )
    (root / "splits").mkdir()
    for fold in (1, 2):
        test = STEMS[(fold - 1) * 2 : fold * 2]
        train = [stem for stem in STEMS if stem not in test][:5]  # one video in neither
        write(root / "splits" / f"train.split{fold}.bundle", [f"{s}.txt" for s in train])
        write(root / "splits" / f"test.split{fold}.bundle", [f"{s}.txt" for s in test])
    return root


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def data_cfg(root: Path, split_file: Path | str, fold: int | None = None):
    sets = [
        "data.task=frame", f"data.videos={root / 'videos'}", f"data.annotations={root}",
        f"data.split_file={split_file}",
    ]  # fmt: skip
    if fold is not None:
        sets.append(f"data.fold={fold}")
    return load_config(None, sets).data


def splits_of(annotations) -> dict[str, str]:
    return {Path(item.video).stem: item.split for item in annotations.items}


@pytest.mark.parametrize(
    ("split_file", "fold", "test"),
    [
        ("splits", 1, ["rgb-01", "rgb-02"]),  # a folder and a fold
        ("splits", 2, ["rgb-03", "rgb-04"]),
        ("splits/train.split2.bundle", None, ["rgb-03", "rgb-04"]),  # one bundle: its partner
        ("splits/test.split1.bundle", 1, ["rgb-01", "rgb-02"]),
    ],
)
def test_bundles_choose_train_and_test_and_leave_the_rest_out(tmp_path, split_file, fold, test):
    root = mstcn_dataset(tmp_path)
    annotations = load_annotations(data_cfg(root, root / split_file, fold))
    splits = splits_of(annotations)
    assert sorted(stem for stem, split in splits.items() if split == "test") == test
    assert sum(split == "train" for split in splits.values()) == 5 and len(splits) == 7


def test_val_is_carved_out_of_the_bundles_training_videos(tmp_path) -> None:
    root = mstcn_dataset(tmp_path)
    annotations = load_annotations(data_cfg(root, root / "splits", 1))
    carved = splits_of(assign_splits(annotations, 0.4, 0.15, seed=0))
    assert sorted(s for s, split in carved.items() if split == "test") == ["rgb-01", "rgb-02"]
    assert list(carved.values()).count("val") == 2 and list(carved.values()).count("train") == 3


def test_names_match_by_relative_path_file_name_or_stem(tmp_path) -> None:
    root = mstcn_dataset(tmp_path)
    write(root / "splits" / "train.mine.bundle", ["cam/rgb-01.mp4", "rgb-02.mp4", "rgb-03", ""])
    write(root / "splits" / "test.mine.bundle", ["# held out", "cam/rgb-04.txt"])
    splits = splits_of(load_annotations(data_cfg(root, root / "splits" / "train.mine.bundle")))
    assert splits == {"rgb-01": "train", "rgb-02": "train", "rgb-03": "train", "rgb-04": "test"}


@pytest.mark.parametrize(
    ("train_lines", "line", "problem"),
    [
        (["rgb-01.txt", "rgb-99.txt"], 2, "'rgb-99.txt' matches no annotated video"),
        (["../videos/cam/rgb-01.mp4"], 1, "escapes the dataset root"),
        (["/abs/rgb-01.mp4"], 1, "absolute path"),
        (["rgb-01.txt", "rgb-01.mp4"], 2, "names video 'cam/rgb-01.mp4' again (first on line 1)"),
        (["rgb-05.txt"], 1, "'cam/rgb-05.mp4' is also in train.bad.bundle (line 1)"),
    ],
)
def test_a_bad_line_names_the_bundle_and_the_line(tmp_path, train_lines, line, problem) -> None:
    root = mstcn_dataset(tmp_path)
    write(root / "splits" / "test.bad.bundle", ["rgb-05.txt"])
    bundle = write(root / "splits" / "train.bad.bundle", train_lines)
    with pytest.raises(AnnotationError) as error:
        load_annotations(data_cfg(root, bundle))
    assert str(error.value).startswith(f"{root / 'splits'}/") and f".bundle:{line}: " in str(
        error.value
    )
    assert problem in str(error.value)


def test_bundle_files_and_folders_that_cannot_be_used(tmp_path) -> None:
    root = mstcn_dataset(tmp_path)
    with pytest.raises(AnnotationError, match="needs data.fold"):
        bundle_pair(root / "splits", None)
    with pytest.raises(AnnotationError, match=r"test.split9.bundle: the test split bundle is"):
        write(root / "splits" / "train.split9.bundle", ["rgb-01.txt"])
        bundle_pair(root / "splits", 9)
    with pytest.raises(AnnotationError, match="not a split bundle name"):
        bundle_pair(write(root / "splits" / "list.txt", ["rgb-01.txt"]), None)
    with pytest.raises(AnnotationError, match="data.fold is 2 but this bundle is 'split1'"):
        bundle_pair(root / "splits" / "train.split1.bundle", 2)
    with pytest.raises(AnnotationError, match="not found"):
        bundle_pair(root / "nowhere", 1)
    empty = write(root / "splits" / "train.split8.bundle", ["# nothing"])
    write(root / "splits" / "test.split8.bundle", ["rgb-01.txt"])
    with pytest.raises(AnnotationError, match="no video names in this split bundle"):
        load_annotations(data_cfg(root, empty))


def test_a_split_column_and_bundles_together_are_refused(tmp_path) -> None:
    root = mstcn_dataset(tmp_path)
    csv = write(root / "videos" / "segments.csv", ["video,start,end,label,split",
                                                   "cam/rgb-01.mp4,0,1,cut,train"])  # fmt: skip
    cfg = load_config(None, ["data.task=frame", f"data.annotations={csv}",
                             f"data.split_file={root / 'splits'}", "data.fold=1"])  # fmt: skip
    with pytest.raises(AnnotationError, match="already give splits"):
        load_annotations(cfg.data)
