"""pipeline/training/task.py: what differs between the clip and the frame task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.rnn import ClipClassifier, FrameTagger, RNNConfig
from pipeline.data.datasets import IGNORE_INDEX
from pipeline.errors import UserError
from pipeline.training.metrics import clip_metrics, frame_metrics
from pipeline.training.task import (
    CLIP,
    FRAME,
    TASKS,
    ClipTask,
    FrameTask,
    smoothing_loss,
    task_named,
)


def test_tasks_are_named_by_their_config_value() -> None:
    assert task_named("clip") is CLIP and task_named("frame") is FRAME
    assert set(TASKS) == {"clip", "frame"}
    assert isinstance(CLIP, ClipTask) and isinstance(FRAME, FrameTask)
    with pytest.raises(UserError, match="unknown task 'video'"):
        task_named("video")


@pytest.mark.parametrize(
    "task, model_class, shape", [(CLIP, ClipClassifier, (2, 3)), (FRAME, FrameTagger, (2, 5, 3))]
)
def test_each_task_builds_its_model(task, model_class, shape) -> None:
    model = task.build_model(4, 3, RNNConfig(hidden=6, layers=1))
    assert isinstance(model, model_class) and model.task == task.name
    logits = model(torch.randn(2, 5, 4), torch.tensor([5, 2]))
    assert logits.shape == shape


def test_clip_loss_is_cross_entropy_with_class_weights() -> None:
    logits, targets = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    weight = torch.tensor([1.0, 2.0, 0.5])
    expected = F.cross_entropy(logits, targets, weight=weight)
    torch.testing.assert_close(CLIP.loss(logits, targets, weight), expected)


def test_frame_loss_ignores_padded_steps() -> None:
    logits = torch.randn(2, 4, 3)  # (B, T, C)
    targets = torch.tensor([[0, 1, 2, 1], [2, 0, IGNORE_INDEX, IGNORE_INDEX]])
    valid = targets != IGNORE_INDEX
    expected = F.cross_entropy(logits[valid], targets[valid])  # the 6 valid steps only
    torch.testing.assert_close(FRAME.loss(logits, targets), expected)
    junk = logits.clone()
    junk[1, 2:] = 1e4  # whatever the model says on padding does not count
    torch.testing.assert_close(FRAME.loss(junk, targets), expected)


def _smoothing_by_hand(logits: torch.Tensor, tau: float = 4.0) -> float:
    """MS-TCN's truncated MSE of one unpadded (T, C) sequence, step pair by step pair."""
    log_probs = F.log_softmax(logits.double(), dim=-1)
    pairs = [
        float(((log_probs[t] - log_probs[t - 1]) ** 2).clamp(max=tau**2).mean())
        for t in range(1, len(logits))
    ]
    return sum(pairs) / len(pairs)


def _loss_and_grad(logits: torch.Tensor, valid: torch.Tensor) -> tuple[float, torch.Tensor]:
    logits = logits.clone().requires_grad_(True)
    loss = smoothing_loss(logits, valid)
    loss.backward()
    return float(loss.detach()), logits.grad


def test_the_smoothing_loss_is_ms_tcns_truncated_mse() -> None:
    logits = torch.randn(7, 4, generator=torch.Generator().manual_seed(0)) * 3
    logits[4, 0] = 40.0  # one jump beyond tau: that pair's terms are truncated to tau**2
    value = smoothing_loss(logits[None], torch.ones(1, 7, dtype=torch.bool))
    assert value.item() == pytest.approx(_smoothing_by_hand(logits), rel=1e-5)
    # log p[t-1] is detached: the first step of a pair gets no gradient from that pair.
    _, grad = _loss_and_grad(torch.randn(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))
    assert torch.all(grad[0, 0] == 0) and torch.any(grad[0, 1] != 0)


def test_the_smoothing_loss_is_zero_when_steady_and_positive_when_flickering() -> None:
    steady = torch.tensor([2.0, -1.0, 0.5]).expand(1, 6, 3)  # the same prediction every step
    valid = torch.ones(1, 6, dtype=torch.bool)
    assert smoothing_loss(steady, valid).item() == 0.0
    flicker = torch.tensor([[3.0, 0, 0], [0, 3.0, 0]]).repeat(3, 1)[None]  # a, b, a, b, ...
    assert smoothing_loss(flicker, valid).item() > 1.0


def test_the_smoothing_loss_is_exact_under_padding() -> None:
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 4, generator=generator), torch.randn(9, 4, generator=generator)
    loss_a, grad_a = _loss_and_grad(a[None], torch.ones(1, 6, dtype=torch.bool))
    loss_b, grad_b = _loss_and_grad(b[None], torch.ones(1, 9, dtype=torch.bool))
    padded = torch.cat([a, torch.full((3, 4), 1e4)])  # junk where the model's padding is
    padded[-1, 0] = float("nan")
    valid = torch.arange(9)[None] < torch.tensor([[6], [9]])  # (B, T)
    # Alone and padded in a batch of one: the same value and the same gradients.
    loss, grad = _loss_and_grad(padded[None], valid[:1])
    assert loss == pytest.approx(loss_a, rel=1e-6)
    torch.testing.assert_close(grad[0, :6], grad_a[0])
    assert torch.all(grad[0, 6:] == 0)
    # Beside a longer sequence: the mean over the batch's 5 + 8 valid pairs, each sequence's
    # gradients scaled by its share, nothing on padding.
    loss, grad = _loss_and_grad(torch.stack([padded, b]), valid)
    assert loss == pytest.approx((5 * loss_a + 8 * loss_b) / 13, rel=1e-6)
    torch.testing.assert_close(grad[0, :6], grad_a[0] * 5 / 13)
    torch.testing.assert_close(grad[1], grad_b[0] * 8 / 13)
    assert torch.all(grad[0, 6:] == 0)


def test_the_frame_loss_adds_the_weighted_smoothing_loss_and_clip_ignores_it() -> None:
    logits = torch.randn(2, 5, 3)
    targets = torch.tensor([[0, 1, 2, 1, 0], [2, 0, 1, IGNORE_INDEX, IGNORE_INDEX]])
    smooth = smoothing_loss(logits, targets != IGNORE_INDEX)
    assert smooth.item() > 0
    expected = FRAME.loss(logits, targets) + 0.15 * smooth
    torch.testing.assert_close(FRAME.loss(logits, targets, smooth_weight=0.15), expected)
    clip_logits, clip_targets = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(
        CLIP.loss(clip_logits, clip_targets, smooth_weight=0.15),
        CLIP.loss(clip_logits, clip_targets),
    )


def test_a_batch_of_the_other_task_is_refused() -> None:
    with pytest.raises(ValueError, match="clip task"):
        CLIP.loss(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="frame task"):
        FRAME.loss(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))


def test_video_results_drop_padding() -> None:
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.0, 0.0, 1.0]])  # (T=3, C=3)
    frame = FRAME.video_result(probs, np.array([1, 0, IGNORE_INDEX]), 2)
    np.testing.assert_array_equal(frame.true, [1, 0])
    np.testing.assert_array_equal(frame.pred, [1, 0])
    np.testing.assert_array_equal(frame.scores, probs[:2])
    clip = CLIP.video_result(probs[0], np.array(2), 3)
    assert (clip.true, clip.pred) == (2, 1)
    np.testing.assert_array_equal(clip.scores, probs[0])


def test_metrics_are_the_tasks_own() -> None:
    clip_probs = [np.array([0.9, 0.1]), np.array([0.3, 0.7]), np.array([0.6, 0.4])]
    clip = [
        CLIP.video_result(p, np.array(t), 1) for p, t in zip(clip_probs, [0, 1, 1], strict=True)
    ]
    assert CLIP.metrics(clip, 2) == clip_metrics([0, 1, 1], np.stack(clip_probs), 2)
    assert CLIP.metrics(clip, 2)["accuracy"] == pytest.approx(2 / 3)
    # Frame: background (id 0) is left out of segments, so a wrong background run costs no
    # segment, only frame accuracy.
    true = np.array([1, 1, 1, 0, 0, 0])
    pred = np.array([0, 1, 1, 0, 0, 0])
    probs = np.eye(2)[pred]  # (T, C)
    frame = FRAME.metrics([FRAME.video_result(probs, true, 6)], 2)
    assert frame == frame_metrics([pred], [true], background=(0,))
    assert frame["frame_accuracy"] == pytest.approx(5 / 6) and frame["edit"] == 1.0
    assert frame_metrics([pred], [true])["edit"] < 1.0  # background counted: a different score


@pytest.mark.parametrize(
    "task, metrics, score",
    [
        (CLIP, {"accuracy": 0.5, "f1_macro": 1.0}, 0.501),
        (FRAME, {"frame_accuracy": 0.8, "f1_50": 0.4}, 0.6),
    ],
)
def test_selection_score(task, metrics, score) -> None:
    assert task.selection_score(metrics) == pytest.approx(score)


class Builder:
    def clip(self, probs: np.ndarray) -> tuple[str, int]:
        return "clip", int(probs.argmax())

    def frames(self, probs: np.ndarray) -> tuple[str, list[int]]:
        return "frames", probs.argmax(-1).tolist()


def test_predictions_become_labels_through_the_tasks_builder_method() -> None:
    assert CLIP.to_labels(np.array([0.2, 0.8]), Builder()) == ("clip", 1)
    assert FRAME.to_labels(np.array([[0.9, 0.1], [0.2, 0.8]]), Builder()) == ("frames", [0, 1])


def test_batch_outputs() -> None:
    probs = [np.array([0.2, 0.8]), np.array([0.6, 0.4])]
    np.testing.assert_array_equal(CLIP.batch_outputs(probs), np.stack(probs))
    assert FRAME.batch_outputs(probs) is probs
