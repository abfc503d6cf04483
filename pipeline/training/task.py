"""The two tasks, clip (many-to-one) and frame (synced many-to-many), as objects.

Everything that differs between them lives here, so the loop, the job, labelling and the
pyfunc ask the task instead of branching on its name. Labelling implements
:class:`LabelBuilder`; a task picks which of its two methods turns its predictions into labels.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from pipeline.errors import UserError


class LabelBuilder(Protocol):
    """Turns one video's predictions into its labels (implemented by ``pipeline.labeling``)."""

    def clip(self, probs: np.ndarray) -> Any:  # (C,) class probabilities of the whole video
        ...

    def frames(self, probs: np.ndarray) -> Any:  # (T, C) probabilities per sampled step
        ...


class Task:
    """Base of the two tasks; ``name`` is the config value (``data.task``)."""

    name: str
    per_step: bool  # one label per sampled step (frame) rather than one per video (clip)

    def selection_score(self, metrics: dict[str, float]) -> float:
        """The validation number early stopping maximises."""
        raise NotImplementedError

    def to_labels(self, probs: np.ndarray, builder: LabelBuilder) -> Any:
        """One video's predictions -> labels, through ``builder``."""
        raise NotImplementedError

    def batch_outputs(self, probs: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
        """The pyfunc's array answer: (B, C) for clip models, a list of (T, C) for frame."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Task({self.name!r})"


class ClipTask(Task):
    name = "clip"
    per_step = False

    def selection_score(self, metrics: dict[str, float]) -> float:
        return metrics["accuracy"] + 1e-3 * metrics["f1_macro"]

    def to_labels(self, probs: np.ndarray, builder: LabelBuilder) -> Any:
        return builder.clip(probs)

    def batch_outputs(self, probs: list[np.ndarray]) -> np.ndarray:
        return np.stack(probs)


class FrameTask(Task):
    name = "frame"
    per_step = True

    def selection_score(self, metrics: dict[str, float]) -> float:
        return 0.5 * (metrics["frame_accuracy"] + metrics["f1_50"])

    def to_labels(self, probs: np.ndarray, builder: LabelBuilder) -> Any:
        return builder.frames(probs)

    def batch_outputs(self, probs: list[np.ndarray]) -> list[np.ndarray]:
        return probs


CLIP = ClipTask()
FRAME = FrameTask()
TASKS: dict[str, Task] = {task.name: task for task in (CLIP, FRAME)}


def task_named(name: str) -> Task:
    """The task object for ``data.task``; a clear error for anything else."""
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}: expected one of {sorted(TASKS)}") from None
