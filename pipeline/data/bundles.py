"""MS-TCN split bundles: which videos train and which test, as the standard action-segmentation
datasets ship them (GTEA, 50Salads, Breakfast: ``splits/train.split1.bundle``,
``splits/test.split1.bundle``, one video file name per line).

``data.split_file`` names one bundle (its partner, ``train.`` <-> ``test.``, lies beside it) or
the folder holding them, with ``data.fold: N`` choosing ``train.splitN.bundle`` and
``test.splitN.bundle``. A line names a video of the annotations by its path relative to the
dataset root or by its file name; a ``.txt`` name (MS-TCN lists its feature or ground-truth
files) or a name without an extension matches the video of that stem. Videos in neither bundle
are left out of the job. No bundle marks ``val``: the validation videos are carved out of the
training ones by ``data.val_fraction`` (:func:`pipeline.data.datasets.assign_splits`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath

from pipeline.data.annotations import AnnotationError, Annotations, VideoAnnotation
from pipeline.fileio import UserTextError, read_user_text

log = logging.getLogger(__name__)

BUNDLE_NAME = re.compile(r"^(train|test)\.(.+)\.bundle$")
BUNDLE_SPLITS = ("train", "test")


def bundle_pair(split_file: Path, fold: int | None) -> tuple[Path, Path]:
    """(train bundle, test bundle) named by ``data.split_file`` and ``data.fold``."""
    split_file = Path(split_file)
    if split_file.is_dir():
        if fold is None:
            raise AnnotationError(
                split_file,
                "a folder of split bundles needs data.fold: N picks train.splitN.bundle and "
                "test.splitN.bundle",
            )
        pair = (split_file / f"train.split{fold}.bundle", split_file / f"test.split{fold}.bundle")
    elif split_file.is_file():
        match = BUNDLE_NAME.match(split_file.name)
        if match is None:
            raise AnnotationError(
                split_file,
                "not a split bundle name: expected train.<name>.bundle or test.<name>.bundle "
                "(e.g. train.split1.bundle), or a folder of them with data.fold",
            )
        if fold is not None and match.group(2) != f"split{fold}":
            raise AnnotationError(
                split_file, f"data.fold is {fold} but this bundle is {match.group(2)!r}"
            )
        pair = (
            split_file.with_name(f"train.{match.group(2)}.bundle"),
            split_file.with_name(f"test.{match.group(2)}.bundle"),
        )
    else:
        raise AnnotationError(split_file, "split bundle file or folder not found (data.split_file)")
    for split, path in zip(BUNDLE_SPLITS, pair, strict=True):
        if not path.is_file():
            raise AnnotationError(path, f"the {split} split bundle is missing")
    return pair


class _VideoIndex:
    """The annotations' videos by relative path, by path without extension and by stem."""

    def __init__(self, items: Sequence[VideoAnnotation], extensions: Sequence[str]) -> None:
        self.suffixes = {".txt", *(e.lower() for e in extensions)}
        self.by_path = {item.video: item for item in items}
        self.by_base: dict[str, list[VideoAnnotation]] = {}
        self.by_stem: dict[str, list[VideoAnnotation]] = {}
        for item in items:
            path = PurePosixPath(item.video)
            self.by_base.setdefault(path.with_suffix("").as_posix(), []).append(item)
            self.by_stem.setdefault(path.stem, []).append(item)

    def find(self, name: str) -> list[VideoAnnotation]:
        if name in self.by_path:
            return [self.by_path[name]]
        path = PurePosixPath(name)
        base = path.with_suffix("") if path.suffix.lower() in self.suffixes else path
        if len(path.parts) > 1:
            return self.by_base.get(base.as_posix(), [])
        return self.by_stem.get(base.name, [])


def read_bundle(
    path: Path, index: _VideoIndex, root: Path | None
) -> list[tuple[int, VideoAnnotation]]:
    """(line, video) per named video; blank lines and ``#`` comments skipped."""
    try:
        text = read_user_text(path, "split bundle")
    except UserTextError as exc:
        raise AnnotationError(path, exc.problem, exc.line) from None
    found: list[tuple[int, VideoAnnotation]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        item = _video_named(name, index, root, path, number)
        if item.video in seen:
            problem = (
                f"{name!r} names video {item.video!r} again (first on line {seen[item.video]})"
            )
            raise AnnotationError(path, problem, number)
        seen[item.video] = number
        found.append((number, item))
    if not found:
        raise AnnotationError(path, "no video names in this split bundle")
    return found


def _video_named(
    name: str, index: _VideoIndex, root: Path | None, bundle: Path, line: int
) -> VideoAnnotation:
    raw = name.replace("\\", "/")
    where = root if root is not None else "the dataset root"
    if PurePosixPath(raw).is_absolute() or PureWindowsPath(name).drive:
        raise AnnotationError(
            bundle, f"absolute path {name!r}: name the video relative to {where}", line
        )
    normal = os.path.normpath(raw)
    if normal in ("..", ".") or normal.startswith("../"):
        raise AnnotationError(bundle, f"{name!r} escapes the dataset root {where}", line)
    matches = index.find(PurePosixPath(normal).as_posix())
    if not matches:
        problem = (
            f"{name!r} matches no annotated video (by relative path, file name or stem) under "
            f"{where}"
        )
        raise AnnotationError(bundle, problem, line)
    if len(matches) > 1:
        videos = ", ".join(item.video for item in matches)
        problem = f"{name!r} matches several videos ({videos}): name it by its relative path"
        raise AnnotationError(bundle, problem, line)
    return matches[0]


def apply_split_bundles(
    annotations: Annotations, split_file: Path, fold: int | None, extensions: Sequence[str]
) -> Annotations:
    """``annotations`` with each video's split from the bundles; unlisted videos left out."""
    train_path, test_path = bundle_pair(split_file, fold)
    if any(item.split is not None for item in annotations.items):
        raise AnnotationError(
            split_file,
            "the annotations already give splits (a `split` column): give them one way, the "
            "column or data.split_file",
        )
    index = _VideoIndex(annotations.items, extensions)
    splits: dict[str, tuple[str, Path, int]] = {}
    for split, path in (("train", train_path), ("test", test_path)):
        for line, item in read_bundle(path, index, annotations.root):
            if item.video in splits:
                _, other, other_line = splits[item.video]
                problem = f"{item.video!r} is also in {other.name} (line {other_line})"
                raise AnnotationError(path, problem, line)
            splits[item.video] = (split, path, line)
    items = [
        replace(item, split=splits[item.video][0])
        for item in annotations.items
        if item.video in splits
    ]
    left_out = len(annotations.items) - len(items)
    if left_out:
        log.info(
            "split bundles %s and %s: %d annotated videos in neither, left out",
            train_path.name, test_path.name, left_out,
        )  # fmt: skip
    return replace(annotations, items=items)


__all__ = ["apply_split_bundles", "bundle_pair", "read_bundle"]
