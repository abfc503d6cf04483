"""pipeline/cli/demo.py: the demo's own helpers (the demo itself runs as `make demo`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import demo
from tests.conftest import tiny_config


@pytest.fixture
def out(tmp_path: Path, monkeypatch) -> Path:
    """The demo's output folder, in tmp_path instead of the repository."""
    monkeypatch.setattr(demo, "OUT", tmp_path / "demo_out")
    return tmp_path / "demo_out"


def _dataset(root: Path) -> Path:
    """An annotation file naming videos in sub-folders, two of them in the test split."""
    rows = [("walk/a.mp4", "train"), ("walk/b.mp4", "test"), ("run/c.mp4", "val"),
            ("run/d.mp4", "test"), ("run/e.mp4", "")]  # fmt: skip
    for relative, _ in rows:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(relative.encode())
    labels = root / "labels.csv"
    body = "".join(f"{v},{v.split('/')[0]},{s}\n" for v, s in rows)
    labels.write_text("video,label,split\n" + body)
    return labels


def test_held_back_folder_holds_exactly_the_test_split(out: Path, tmp_path: Path) -> None:
    labels = _dataset(tmp_path / "data")
    cfg = tiny_config(tmp_path, tmp_path / "data", labels, "clip")
    (out / "inbox" / "clip").mkdir(parents=True)
    (out / "inbox" / "clip" / "stale.mp4").write_bytes(b"from an earlier run")
    inbox = demo.held_back_folder(cfg, "clip")
    assert inbox == out / "inbox" / "clip"
    assert sorted(p.name for p in inbox.iterdir()) == ["b.mp4", "d.mp4"]  # stale one gone
    assert (inbox / "d.mp4").read_bytes() == b"run/d.mp4"  # the same bytes (a link or a copy)


@pytest.mark.parametrize("task", sorted(demo.DATASETS))
def test_a_synthesized_dataset_is_reused(out: Path, task: str) -> None:
    root = out / "data" / task
    root.mkdir(parents=True)
    (root / demo.ANNOTATIONS[task]).write_text("video,label\n")
    assert demo.synthesize(task, videos=3) == root
    assert [p.name for p in root.iterdir()] == [demo.ANNOTATIONS[task]]  # nothing written


def test_every_demo_config_names_its_task_and_the_annotations_synth_writes() -> None:
    from pipeline.config import load_config

    for task, file_name in demo.ANNOTATIONS.items():
        cfg = load_config(demo.REPO / "configs" / f"demo_{task}.yaml")
        assert cfg.data.task == task
        assert Path(cfg.data.annotations).name == file_name
