"""Labelled folders for the review-page tests, made without Prefect or MLflow: synthetic videos
(OpenCV ``mp4v``, like the demo's), a random frame tagger saved as a local model folder, and
:func:`pipeline.labeling.folder.label_one` on each video, then the page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from pipeline.jobs import VideoRecord


class Folder(NamedTuple):
    input: Path
    output: Path
    records: list[VideoRecord]
    classes: list[str]
    annotations: Path
    cfg: object  # pipeline.config.Config
    model: object  # pipeline.labeling.predict.LoadedModel


def random_frame_model(folder: Path, cfg, classes: list[str]) -> Path:
    """A random-init frame tagger over the config's extractor, as a local model folder."""
    import torch

    from models.rnn import build_model, model_config_dict
    from pipeline.features import spec_from_config
    from pipeline.tracking.model_io import save_model_dir

    torch.manual_seed(0)
    spec = spec_from_config(cfg)
    module = build_model("frame", 512, len(classes), {"hidden": 16, "layers": 1}).eval()
    config = model_config_dict(module)
    return save_model_dir(folder, module, config, spec, classes, "background")


def label_into(inbox: Path, out: Path, cfg, model) -> list[VideoRecord]:
    """Every video of ``inbox`` labelled into ``out`` (a bad one is a failed record, as in the
    flow), and the page written."""
    from pipeline.labeling.folder import label_one, plan_folder
    from pipeline.labeling.outputs import INDEX_HTML
    from pipeline.labeling.page import index_html

    records = []
    for video in plan_folder(inbox, cfg.data.extensions):
        try:
            records.append(label_one(video.path, video.relative, video.base, out, cfg, model))
        except Exception as error:  # noqa: BLE001 - the flow's failed row
            records.append(VideoRecord(video.relative, "failed", error=str(error)))
    (out / INDEX_HTML).write_text(index_html(out, records, model.describe()), encoding="utf-8")
    return records


def labelled_folder(
    root: Path, videos: int = 2, previews: str = "auto", extra: tuple[Path, ...] = ()
) -> Folder:
    """``videos`` synthetic frame-task videos (plus copies of ``extra``) labelled into
    ``root/out`` with ``label.previews: previews``; index.html written."""
    from pipeline.labeling.predict import get_model
    from pipeline.synth.dataset import write_dataset
    from tests.conftest import tiny_config

    data = root / "data"
    summary = write_dataset(data, task="frame", videos=videos, seed=3, segments=(2, 3))
    inbox = root / "inbox"
    inbox.mkdir()
    for video in sorted(data.rglob("*.mp4")):
        shutil.copy2(video, inbox / video.name)
    for video in extra:
        shutil.copy2(video, inbox / video.name)
    cfg = tiny_config(root, inbox, None, "frame", **{"label.previews": previews})
    classes = list(summary.classes)
    model = get_model(str(random_frame_model(root / "model", cfg, classes)))
    records = label_into(inbox, root / "out", cfg, model)
    return Folder(inbox, root / "out", records, classes, data / "segments.csv", cfg, model)


@pytest.fixture(scope="session")
def review_folder(tmp_path_factory) -> Folder:
    """Two synthetic ``mp4v`` videos (the demo's kind), an MPEG-4 Part 2 AVI and a broken file,
    labelled with ``label.previews: auto``."""
    from tests.helpers_video import write_video

    root = tmp_path_factory.mktemp("review")
    avi = write_video(root / "camera.avi", "XVID", frames=40)
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)
    return labelled_folder(root, videos=2, previews="auto", extra=(avi, broken))
