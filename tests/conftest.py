"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Tools keep state in the working folder or the home folder by default (Hypothesis in
# ./.hypothesis, Prefect in ~/.prefect): point them at one session temp dir, set before they
# are imported, removed when the session ends.
_SESSION_DIR = tempfile.mkdtemp(prefix="vidtag-tests-")
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(_SESSION_DIR, "hypothesis")
os.environ["PREFECT_HOME"] = os.path.join(_SESSION_DIR, "prefect")
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
# torch's inductor makes its cache folder in the system temp dir as soon as torchvision loads.
os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(_SESSION_DIR, "torchinductor")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("vidtag", database=None)
settings.load_profile("vidtag")

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}

# Keep every tool's state inside the test session, never in the user's home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def shared_video_files() -> list[Path]:
    """The real test videos in ../shared/data/videos (empty when that folder is absent)."""
    if not SHARED_VIDEOS.is_dir():
        return []
    return sorted(p for p in SHARED_VIDEOS.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


@pytest.fixture(scope="session")
def shared_videos() -> list[Path]:
    files = shared_video_files()
    if not files:
        pytest.skip("../shared/data/videos is absent: real-video tests skipped")
    return files


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect API for the whole session (starting one costs 10-20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.prefect_env import configure, lean_flow_runs

    configure()
    with prefect_test_harness(server_startup_timeout=120), lean_flow_runs():
        yield


def tiny_config(root: Path, videos: Path, annotations: Path | None, task: str, **sets: object):
    """A fast config for tests: random-init resnet18 at 64 px, small RNN, temp stores."""
    from pipeline.config import load_config

    overrides = {
        "data.task": task,
        "data.videos": videos,
        "data.annotations": annotations,
        "decode.sample_fps": 5,
        "features.weights": "none",
        "features.image_size": 64,
        "features.compile": "off",
        "features.store": root / "store",
        "model.hidden": 48,
        "model.layers": 1,
        "train.epochs": 25,
        "train.batch_size": 8,
        "train.lr": 0.003,
        "train.patience": 8,
        "train.checkpoint_dir": root / "checkpoints",
        "tracking.uri": f"sqlite:///{root / 'mlflow.db'}",
        "tracking.experiment": "tests",
        "tracking.registered_model": f"test-{task}",
    }
    overrides.update(sets)
    return load_config(None, [f"{k}={'null' if v is None else v}" for k, v in overrides.items()])


@pytest.fixture(scope="session")
def index_videos(tmp_path_factory) -> dict[str, Path]:
    """Index videos (tests/helpers_video.py): frame-exact checks without any real file."""
    from tests.helpers_video import write_index_videos

    return write_index_videos(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="session")
def clip_dataset(tmp_path_factory) -> Path:
    """36 short synthetic clip videos (6 classes incl. two order-reversed pairs)."""
    from pipeline.synth.dataset import write_dataset

    root = tmp_path_factory.mktemp("clip_data")
    write_dataset(root, task="clip", videos=36, seed=1, duration_s=(2.0, 4.0))
    return root


@pytest.fixture(scope="session")
def frame_dataset(tmp_path_factory) -> Path:
    from pipeline.synth.dataset import write_dataset

    root = tmp_path_factory.mktemp("frame_data")
    write_dataset(root, task="frame", videos=16, seed=2, segments=(3, 5))
    return root


# Shared fixtures from other modules: real Prefect and MLflow servers (tests/servers.py), models
# trained once per session (tests/helpers_trained.py), a SQLite MLflow registry
# (tests/helpers_labeling.py).
from tests.helpers_labeling import registry  # noqa: E402, F401
from tests.helpers_review import review_folder  # noqa: E402, F401
from tests.helpers_trained import clip_run, labelled, trained  # noqa: E402, F401
from tests.servers import mlflow_server, on_prefect_server, prefect_server  # noqa: E402, F401
