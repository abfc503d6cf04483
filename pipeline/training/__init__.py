"""Training: the task definitions, the epoch loop, metrics and one whole training job."""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "Task": "task",
    "CLIP": "task",
    "FRAME": "task",
    "TASKS": "task",
    "task_named": "task",
    "LabelBuilder": "task",
    "VideoResult": "task",
    "run_training": "job",
    "prepare": "job",
    "require_test_checkpoint": "job",
    "EmptySplit": "job",
    "TrainingOutcome": "job",
    "TrainingSetup": "job",
    "build": "job",
    "fit_or_restore": "job",
    "evaluate_and_log": "job",
    "register": "job",
    "train_one_epoch": "loop",
    "evaluate": "loop",
    "fit": "loop",
    "FitSpec": "loop",
    "FitResult": "loop",
    "EvalResult": "loop",
    "checkpoint_info": "loop",
    "clip_metrics": "metrics",
    "frame_metrics": "metrics",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
