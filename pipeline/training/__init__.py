"""Training: the task definitions, the epoch loop, metrics and one whole training job."""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "Task": "task",
    "CLIP": "task",
    "FRAME": "task",
    "TASKS": "task",
    "task_named": "task",
    "LabelBuilder": "task",
    "run_training": "job",
    "prepare": "job",
    "require_test_checkpoint": "job",
    "EmptySplit": "job",
    "TrainingOutcome": "job",
    "train_one_epoch": "loop",
    "evaluate": "loop",
    "fit": "loop",
    "clip_metrics": "metrics",
    "frame_metrics": "metrics",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
