"""runner.kind: dask gives the same features and labels as local, against a real Prefect server."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.runner import RunnerError, check_runner, task_runner_for
from tests.conftest import tiny_config
from tests.helpers_flows import random_model, task_runs

VIDEOS = 6


@pytest.fixture(scope="module")
def small_folder(clip_dataset: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runner_videos")
    for video in sorted(clip_dataset.rglob("*.mp4"))[::6][:VIDEOS]:
        shutil.copy(video, folder / video.name)
    return folder


def _features(cfg) -> dict[str, np.ndarray]:
    from pipeline.features.store import FeatureStore, read_entry

    store = FeatureStore(cfg.features.store)
    return {e.video_key: read_entry(e.path).features.astype(np.float32) for e in store.entries()}


def _label_files(folder: Path) -> dict[str, bytes]:
    import json

    files = {}
    for path in sorted(folder.rglob("*.labels.json")):
        doc = json.loads(path.read_text())
        doc.pop("created_at", None)
        files[path.relative_to(folder).as_posix()] = doc
    return files


@pytest.mark.slow
def test_dask_matches_local_for_extraction_and_labelling(on_prefect_server, small_folder, tmp_path):
    from flows.extract import extract_features
    from flows.label import label_folder

    local = tiny_config(tmp_path / "local", small_folder, None, "clip")
    dask = tiny_config(
        tmp_path / "dask",
        small_folder,
        None,
        "clip",
        **{"runner.kind": "dask", "runner.workers": 2},
    )
    assert extract_features(local, print_summary=False)["ok"] == VIDEOS
    state = extract_features(dask, print_summary=False, return_state=True)
    summary = state.result()
    assert (summary["ok"], summary["failed"]) == (VIDEOS, 0), summary
    # The workers reported their task runs to the shared server, inside this flow run.
    runs = task_runs(state.state_details.flow_run_id)
    assert len(runs) == VIDEOS and all(r.state.is_completed() for r in runs)
    expected, got = _features(local), _features(dask)
    assert expected.keys() == got.keys() and len(got) == VIDEOS
    for key, features in expected.items():
        np.testing.assert_allclose(got[key], features, rtol=1e-2, atol=2e-3)

    model = random_model(local, tmp_path / "model")
    outputs = {}
    for name, cfg in (("local", local), ("dask", dask)):
        out = tmp_path / f"labels_{name}"
        result = label_folder(
            str(small_folder), str(model), str(out), config=cfg, print_summary=False
        )
        assert (result["ok"], result["failed"]) == (VIDEOS, 0), result
        outputs[name] = _label_files(out)
    assert len(outputs["local"]) == VIDEOS
    for relative, doc in outputs["local"].items():
        other = outputs["dask"][relative]
        assert doc["segments"] and [s["label"] for s in doc["segments"]] == [
            s["label"] for s in other["segments"]
        ]
        assert doc["clip"]["label"] == other["clip"]["label"], relative
        scores, other_scores = doc["clip"]["scores"], other["clip"]["scores"]
        assert scores.keys() == other_scores.keys()
        for label, score in scores.items():
            assert abs(score - other_scores[label]) < 1e-3, (relative, label)


def test_dask_without_a_prefect_server_is_refused_with_the_fix(tmp_path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cfg = tiny_config(tmp_path, tmp_path, None, "clip", **{"runner.kind": "dask"})
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(RunnerError) as caught:
            check_runner(cfg)
        message = str(caught.value)
        assert "temporary Prefect server" in message and "prefect server start" in message
        with pytest.raises(RunnerError):
            task_runner_for(cfg)


@pytest.mark.slow
def test_remote_scheduler_that_does_not_answer_is_a_clear_error(tmp_path, monkeypatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setattr("flows.runner.CONNECT_TIMEOUT_S", 2.0)
    sets = {"runner.kind": "dask", "runner.address": "tcp://127.0.0.1:9"}
    cfg = tiny_config(tmp_path, tmp_path, None, "clip", **sets)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with pytest.raises(RunnerError, match="dask scheduler"):
            task_runner_for(cfg)


@pytest.mark.parametrize(
    ("kind", "runner_class"),
    [("local", "ThreadPoolTaskRunner"), ("dask", "DaskTaskRunner")],
)
def test_runner_kind_picks_the_task_runner(kind: str, runner_class: str, tmp_path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cfg = tiny_config(tmp_path, tmp_path, None, "clip", **{"runner.kind": kind})
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        runner = task_runner_for(cfg)
    assert type(runner).__name__ == runner_class
    if kind == "dask":
        kwargs = runner.cluster_kwargs
        assert kwargs["n_workers"] == 2 and kwargs["threads_per_worker"] == 1
        assert kwargs["env"]["PREFECT_API_URL"] == "http://127.0.0.1:9/api"


def test_a_worker_reports_missing_folders_and_unreachable_servers(tmp_path, monkeypatch) -> None:
    """What check_workers runs on every worker, run here: a path and a URL this host lacks."""
    from flows.runner import NO_API, worker_problems

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    url = f"http://127.0.0.1:{_closed_port()}"
    problems = worker_problems([str(tmp_path), str(tmp_path / "elsewhere")], [url])
    assert problems[0] == NO_API
    assert problems[1] == f"no folder or file {tmp_path / 'elsewhere'} here"
    assert problems[2].startswith(f"cannot reach {url} (")
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect-host:4200/api")
    assert worker_problems([str(tmp_path)], []) == []


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed
