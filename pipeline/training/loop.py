"""``train_one_epoch`` / ``evaluate`` / ``fit``: the torchvision-references split.

``fit`` runs AdamW with gradient clipping, early stopping on the validation metric with the
best weights restored, and whole-state checkpoints (model, optimiser, epoch, best weights,
history, RNG state, whether early stopping ended it) written atomically after every epoch so
``resume=True`` continues a killed run exactly where it stopped, and returns a finished run's
result without training again.
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

from pipeline.config import TrainConfig
from pipeline.data.datasets import IGNORE_INDEX, Batch
from pipeline.features.store import atomic_write_bytes
from pipeline.training.metrics import clip_metrics, frame_metrics


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


def selection_score(task: str, metrics: dict[str, float]) -> float:
    """The validation number early stopping maximises."""
    if task == "clip":
        return metrics["accuracy"] + 1e-3 * metrics["f1_macro"]
    return 0.5 * (metrics["frame_accuracy"] + metrics["f1_50"])


def loss_function(task: str, weights: torch.Tensor | None = None) -> nn.Module:
    return nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE_INDEX)


def _loss(loss_fn: nn.Module, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    if logits.dim() == 3:  # frame task: (B, T, C) against (B, T), padding is IGNORE_INDEX
        return loss_fn(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1))
    return loss_fn(logits, batch.y)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
    grad_clip: float | None = None,
) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        logits = model(batch.x, batch.lengths)
        loss = _loss(loss_fn, logits, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(batch.lengths)
        count += len(batch.lengths)
    return total / max(count, 1)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    device: torch.device,
    task: str,
    num_classes: int,
    background_id: int | None = None,
) -> EvalResult:
    model.eval()
    total, count = 0.0, 0
    videos, y_true, y_pred, scores = [], [], [], []
    for batch in loader:
        batch = batch.to(device)
        logits = model(batch.x, batch.lengths)
        total += float(_loss(loss_fn, logits, batch)) * len(batch.lengths)
        count += len(batch.lengths)
        probs = logits.float().softmax(-1).cpu().numpy()
        targets = batch.y.cpu().numpy()
        for i, video in enumerate(batch.videos):
            videos.append(video)
            if task == "clip":
                y_true.append(int(targets[i]))
                y_pred.append(int(probs[i].argmax()))
                scores.append(probs[i])
            else:
                steps = int(batch.lengths[i])
                y_true.append(targets[i, :steps])
                y_pred.append(probs[i, :steps].argmax(-1))
                scores.append(probs[i, :steps])
    if not videos:
        raise ValueError("nothing to evaluate: the split is empty")
    if task == "clip":
        metrics = clip_metrics(y_true, np.stack(scores), num_classes)
    else:
        background = () if background_id is None else (background_id,)
        metrics = frame_metrics(y_pred, y_true, background=background)
    return EvalResult(total / max(count, 1), metrics, videos, y_true, y_pred, scores)


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    cfg: TrainConfig,
    task: str,
    num_classes: int,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
    background_id: int | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train with early stopping; on return ``model`` holds the best validation weights."""
    loss_fn = loss_function(task, None if class_weights is None else class_weights.to(device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = _fresh_state(model)
    if resume and checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint, model, optimizer)
        # Checkpoints written before the flag existed: the early-stopping rule on their epochs.
        state["stopped"] |= state["epoch"] - state["best_epoch"] >= cfg.patience > 0
        if on_epoch is not None:  # the new run's record gets the epochs done before, too
            for done, row in enumerate(state["history"], start=1):
                on_epoch(done, row)
    first = cfg.epochs + 1 if state["stopped"] else state["epoch"] + 1  # stopped: nothing to do
    for epoch in range(first, cfg.epochs + 1):
        _set_sampler_epoch(train_loader, epoch)
        train_loss = train_one_epoch(model, train_loader, optimizer, loss_fn, device, cfg.grad_clip)
        result = evaluate(model, val_loader, loss_fn, device, task, num_classes, background_id)
        row = {"train_loss": train_loss, "val_loss": result.loss}
        row.update({f"val_{k}": v for k, v in result.metrics.items()})
        state["history"].append(row)
        score = selection_score(task, result.metrics)
        # Small validation sets saturate the metric early: among equal scores, the lower
        # validation loss wins (a better-calibrated model, not just the first to get there).
        if (score, -result.loss) > (state["best_score"], -state["best_loss"]):
            state.update(
                best_score=score, best_loss=result.loss, best_epoch=epoch,
                best_model=_copy_state(model),
            )  # fmt: skip
        state["epoch"] = epoch
        state["stopped"] = epoch - state["best_epoch"] >= cfg.patience > 0
        if checkpoint is not None:  # first: a failing `on_epoch` must not lose the epoch
            save_checkpoint(checkpoint, model, optimizer, state)
        if on_epoch is not None:
            on_epoch(epoch, row)
        if state["stopped"]:
            break
    model.load_state_dict(state["best_model"])
    return FitResult(
        best_epoch=state["best_epoch"],
        best_score=state["best_score"],
        epochs_run=state["epoch"],
        history=state["history"],
        stopped_early=state["epoch"] < cfg.epochs,
    )


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
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Whole training state, written atomically (a kill mid-write keeps the previous one)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **state,
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    # weights_only: a checkpoint is data, never code (no arbitrary unpickling).
    data = torch.load(path, map_location="cpu", weights_only=True)
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
