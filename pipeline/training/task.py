"""The two tasks, clip (many-to-one) and frame (synced many-to-many), as objects.

Everything that differs between them lives here (the model to build, the target layout, the
loss over padded steps, the metrics, the early-stopping score, predictions -> labels), so the
loop, the job, labelling and the pyfunc ask the task instead of branching on its name.
Labelling implements :class:`LabelBuilder`; a task picks which of its two methods turns its
predictions into labels. Torch is imported only by the methods that need it, so naming a task
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from pipeline.errors import UserError
from pipeline.training.metrics import clip_metrics, frame_metrics

if TYPE_CHECKING:
    import torch
    from torch import nn

    from models.rnn import RNNConfig


class LabelBuilder(Protocol):
    """Turns one video's predictions into its labels (implemented by ``pipeline.labeling``)."""

    def clip(self, probs: np.ndarray) -> Any:  # (C,) class probabilities of the whole video
        ...

    def frames(self, probs: np.ndarray) -> Any:  # (T, C) probabilities per sampled step
        ...


class VideoResult(NamedTuple):
    """One video's evaluation: its truth, prediction and probabilities."""

    true: Any  # clip: class id; frame: (T,) class ids
    pred: Any  # clip: class id; frame: (T,) class ids
    scores: np.ndarray  # clip: (C,); frame: (T, C)


class Task:
    """Base of the two tasks; ``name`` is the config value (``data.task``) and the model's
    ``task`` (``models.rnn.MODELS`` key, the ``task`` of a saved model's config)."""

    name: str
    per_step: bool  # one label per sampled step (frame) rather than one per video (clip)
    # Targets of a batch: clip (B,) class ids; frame (B, T) with IGNORE_INDEX on padded steps.
    target_dims: int
    # Class ids left out of segments in the metrics (frame: background is always id 0).
    background_ids: tuple[int, ...] = ()

    def build_model(self, input_dim: int, num_classes: int, cfg: RNNConfig) -> nn.Module:
        """This task's model (``models.rnn.MODELS[name]``)."""
        from models.rnn import build_model

        return build_model(self.name, input_dim, num_classes, cfg)

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        weight: torch.Tensor | None = None,
        smooth_weight: float = 0.0,
    ) -> torch.Tensor:
        """Mean cross-entropy over the batch's targets; padded steps (``IGNORE_INDEX``) count
        for nothing. ``weight``: optional (C,) class weights on ``logits``' device.
        ``smooth_weight``: the frame task adds that much :func:`smoothing_loss`; clip models
        have no neighbouring steps and ignore it."""
        import torch.nn.functional as F

        from pipeline.data.datasets import IGNORE_INDEX

        if targets.dim() != self.target_dims or logits.dim() != self.target_dims + 1:
            raise ValueError(
                f"{self.name} task: expected targets with {self.target_dims} dims and logits "
                f"with {self.target_dims + 1}, got {tuple(targets.shape)} and "
                f"{tuple(logits.shape)}"
            )
        flat = logits.reshape(-1, logits.shape[-1])  # (B, C) or (B * T, C)
        return F.cross_entropy(flat, targets.reshape(-1), weight=weight, ignore_index=IGNORE_INDEX)

    def video_result(self, probs: np.ndarray, target: np.ndarray, length: int) -> VideoResult:
        """One video's row of a batch (``probs`` (C,) or (T, C), padded) -> its result."""
        raise NotImplementedError

    def metrics(self, results: list[VideoResult], num_classes: int) -> dict[str, float]:
        """The task's metrics over videos (names in ``pipeline.training.metrics``)."""
        raise NotImplementedError

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
    target_dims = 1

    def video_result(self, probs: np.ndarray, target: np.ndarray, length: int) -> VideoResult:
        return VideoResult(int(target), int(probs.argmax()), probs)

    def metrics(self, results: list[VideoResult], num_classes: int) -> dict[str, float]:
        scores = np.stack([result.scores for result in results])  # (N, C)
        return clip_metrics([result.true for result in results], scores, num_classes)

    def selection_score(self, metrics: dict[str, float]) -> float:
        return metrics["accuracy"] + 1e-3 * metrics["f1_macro"]

    def to_labels(self, probs: np.ndarray, builder: LabelBuilder) -> Any:
        return builder.clip(probs)

    def batch_outputs(self, probs: list[np.ndarray]) -> np.ndarray:
        return np.stack(probs)


class FrameTask(Task):
    name = "frame"
    per_step = True
    target_dims = 2
    background_ids = (0,)  # annotations put the background label first

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        weight: torch.Tensor | None = None,
        smooth_weight: float = 0.0,
    ) -> torch.Tensor:
        from pipeline.data.datasets import IGNORE_INDEX

        loss = super().loss(logits, targets, weight)
        if smooth_weight:
            loss = loss + smooth_weight * smoothing_loss(logits, targets != IGNORE_INDEX)
        return loss

    def video_result(self, probs: np.ndarray, target: np.ndarray, length: int) -> VideoResult:
        steps = probs[:length]  # (T, C) without padding
        return VideoResult(target[:length], steps.argmax(-1), steps)

    def metrics(self, results: list[VideoResult], num_classes: int) -> dict[str, float]:
        preds = [result.pred for result in results]
        trues = [result.true for result in results]
        return frame_metrics(preds, trues, background=self.background_ids)

    def selection_score(self, metrics: dict[str, float]) -> float:
        return 0.5 * (metrics["frame_accuracy"] + metrics["f1_50"])

    def to_labels(self, probs: np.ndarray, builder: LabelBuilder) -> Any:
        return builder.frames(probs)

    def batch_outputs(self, probs: list[np.ndarray]) -> list[np.ndarray]:
        return probs


SMOOTH_TAU = 4.0  # MS-TCN's truncation of the log-probability differences


def smoothing_loss(
    logits: torch.Tensor, valid: torch.Tensor, tau: float = SMOOTH_TAU
) -> torch.Tensor:
    """MS-TCN's smoothing loss: the truncated MSE between the log-probabilities of neighbouring
    steps, ``min((log p[t] - log p[t-1])**2, tau**2)`` with ``log p[t-1]`` detached (each step
    is pulled towards the one before it, not the other way round), averaged over the classes
    and over the step pairs where both steps are valid.

    ``logits`` (B, T, C); ``valid`` (B, T) bool, True on real (unpadded) steps. Exact under
    padding: padded logits are replaced before the softmax, so whatever they hold (even inf or
    nan) changes neither the value nor any gradient, and no pair touching a padded step counts.
    A batch with no valid pair gives 0 (still attached to ``logits``' graph).
    """
    import torch
    import torch.nn.functional as F

    clean = logits.float().masked_fill(~valid[..., None], 0.0)  # (B, T, C)
    log_probs = F.log_softmax(clean, dim=-1)  # (B, T, C)
    diff = log_probs[:, 1:] - log_probs[:, :-1].detach()  # (B, T-1, C)
    per_pair = diff.pow(2).clamp(max=tau**2).mean(-1)  # (B, T-1)
    pairs = valid[:, 1:] & valid[:, :-1]  # (B, T-1)
    total = torch.where(pairs, per_pair, torch.zeros_like(per_pair)).sum()
    return total / pairs.sum().clamp(min=1)


CLIP = ClipTask()
FRAME = FrameTask()
TASKS: dict[str, Task] = {task.name: task for task in (CLIP, FRAME)}


def task_named(name: str) -> Task:
    """The task object for ``data.task``; a clear error for anything else."""
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}: expected one of {sorted(TASKS)}") from None
