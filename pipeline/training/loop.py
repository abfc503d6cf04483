"""``train_one_epoch`` / ``evaluate`` / ``fit``: the torchvision-references split.

``fit`` runs AdamW with gradient clipping, early stopping on the task's validation score with
the best weights restored, and whole-state checkpoints written atomically after every epoch so
``resume=True`` continues a killed run exactly where it stopped, and returns a finished run's
result without training again. What differs between clip and frame comes from the
:class:`~pipeline.training.task.Task`; nothing here branches on it.

A checkpoint is a ``torch.load(weights_only=True)`` dict (no pickled classes): model and
optimiser state, epoch, best weights, history, RNG state, whether early stopping ended it, and
what it is: ``model_config`` (``models.rnn.model_config_dict``) and ``config`` (the flattened
run config). Checkpoints written before those two keys existed still resume.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from models.rnn import model_config_dict
from pipeline.config import TrainConfig
from pipeline.fileio import atomic_write_bytes
from pipeline.training.task import Task, VideoResult

EpochReport = Callable[[int, dict[str, float]], None]


@dataclass
class EvalResult:
    loss: float
    metrics: dict[str, float]
    videos: list[str]
    y_true: list[Any]  # clip: class ids; frame: (T,) id arrays per video
    y_pred: list[Any]
    scores: list[np.ndarray]  # clip: (C,) probabilities; frame: (T, C) per video


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    early_stopping: bool = True  # False: no validation loader, every epoch run, the last kept


@dataclass
class FitSpec:
    """Everything one :func:`fit` needs."""

    model: nn.Module  # a ``models.rnn`` model of ``task``
    task: Task
    train_loader: DataLoader
    val_loader: DataLoader | None  # None: no early stopping, the last epoch's weights kept
    cfg: TrainConfig
    num_classes: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    class_weights: torch.Tensor | None = None  # (C,) loss weights, or None
    checkpoint: Path | None = None  # written after every epoch; None: no checkpoints
    resume: bool = False  # continue from ``checkpoint`` when it exists
    on_epoch: EpochReport | None = None  # (epoch, metrics row), also for resumed epochs
    run_config: dict[str, Any] = field(default_factory=dict)  # stored in checkpoints


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    task: Task,
    device: torch.device,
    grad_clip: float | None = None,
    class_weights: torch.Tensor | None = None,
    smooth_weight: float = 0.0,
) -> float:
    """One pass over ``loader``; the mean training loss per video (``smooth_weight``: the
    frame task's smoothing loss, :meth:`Task.loss`; multi-stage models: :func:`stages_loss`)."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        stages = stage_logits(model, batch.x, batch.lengths)
        loss = stages_loss(task, stages, batch.y, class_weights, smooth_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(batch.lengths)
        count += len(batch.lengths)
    return total / max(count, 1)


def stage_logits(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Every stage's logits, the last one's the prediction: ``model.stage_logits`` where the
    model has stages (``models.rnn``, ``models.tcn``), else ``[model(x, lengths)]``."""
    stages = getattr(model, "stage_logits", None)
    return stages(x, lengths) if stages is not None else [model(x, lengths)]


def stages_loss(
    task: Task,
    stages: list[torch.Tensor],
    targets: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    smooth_weight: float = 0.0,
) -> torch.Tensor:
    """The mean over stages of :meth:`Task.loss` (smoothing included): every stage learns to
    predict. MS-TCN sums the stages' losses; the mean keeps ``train_loss``/``val_loss`` on one
    scale whatever the number of stages (AdamW's steps barely depend on the loss's scale)."""
    losses = [task.loss(logits, targets, class_weights, smooth_weight) for logits in stages]
    return torch.stack(losses).mean()


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    task: Task,
    num_classes: int,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
    smooth_weight: float = 0.0,
) -> EvalResult:
    """Loss, the task's metrics and every video's truth, prediction and probabilities."""
    model.eval()
    total, count = 0.0, 0
    videos: list[str] = []
    results: list[VideoResult] = []
    for batch in loader:
        batch = batch.to(device)
        stages = stage_logits(model, batch.x, batch.lengths)
        loss = stages_loss(task, stages, batch.y, class_weights, smooth_weight)
        logits = stages[-1]  # the last stage predicts
        total += float(loss) * len(batch.lengths)
        count += len(batch.lengths)
        probs = logits.float().softmax(-1).cpu().numpy()  # (B, C) or (B, T, C)
        targets = batch.y.cpu().numpy()
        for i, video in enumerate(batch.videos):
            videos.append(video)
            results.append(task.video_result(probs[i], targets[i], int(batch.lengths[i])))
    if not videos:
        raise ValueError("nothing to evaluate: the split is empty")
    return EvalResult(
        loss=total / max(count, 1),
        metrics=task.metrics(results, num_classes),
        videos=videos,
        y_true=[result.true for result in results],
        y_pred=[result.pred for result in results],
        scores=[result.scores for result in results],
    )


def fit(spec: FitSpec) -> FitResult:
    """Train with early stopping; on return ``spec.model`` holds the best validation weights.

    With no ``val_loader`` it trains exactly ``cfg.epochs`` epochs, each the "best" so far, and
    keeps the last one's weights; the rows then hold ``train_loss`` only."""
    cfg, model = spec.cfg, spec.model
    weights = None if spec.class_weights is None else spec.class_weights.to(spec.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = _start_state(spec, optimizer)
    first = cfg.epochs + 1 if state["stopped"] else state["epoch"] + 1  # stopped: nothing to do
    for epoch in range(first, cfg.epochs + 1):
        _set_sampler_epoch(spec.train_loader, epoch)
        train_loss = train_one_epoch(
            model, spec.train_loader, optimizer, spec.task, spec.device, cfg.grad_clip, weights,
            cfg.smooth_weight,
        )  # fmt: skip
        if spec.val_loader is None:
            row = {"train_loss": train_loss}
            _record_epoch(state, model, epoch, row, None, math.nan)
        else:
            result = evaluate(
                model, spec.val_loader, spec.task, spec.num_classes, spec.device, weights,
                cfg.smooth_weight,
            )  # fmt: skip
            row = {"train_loss": train_loss, "val_loss": result.loss}
            row.update({f"val_{k}": v for k, v in result.metrics.items()})
            score = spec.task.selection_score(result.metrics)
            _record_epoch(state, model, epoch, row, score, result.loss)
            state["stopped"] = epoch - state["best_epoch"] >= cfg.patience > 0
        if spec.checkpoint is not None:  # first: a failing `on_epoch` must not lose the epoch
            save_checkpoint(spec.checkpoint, model, optimizer, state, spec.run_config)
        if spec.on_epoch is not None:
            spec.on_epoch(epoch, row)
        if state["stopped"]:
            break
    model.load_state_dict(state["best_model"])
    return FitResult(
        best_epoch=state["best_epoch"],
        best_score=state["best_score"],
        epochs_run=state["epoch"],
        history=state["history"],
        stopped_early=state["epoch"] < cfg.epochs,
        early_stopping=spec.val_loader is not None,
    )


def _start_state(spec: FitSpec, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A fresh state, or the checkpoint's when resuming (its epochs reported again)."""
    if not (spec.resume and spec.checkpoint is not None and spec.checkpoint.is_file()):
        return _fresh_state(spec.model)
    state = load_checkpoint(spec.checkpoint, spec.model, optimizer)
    # Checkpoints written before the flag existed: the early-stopping rule on their epochs.
    state["stopped"] |= state["epoch"] - state["best_epoch"] >= spec.cfg.patience > 0
    if spec.on_epoch is not None:  # the new run's record gets the epochs done before, too
        for done, row in enumerate(state["history"], start=1):
            spec.on_epoch(done, row)
    return state


def _record_epoch(
    state: dict[str, Any],
    model: nn.Module,
    epoch: int,
    row: dict[str, float],
    score: float | None,
    loss: float,
) -> None:
    """``score`` None: no validation, so this (latest) epoch is the one kept."""
    state["history"].append(row)
    # Small validation sets saturate the metric early: among equal scores, the lower
    # validation loss wins (a better-calibrated model, not just the first to get there).
    if score is None or (score, -loss) > (state["best_score"], -state["best_loss"]):
        state.update(
            best_score=math.nan if score is None else score,
            best_loss=loss,
            best_epoch=epoch,
            best_model=_copy_state(model),
        )
    state["epoch"] = epoch


def _fresh_state(model: nn.Module) -> dict[str, Any]:
    return {
        "epoch": 0,
        "best_epoch": 0,
        "best_score": -math.inf,
        "best_loss": math.inf,
        "best_model": _copy_state(model),
        "history": [],
        "stopped": False,  # early stopping ended the run: resuming trains no further
    }


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def _set_sampler_epoch(loader: DataLoader, epoch: int) -> None:
    sampler = getattr(loader, "batch_sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    run_config: dict[str, Any] | None = None,
) -> None:
    """Whole training state and what it belongs to, written atomically (a kill mid-write keeps
    the previous one)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "model_config": model_config_dict(model),
            "config": dict(run_config or {}),
            **state,
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``) and the RNG; the training state (epoch, best
    weights, history, stopped)."""
    data = _read(path)
    model.load_state_dict(data["model"])
    if optimizer is not None:
        optimizer.load_state_dict(data["optimizer"])
    torch.set_rng_state(data["rng"])
    cuda_rng = data.get("cuda_rng") or []
    if cuda_rng and torch.cuda.is_available() and len(cuda_rng) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_rng)
    keys = ("epoch", "best_epoch", "best_score", "best_loss", "best_model", "history")
    state = {k: data[k] for k in keys}
    state["stopped"] = bool(data.get("stopped", False))  # absent in older checkpoints
    return state


@dataclass
class CheckpointInfo:
    """What a checkpoint says about itself; None for checkpoints written before it did."""

    model_config: dict[str, Any] | None  # ``build_model(**model_config)`` rebuilds the model
    config: dict[str, Any] | None  # the flattened run config (``Config.flat()``)
    epoch: int


def checkpoint_info(path: Path) -> CheckpointInfo:
    data = _read(path)
    return CheckpointInfo(data.get("model_config"), data.get("config") or None, data["epoch"])


def _read(path: Path) -> dict[str, Any]:
    # weights_only: a checkpoint is data, never code (no arbitrary unpickling).
    return torch.load(path, map_location="cpu", weights_only=True)
