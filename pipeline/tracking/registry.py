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
        raise TrackingError(
            f"cannot load model {uri} (tracking store: {_store()}): {exc}"
        ) from None
    return found.run_id, str(found.version)


def _newest(versions: list[Any], stage: str) -> Any:
    """The highest version (``latest``) or the highest one in ``stage``."""
    if stage.lower() != "latest":
        versions = [v for v in versions if (v.current_stage or "").lower() == stage.lower()]
    if not versions:
        raise LookupError(f"no registered version matches {stage!r}")
    return max(versions, key=lambda v: int(v.version))


# --- the candidate alias: versions, promotion by hand, rollback ---------------------------------

CHALLENGER_ALIAS = "challenger"  # every newly registered version
# The versions that held @candidate, oldest first (a registered-model tag): rollback pops it.
HISTORY_TAG = "vidtag.candidate_history"
HISTORY_LIMIT = 100


class VersionInfo(NamedTuple):
    """One registered version with its run's tags and final metrics."""

    name: str
    version: str
    run_id: str | None
    aliases: list[str]
    run_tags: dict[str, str]
    metrics: dict[str, float]  # the run's latest value of each metric


def _store() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def _tracking_error(message: str) -> Exception:
    from pipeline.tracking.mlflow import TrackingError

    return TrackingError(f"{message} (tracking store: {_store()})")


def _version_info(client: Any, found: Any) -> VersionInfo:
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if found.run_id:
        try:
            run = client.get_run(found.run_id)
            tags, metrics = dict(run.data.tags), dict(run.data.metrics)
        except Exception:  # noqa: BLE001 - a deleted run: the version is still listed
            pass
    aliases = sorted(found.aliases or [])
    return VersionInfo(found.name, str(found.version), found.run_id, aliases, tags, metrics)


def registered_versions(name: str) -> list[VersionInfo]:
    """Every version of registered model ``name``, newest first; a TrackingError naming the
    store when there is no such model."""
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        model = client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - MLflow raises many kinds here
        raise _tracking_error(f"registered model {name!r} not found") from None
    # Searched versions carry no aliases here: the registered model has them all.
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    ordered = sorted(versions, key=lambda v: int(v.version), reverse=True)
    return [
        _version_info(client, found)._replace(aliases=sorted(aliases.get(str(found.version), [])))
        for found in ordered
    ]


def version_info(name: str, version: str) -> VersionInfo:
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        found = client.get_model_version(name, str(version))
    except Exception:  # noqa: BLE001 - MLflow raises many kinds here
        raise _tracking_error(f"registered model {name!r} has no version {version}") from None
    return _version_info(client, found)


def alias_info(name: str, alias: str) -> VersionInfo | None:
    """The version ``models:/name@alias`` points at, None when the alias is not set."""
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        found = client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - no such alias (or model)
        return None
    return _version_info(client, found)


def set_alias(name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))


def candidate_history(name: str) -> list[str]:
    """The versions that held @candidate, oldest first (the current one last)."""
    import json

    from mlflow import MlflowClient

    tags = MlflowClient().get_registered_model(name).tags or {}
    try:
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
    except ValueError:
        return []


def _save_history(name: str, history: list[str]) -> None:
    import json

    from mlflow import MlflowClient

    value = json.dumps(history[-HISTORY_LIMIT:])
    MlflowClient().set_registered_model_tag(name, HISTORY_TAG, value)


def move_candidate(name: str, version: str) -> str | None:
    """Point @candidate at ``version`` (which must exist) and remember the move; returns the
    version it pointed at before (None: none)."""
    from pipeline.tracking.mlflow import CANDIDATE_ALIAS

    version_info(name, version)  # a clear error for a version that does not exist
    previous = alias_info(name, CANDIDATE_ALIAS)
    history = candidate_history(name)
    if previous is not None and (not history or history[-1] != previous.version):
        history.append(previous.version)  # set before the history was kept (or by hand)
    set_alias(name, CANDIDATE_ALIAS, version)
    if not history or history[-1] != str(version):
        history.append(str(version))
    _save_history(name, history)
    return previous.version if previous is not None else None


def rollback_candidate(name: str) -> tuple[str, str]:
    """Move @candidate back to the version that held it before; (from, to) versions."""
    from pipeline.tracking.mlflow import CANDIDATE_ALIAS

    current = alias_info(name, CANDIDATE_ALIAS)
    if current is None:
        registered_versions(name)  # no such model: say so
        raise _tracking_error(f"registered model {name!r} has no @{CANDIDATE_ALIAS}")
    history = candidate_history(name)
    while history and history[-1] == current.version:
        history.pop()
    if not history:
        raise _tracking_error(
            f"@{CANDIDATE_ALIAS} of {name!r} is version {current.version} and no earlier version "
            f"held it: nothing to roll back to"
        )
    target = history[-1]
    set_alias(name, CANDIDATE_ALIAS, target)
    _save_history(name, history)
    return current.version, target
