"""The extract_features flow end to end, through a temporary Prefect API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import FeatureStore
from pipeline.store_admin import verify
from tests.conftest import REPO, tiny_config


def _run(cfg):
    from flows.extract import extract_features

    return extract_features(cfg, print_summary=False)


def _videos(root: Path) -> list[Path]:
    return sorted(root.rglob("*.mp4"))


def test_extract_then_rerun_skips_everything(prefect_api, clip_dataset: Path, tmp_path: Path):
    cfg = tiny_config(tmp_path, clip_dataset, None, "clip")
    first = _run(cfg)
    count = len(_videos(clip_dataset))
    assert (first["ok"], first["failed"]) == (count, 0)
    assert first["frames"] > 0 and first["frames_per_s"] > 0
    started = time.perf_counter()
    second = _run(cfg)
    assert (second["ok"], second["skipped"]) == (0, count)
    assert time.perf_counter() - started < 30
    store = FeatureStore(cfg.features.store)
    assert len(list(store.entries())) == count and not verify(store).corrupt


def test_moved_video_hits_the_store_and_spec_change_misses(prefect_api, clip_dataset, tmp_path):
    source = _videos(clip_dataset)[0]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(source, inbox / "original.mp4")
    cfg = tiny_config(tmp_path, inbox, None, "clip")
    assert _run(cfg)["ok"] == 1
    (inbox / "original.mp4").rename(inbox / "renamed_elsewhere.mp4")
    assert _run(cfg)["skipped"] == 1
    for key, value in [("features.image_size", 72), ("decode.sample_fps", 3), ("features.seed", 1)]:
        changed = tiny_config(tmp_path, inbox, None, "clip", **{key: value})
        assert _run(changed)["ok"] == 1, key


def _damaged_files(folder: Path, good: Path) -> dict[str, str]:
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.avi").write_text("this is not a video\n" * 50)
    data = good.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return {"empty.mp4": "", "notes.avi": "", "truncated.mp4": ""}


def test_bad_videos_fail_alone_with_reasons_and_exit_1(prefect_api, clip_dataset, tmp_path):
    from tests.conftest import shared_video_files

    folder = tmp_path / "mixed"
    folder.mkdir()
    good = [*shared_video_files(), *_videos(clip_dataset)[:2]]
    for video in good:
        shutil.copy(video, folder / video.name)
    damaged = _damaged_files(folder, _videos(clip_dataset)[0])
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(tiny_config(tmp_path, folder, None, "clip").to_yaml())
    result = CliRunner().invoke(app, ["extract", "-c", str(cfg_path)])
    assert result.exit_code == 1, result.output
    for name in damaged:
        assert f"{name}:" in result.output.replace("\n", "")
    store = FeatureStore(tmp_path / "store")
    stored = {e.video_key for e in store.entries()}
    for video in good:
        assert store.video_key(folder / video.name) in stored, video.name


def test_killed_extraction_resumes_without_redoing_or_corrupting(
    prefect_api, clip_dataset, tmp_path
):
    from prefect.settings import PREFECT_API_URL

    cfg = tiny_config(tmp_path, clip_dataset, None, "clip")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(cfg.to_yaml())
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    command = [sys.executable, "-m", "pipeline.cli", "extract", "-c", str(cfg_path)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    store = FeatureStore(cfg.features.store)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(store.entries())) < 4 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {e.path: e.path.stat().st_mtime_ns for e in store.entries()}
    total = len(_videos(clip_dataset))
    assert 0 < len(finished) < total, "the kill should land part-way"
    assert not verify(store).corrupt
    summary = _run(cfg)
    assert summary["failed"] == 0
    assert summary["skipped"] == len(finished) and summary["ok"] == total - len(finished)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    assert not verify(store).corrupt and len(list(store.entries())) == total


def test_extract_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["extract", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.parametrize("missing", ["data.videos=null"])
def test_extract_without_videos_is_a_clear_error(missing: str) -> None:
    result = CliRunner().invoke(app, ["extract", "--set", missing])
    assert result.exit_code == 2 and "data.videos" in result.output
