"""Tracking: every MLflow call (runs, what they hold, the registry) and model files.

``mlflow`` owns the run lifecycle and logging, ``model_io`` a trained model as plain files;
``registry`` looks up registered versions and moves the aliases.
"""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "TrackingError": "mlflow",
    "CANDIDATE_ALIAS": "mlflow",
    "resolve_uri": "mlflow",
    "check_reachable": "mlflow",
    "ensure_experiment": "mlflow",
    "ui_command": "mlflow",
    "tracked_run": "mlflow",
    "log_metrics": "mlflow",
    "log_figure": "mlflow",
    "log_text": "mlflow",
    "log_dict": "mlflow",
    "log_config": "mlflow",
    "log_model": "mlflow",
    "load_model": "mlflow",
    "ModelRef": "registry",
    "resolve_model": "registry",
    "CHALLENGER_ALIAS": "registry",
    "VersionInfo": "registry",
    "registered_versions": "registry",
    "version_info": "registry",
    "alias_info": "registry",
    "move_candidate": "registry",
    "rollback_candidate": "registry",
    "set_tags": "mlflow",
    "TrainedModel": "model_io",
    "save_model_dir": "model_io",
    "load_model_dir": "model_io",
    "load_model_files": "model_io",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
