"""flows/extract.py: the extract_features flow end to end, through a temporary Prefect API."""

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

from pipeline.cli.app import app
from pipeline.features.store import FeatureStore
from pipeline.features.store_admin import verify
from tests.conftest import REPO, tiny_config
from tests.helpers_flows import task_runs


def _run(cfg):
    from flows.extract import extract_features

    return extract_features(cfg, print_summary=False)


def _videos(root: Path) -> list[Path]:
    return sorted(root.rglob("*.mp4"))


@pytest.mark.slow
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


@pytest.mark.slow
def test_stored_videos_cost_no_task_run(prefect_api, clip_dataset: Path, tmp_path: Path):
    from flows.extract import extract_features

    folder = tmp_path / "videos"
    folder.mkdir()
    videos = _videos(clip_dataset)
    for video in videos[:2]:
        shutil.copy(video, folder / video.name)
    cfg = tiny_config(tmp_path, folder, None, "clip")

    def run() -> tuple[dict, int]:
        state = extract_features(cfg, print_summary=False, return_state=True)
        return state.result(), len(task_runs(state.state_details.flow_run_id))

    assert run()[0]["ok"] == 2
    summary, runs = run()
    assert runs == 0 and (summary["ok"], summary["skipped"]) == (0, 2)
    assert [r["status"] for r in summary["records"]] == ["skipped", "skipped"]
    shutil.copy(videos[2], folder / "zz_new.mp4")
    summary, runs = run()
    assert runs == 1 and [r["status"] for r in summary["records"]] == ["skipped"] * 2 + ["ok"]


@pytest.mark.slow
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


class _Recorder:
    """A reporter that keeps every event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def videos(self, count: int) -> None:
        self.events.append(("videos", count))

    def frames(self, count: int) -> None:
        self.events.append(("frames", count))

    def video_done(self, record) -> None:
        self.events.append(("done", record))

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.events.append(("epoch", epoch))


@pytest.mark.slow
def test_the_flow_reports_its_video_count_first_and_the_cli_shows_it(
    prefect_api, clip_dataset, tmp_path
):
    from pipeline.jobs import VideoRecord
    from pipeline.progress import reporting

    folder = tmp_path / "two"
    folder.mkdir()
    for video in _videos(clip_dataset)[:2]:
        shutil.copy(video, folder / video.name)
    cfg = tiny_config(tmp_path, folder, None, "clip")
    recorder = _Recorder()
    with reporting(recorder):
        summary = _run(cfg)
    assert recorder.events[0] == ("videos", 2)  # before any frame or video
    done = [record for kind, record in recorder.events if kind == "done"]
    assert all(isinstance(r, VideoRecord) for r in done) and [r.status for r in done] == ["ok"] * 2
    assert sum(n for kind, n in recorder.events if kind == "frames") == summary["frames"] > 0
    assert summary["records"] == [r.to_dict() for r in done]
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(cfg.to_yaml())
    result = CliRunner().invoke(app, ["extract", "-c", str(cfg_path)])
    assert result.exit_code == 0, result.output
    shown = "".join(result.output.split())  # rich wraps long lines
    assert f"extractingfeaturesof2videosinto{cfg.features.store}" in shown
    assert "2/2" in shown  # the videos bar knew its total


def _damaged_files(folder: Path, good: Path) -> dict[str, str]:
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.avi").write_text("this is not a video\n" * 50)
    data = good.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return {"empty.mp4": "", "notes.avi": "", "truncated.mp4": ""}


@pytest.mark.slow
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


@pytest.mark.slow
def test_killed_extraction_resumes_without_redoing_or_corrupting(
    prefect_api, clip_dataset, tmp_path
):
    from prefect.settings import PREFECT_API_URL

    cfg = tiny_config(tmp_path, clip_dataset, None, "clip")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(cfg.to_yaml())
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    command = [sys.executable, "-m", "pipeline.cli.app", "extract", "-c", str(cfg_path)]
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


def _extract_with(videos: Path, store: Path, setting: str):
    return CliRunner().invoke(
        app,
        ["extract", "--set", f"data.videos={videos}", "--set", f"features.store={store}",
         "--set", setting],
    )  # fmt: skip


@pytest.mark.slow
def test_a_misspelt_backbone_is_one_error_before_any_video(prefect_api, clip_dataset, tmp_path):
    result = _extract_with(clip_dataset, tmp_path / "store", "features.backbone=resnet181")
    assert result.exit_code == 2, result.output
    assert "unknown backbone 'resnet181'" in result.output and "resnet18" in result.output
    assert not (tmp_path / "store").exists()  # stopped before any video was touched


@pytest.mark.slow
def test_weights_that_cannot_be_fetched_are_one_error_before_any_video(
    prefect_api, clip_dataset, tmp_path, monkeypatch
):
    import torchvision.models as tvm

    calls = []

    def offline(name, weights=None, **kwargs):
        if weights is None:
            return real_get_model(name, weights=None, **kwargs)
        calls.append(name)
        raise OSError("Name or service not known")  # what urllib raises with no network

    real_get_model = tvm.get_model
    monkeypatch.setattr(tvm, "get_model", offline)
    result = _extract_with(clip_dataset, tmp_path / "store", "features.weights=DEFAULT")
    assert result.exit_code == 2, result.output
    assert "could not fetch the pretrained weights" in result.output and len(calls) == 1
    assert not list((tmp_path / "store").rglob("*.safetensors"))


@pytest.mark.slow
def test_missing_and_folder_entries_fail_once_with_a_reason(
    prefect_api, clip_dataset, tmp_path, monkeypatch
):
    folder = tmp_path / "listed"
    (folder / "a folder.mp4").mkdir(parents=True)
    shutil.copy(_videos(clip_dataset)[0], folder / "good clip.mp4")
    manifest = folder / "list.txt"
    manifest.write_bytes(b"good clip.mp4\nmissing clip.mp4\na folder.mp4\n")
    calls: list[str] = []
    real_video_key = FeatureStore.video_key

    def counted(self, video):
        calls.append(Path(video).name)
        return real_video_key(self, video)

    monkeypatch.setattr(FeatureStore, "video_key", counted)
    summary = _run(tiny_config(tmp_path, manifest, None, "clip"))
    assert (summary["ok"], summary["failed"]) == (1, 2), summary
    errors = {Path(f["video"]).name: f["error"] for f in summary["failures"]}
    assert errors["missing clip.mp4"].endswith("missing clip.mp4: no such file")
    assert errors["a folder.mp4"].endswith("a folder.mp4: is a directory, not a video file")
    assert all("\n" not in error for error in errors.values())
    assert calls.count("missing clip.mp4") == 1 and calls.count("a folder.mp4") == 1
