"""Model registry lookups: which run and version a model URI names now.

An alias (``models:/name@candidate``), ``latest`` or a stage moves as new versions are
registered; labelling pins such a URI to one fixed version here, once per run, so every video
of a run is labelled by the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


class ModelRef(NamedTuple):
    """Where a model is: ``uri`` as given (a folder resolved), ``source`` the fixed URI to load."""

    uri: str
    source: str  # models:/<name>/<version>, runs:/..., or the folder: never an alias
    run_id: str | None
    version: str | None


def use_tracking(tracking_uri: str | None) -> None:
    """Point MLflow's registry and model loading at ``tracking_uri`` (None: leave it)."""
    if tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)


def resolve_model(uri: str, tracking_uri: str | None = None) -> ModelRef:
    """``uri`` pinned down: a folder, a run's model, or one registered version.

    Raises :class:`pipeline.tracking.TrackingError` when an alias or ``latest`` names nothing.
    """
    folder = Path(uri).expanduser()
    if folder.is_dir():
        return ModelRef(str(folder.resolve()), str(folder.resolve()), None, None)
    if uri.startswith("runs:/"):
        return ModelRef(uri, uri, uri.removeprefix("runs:/").split("/")[0], None)
    if not uri.startswith("models:/"):
        return ModelRef(uri, uri, None, None)  # let the loader say what is wrong with it
    use_tracking(tracking_uri)
    name, alias, version = _parse_models_uri(uri)
    if alias is None and version.isdigit():
        found = _registered_version(name, version)  # ids only: the URI is fixed already
        return ModelRef(uri, uri, *(found or (None, None)))
    run_id, version = _moving_version(uri, name, alias, version)
    return ModelRef(uri, f"models:/{name}/{version}", run_id, version)


def _parse_models_uri(uri: str) -> tuple[str, str | None, str]:
    """(name, alias, version-or-stage) of ``models:/name@alias`` or ``models:/name/ref``."""
    name_and_ref = uri.removeprefix("models:/").strip("/")
    if "@" in name_and_ref:
        name, alias = name_and_ref.split("@", 1)
        return name, alias, ""
    name, _, ref = name_and_ref.rpartition("/")
    return name, None, ref


def _registered_version(name: str, version: str) -> tuple[str, str] | None:
    """(run id, version) of a registered version, None where the registry cannot tell."""
    from mlflow import MlflowClient

    try:
        found = MlflowClient().get_model_version(name, version)
    except Exception:  # noqa: BLE001 - loading reports a missing version; only ids are unknown
        return None
    return found.run_id, str(found.version)


def _moving_version(uri: str, name: str, alias: str | None, ref: str) -> tuple[str, str]:
    """(run id, version) that an alias, ``latest`` or a stage points at now."""
    from mlflow import MlflowClient

    # Imported here: the MLflow pyfunc imports this module but never logs (no matplotlib).
    from pipeline.tracking.mlflow import TrackingError

    client = MlflowClient()
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = _newest(client.search_model_versions(f"name = '{name}'"), ref)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds here
        raise TrackingError(f"cannot load model {uri}: {exc}") from None
    return found.run_id, str(found.version)


def _newest(versions: list[Any], stage: str) -> Any:
    """The highest version (``latest``) or the highest one in ``stage``."""
    if stage.lower() != "latest":
        versions = [v for v in versions if (v.current_stage or "").lower() == stage.lower()]
    if not versions:
        raise LookupError(f"no registered version matches {stage!r}")
    return max(versions, key=lambda v: int(v.version))
