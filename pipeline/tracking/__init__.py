"""Tracking: every MLflow call (runs, what they hold, the registry) and model files.

``mlflow`` owns the run lifecycle and logging, ``model_io`` a trained model as plain files;
``registry`` looks up registered versions and moves the aliases.
"""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    mlflow=(
        "TrackingError CANDIDATE_ALIAS resolve_uri check_reachable ensure_experiment ui_command "
        "tracked_run log_metrics log_figure log_text log_dict log_config log_model load_model "
        "set_tags log_params"
    ),
    registry=(
        "ModelRef resolve_model CHALLENGER_ALIAS VersionInfo registered_versions version_info "
        "alias_info move_candidate rollback_candidate"
    ),
    model_io="TrainedModel save_model_dir load_model_dir load_model_files",
)
