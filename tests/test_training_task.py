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
from pipeline.training.task import CLIP, FRAME, TASKS, ClipTask, FrameTask, task_named


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
