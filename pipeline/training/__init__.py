"""Training: the task definitions, the epoch loop, metrics and one whole training job."""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    task="Task CLIP FRAME TASKS task_named LabelBuilder VideoResult",
    job=(
        "run_training prepare require_test_checkpoint EmptySplit TrainingOutcome TrainingSetup "
        "build fit_or_restore choose_merge_length evaluate_and_log register Prepared"
    ),
    loop="train_one_epoch evaluate fit FitSpec FitResult EvalResult checkpoint_info",
    metrics="clip_metrics frame_metrics",
    smoothing="MIN_SEGMENT_GRID select_min_segment smoothed_metrics NativeVideo Selection",
)
