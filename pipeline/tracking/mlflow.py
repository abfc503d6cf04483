"""MLflow: where runs go, the run lifecycle, what a run holds, model logging and loading."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import Config, absolute_sqlite_uri
from pipeline.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
CANDIDATE_ALIAS = "candidate"


MODEL_URI_FORMS = (
    "give models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model or a local model folder"
)


class TrackingError(UserError):
    """The tracking server cannot be used (unreachable, refused, bad URI)."""


class RunKilled(KeyboardInterrupt):
    """SIGTERM while a run is open: the run ends KILLED, like Ctrl-C."""


def resolve_uri(cfg: Config) -> str:
    """Config, then $MLFLOW_TRACKING_URI, then ``sqlite:///mlflow.db`` in the working folder.

    A relative ``sqlite:///`` path in a config file was made absolute against the file's folder
    when it was loaded; one from the environment resolves against the working folder.
    """
    if cfg.tracking.uri:
        return cfg.tracking.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return absolute_sqlite_uri(os.environ["MLFLOW_TRACKING_URI"], Path.cwd())
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other kind of store)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def require_store(uri: str) -> None:
    """Commands that only read must not create an empty SQLite store: say there is none."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise TrackingError(
            f"no MLflow tracking store at {path.resolve()} (tracking URI {uri}): train first, or "
            f"point tracking.uri (-c CONFIG, --set tracking.uri=..., $MLFLOW_TRACKING_URI) at "
            f"the store that holds the runs"
        )


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail before any long work when a remote tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            if response.status >= 400:
                raise TrackingError(f"MLflow server {uri} answered HTTP {response.status}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({exc}); start it (see `vidtag ui` or "
            f"`mlflow server`), or set tracking.uri to a sqlite:/// file"
        ) from None


def artifact_root(uri: str) -> str | None:
    """For a SQLite store, artifacts live beside the database (MLflow's own default is
    ``./mlruns`` in whatever folder the process started in)."""
    if not uri.startswith("sqlite:///"):
        return None  # a tracking server decides where its artifacts go
    return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()


# MLflow 3's UI opens an experiment in its GenAI view (traces, assistant) unless this tag says
# otherwise; "custom_model_development" is its model-training view ("Training runs"). The key
# and value are the ones the MLflow 3.17 web app reads and writes (ExperimentKind in its JS).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"


def ensure_experiment(uri: str, name: str) -> None:
    """Create experiment ``name`` (tagged for MLflow's training view) if needed, and use it."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    existing = client.get_experiment_by_name(name)
    if existing is None:
        try:
            client.create_experiment(
                name,
                artifact_location=artifact_root(uri),
                tags={EXPERIMENT_KIND_TAG: TRAINING_KIND},
            )
        except mlflow.exceptions.MlflowException:
            pass  # created meanwhile by a concurrent run
    elif existing.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow experiment {name!r} is deleted (in the trash) at {uri}: restore it "
            f"(`mlflow experiments restore --experiment-id {existing.experiment_id}`), delete it "
            "for good (`mlflow gc`), or pick another name with --set tracking.experiment=NAME"
        )
    elif EXPERIMENT_KIND_TAG not in existing.tags:  # made before vidtag tagged; a choice stays
        client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    mlflow.set_experiment(name)


def ui_command(uri: str, port: int = 5000) -> str:
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port {port} --workers 1"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextlib.contextmanager
def tracked_run(cfg: Config, tags: dict[str, str], run_name: str | None = None) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, FAILED (exception) or KILLED (Ctrl-C / SIGTERM)."""
    import mlflow

    uri = resolve_uri(cfg)
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    ensure_experiment(uri, cfg.tracking.experiment)
    previous = _raise_on_sigterm()
    run = mlflow.start_run(run_name=run_name, tags={**tags, "git_commit": git_commit()})
    try:
        mlflow.log_params(cfg.flat())
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")
    finally:
        _restore_sigterm(previous)


def _raise_on_sigterm():
    def handler(signum, frame):
        raise RunKilled("terminated by SIGTERM")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Metrics at ``step`` (an epoch) or final; one batched call, not one request per metric."""
    import mlflow

    mlflow.log_metrics(metrics, step=step)


def log_params(params: dict[str, Any]) -> None:
    """Params on the active run besides the config's (e.g. a value training chose)."""
    import mlflow

    mlflow.log_params(params)


def set_tags(tags: dict[str, str]) -> None:
    """Tags on the active run."""
    import mlflow

    mlflow.set_tags(tags)


def log_figure(figure: Any, artifact_file: str) -> None:
    """A matplotlib figure as an image artifact (``.png``)."""
    import mlflow

    mlflow.log_figure(figure, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    import mlflow

    mlflow.log_text(text, artifact_file)


def log_dict(document: dict[str, Any], artifact_file: str) -> None:
    """A JSON (or YAML, by extension) artifact."""
    import mlflow

    mlflow.log_dict(document, artifact_file)


def log_config(cfg: Config, classes: list[str]) -> None:
    import mlflow

    mlflow.log_text(cfg.to_yaml(), "config.yaml")
    mlflow.log_dict({"classes": classes}, "classes.json")


def log_model(
    model_dir: Path,
    registered_model: str | None,
    alias: str = CANDIDATE_ALIAS,
) -> tuple[str, str | None]:
    """Log the model folder as a pyfunc model from code, with the served table's signature and
    an input example; register it with ``alias`` (training registers @challenger and lets the
    promotion gate move @candidate).

    Returns (model URI, registered version or None).
    """
    import mlflow
    from mlflow import MlflowClient

    from pipeline.tracking import served
    from pipeline.tracking.model_io import MODEL_CONFIG, model_files

    task = json.loads((model_dir / MODEL_CONFIG).read_text())["task"]

    # MLflow prints registration chatter and a type-hint advice warning that does not apply to
    # a pyfunc taking arrays or tables; errors still raise.
    with _quiet():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(REPO_ROOT / "pipeline" / "labeling" / "pyfunc.py"),
            artifacts={name: str(path) for name, path in model_files(model_dir).items()},
            code_paths=[str(REPO_ROOT / "pipeline"), str(REPO_ROOT / "models")],
            registered_model_name=registered_model,
            pip_requirements=_requirements(),
            signature=served.signature(task),
            input_example=served.input_example(),
        )
    version = None
    if registered_model:
        version = str(info.registered_model_version)
        MlflowClient().set_registered_model_alias(registered_model, alias, version)
    return info.model_uri, version


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import io
    import warnings

    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


# Every distribution the pyfunc imports when it predicts, features or a table of videos
# (pipeline/labeling/pyfunc.py -> labeling -> features, video, training.task, tracking,
# models), with pyproject.toml's floor for when it is not installed as a distribution here.
# decord is left out: it is optional (`decode.backend: auto` decodes with OpenCV).
PREDICT_REQUIREMENTS = {
    "torch": ">=2.4",
    "torchvision": ">=0.19",
    "numpy": ">=1.24",
    "safetensors": ">=0.4",
    "pydantic": ">=2.5",
    "pyyaml": ">=6",
    "mlflow": ">=3.0",
    "opencv-python-headless": ">=4.8",  # pipeline.video._backends: import cv2
}


def _requirements() -> list[str]:
    """The pyfunc's pip requirements: the installed versions, else pyproject.toml's floors."""
    from importlib.metadata import version

    pins = []
    for name, floor in PREDICT_REQUIREMENTS.items():
        try:
            pins.append(f"{name}=={version(name)}")
        except Exception:  # noqa: BLE001 - not installed from a distribution
            pins.append(f"{name}{floor}")
    return pins


def load_model(uri: str):
    """A :class:`TrainedModel` from ``models:/name@alias``, ``runs:/id/model`` or a folder."""
    from pipeline.tracking.model_io import FILES, load_model_dir, load_model_files, model_files

    if Path(uri).expanduser().is_dir() and (Path(uri).expanduser() / FILES[0]).exists():
        return load_model_dir(Path(uri).expanduser())
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri.rstrip("/")))
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds here
        hint = "" if ":/" in uri else f" ({MODEL_URI_FORMS})"
        store = f" (tracking store: {mlflow.get_tracking_uri()})" if ":/" in uri else ""
        raise TrackingError(f"cannot load model {uri}{store}: {exc}{hint}") from None
    artifacts = local / "artifacts"
    folder = artifacts if artifacts.is_dir() else local
    return load_model_files(model_files(folder))
