"""Clip metrics (many-to-one) and frame/segment metrics (many-to-many); all fractions in [0, 1].

Clip (``clip_metrics``): top-1 ``accuracy``; ``top5`` (only with more than 5 classes);
``f1_macro``, the unweighted mean of per-class F1 over the classes that occur in the truth or
the predictions (scikit-learn's default; a class absent from both has no defined F1);
``mean_class_accuracy``, the mean of per-class recall over the classes present in the truth.

Frame (``frame_metrics``), as MS-TCN (Farha & Gall, CVPR 2019, ``eval.py``) defines them:

- ``frame_accuracy``: correct frames / all frames, pooled over videos, background included.
- ``f1_macro``: macro F1 over per-frame labels pooled over videos (background is a class).
- segments: maximal half-open runs ``[start, end)`` of equal labels, runs of a background
  label dropped; the last run ends at the sequence's length.
- ``edit``: per video, ``1 - Levenshtein(pred segment labels, true segment labels) /
  max(len(pred), len(true))``, averaged over videos.
- ``f1_10``/``f1_25``/``f1_50``: F1@k. Each predicted segment, in order, takes the true
  segment of the same label with the highest IoU (the first on ties); it is a true positive
  if that IoU >= k and that true segment is not yet matched, else a false positive; unmatched
  true segments are false negatives. TP/FP/FN are summed over all videos, then
  ``F1 = 2PR / (P + R)``.

Differences from MS-TCN's code, all at its undefined or off-by-one corners: MS-TCN ends the
last segment at ``len - 1`` (its other ends are exclusive), here it ends at ``len``; where
neither side has a segment, edit is 1.0 here (MS-TCN divides 0 by 0) and F1@k is 1.0 when no
video has any segment (MS-TCN reports 0), so identical labels always score 1.0; a predicted
segment with no true segment at all is a false positive (MS-TCN's argmax raises).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np

Labels = Sequence[Hashable] | np.ndarray
OVERLAPS = (0.10, 0.25, 0.50)


# --- clip metrics ----------------------------------------------------------------------------


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} vs {y_pred.size}")
    for name, ids in (("y_true", y_true), ("y_pred", y_pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(f"{name} has class ids outside [0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


class ClassScores(NamedTuple):
    precision: np.ndarray  # (C,) 0 where a class is never predicted
    recall: np.ndarray  # (C,) 0 where a class never occurs
    f1: np.ndarray  # (C,)
    support: np.ndarray  # (C,) true count
    predicted: np.ndarray  # (C,) predicted count


def class_scores(cm: np.ndarray) -> ClassScores:
    """Per-class precision, recall and F1 from a confusion matrix (0 where undefined)."""
    hits = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(1), cm.sum(0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return ClassScores(precision, recall, f1, support, predicted)


def _f1_macro(cm: np.ndarray) -> float:
    scores = class_scores(cm)
    seen = (scores.support > 0) | (scores.predicted > 0)
    return float(scores.f1[seen].mean()) if seen.any() else 1.0


def clip_metrics(y_true: Any, y_score: Any, num_classes: int) -> dict[str, float]:
    """Metrics of clip predictions; ``y_score`` is ``(N, C)`` probabilities or logits.

    Keys: ``accuracy``, ``top5`` (only when ``num_classes > 5``), ``f1_macro``,
    ``mean_class_accuracy`` (definitions in the module docstring).
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.shape != (y_true.size, num_classes):
        raise ValueError(f"y_score must be (N={y_true.size}, C={num_classes}), got {y_score.shape}")
    if y_true.size == 0:
        raise ValueError("no samples to score")
    y_pred = y_score.argmax(1)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    recall = class_scores(cm).recall
    metrics = {"accuracy": float((y_pred == y_true).mean())}
    if num_classes > 5:
        top5 = np.argsort(-y_score, axis=1, kind="stable")[:, :5]  # (N, 5)
        metrics["top5"] = float((top5 == y_true[:, None]).any(1).mean())
    metrics["f1_macro"] = _f1_macro(cm)
    metrics["mean_class_accuracy"] = float(recall[cm.sum(1) > 0].mean())
    return metrics


def per_class_report(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> dict[str, dict]:
    """``{class name: {precision, recall, f1, support}}`` for every class, in id order."""
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    scores = class_scores(cm)
    return {
        name: {
            "precision": float(scores.precision[i]),
            "recall": float(scores.recall[i]),
            "f1": float(scores.f1[i]),
            "support": int(scores.support[i]),
        }
        for i, name in enumerate(class_names)
    }


def report_text(report: dict[str, dict]) -> str:
    """The per-class report as an aligned plain-text table."""
    width = max([len("class"), *(len(name) for name in report)])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for name, row in report.items():
        lines.append(
            f"{name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  "
            f"{row['f1']:5.3f}  {row['support']:7d}"
        )
    return "\n".join(lines)


# --- frame and segment metrics ---------------------------------------------------------------


class Segments(NamedTuple):
    labels: list[Hashable]
    starts: np.ndarray  # (S,) first frame
    ends: np.ndarray  # (S,) one past the last frame


def _background_set(background: Any) -> frozenset:
    # A lone label (a str is itself a collection of characters) means a set of one.
    if isinstance(background, (str, bytes, int, np.integer)):
        return frozenset([background])
    return frozenset(background)


def segments(labels: Labels, background: Collection[Hashable] = ()) -> Segments:
    """Maximal half-open runs of equal labels, background runs dropped."""
    values = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    if not values:
        return Segments([], np.zeros(0, np.int64), np.zeros(0, np.int64))
    change = [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    starts = np.array([0, *change], dtype=np.int64)
    ends = np.array([*change, len(values)], dtype=np.int64)
    skip = _background_set(background)
    keep = [i for i, start in enumerate(starts) if values[start] not in skip]
    return Segments([values[starts[i]] for i in keep], starts[keep], ends[keep])


def levenshtein(first: Sequence[Hashable], second: Sequence[Hashable]) -> int:
    """Edit distance (insertions, deletions, substitutions each cost 1)."""
    previous = list(range(len(second) + 1))
    for i, item in enumerate(first, start=1):
        current = [i]
        for j, other in enumerate(second, start=1):
            cost = 0 if item == other else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def edit_score(pred: Labels, true: Labels, background: Collection[Hashable] = ()) -> float:
    """One video's segmental edit score: ``1 - Levenshtein / max(len)``, 1.0 if both empty."""
    pred_labels = segments(pred, background).labels
    true_labels = segments(true, background).labels
    longest = max(len(pred_labels), len(true_labels))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(pred_labels, true_labels) / longest


def segment_counts(
    pred: Labels, true: Labels, overlap: float, background: Collection[Hashable] = ()
) -> tuple[int, int, int]:
    """One video's (TP, FP, FN) by MS-TCN's greedy same-label IoU matching at ``overlap``."""
    if not 0.0 < overlap <= 1.0:
        raise ValueError(f"overlap must lie in (0, 1], got {overlap}")
    found, wanted = segments(pred, background), segments(true, background)
    matched = np.zeros(len(wanted.labels), dtype=bool)
    true_pos = false_pos = 0
    for label, start, end in zip(found.labels, found.starts, found.ends, strict=True):
        intersection = np.minimum(end, wanted.ends) - np.maximum(start, wanted.starts)
        union = np.maximum(end, wanted.ends) - np.minimum(start, wanted.starts)
        same = np.array([other == label for other in wanted.labels], dtype=bool)  # (S,)
        iou = np.where(same, intersection / union, -np.inf)  # (S,)
        best = int(iou.argmax()) if iou.size else -1
        if best >= 0 and iou[best] >= overlap and not matched[best]:
            true_pos += 1
            matched[best] = True
        else:
            false_pos += 1
    return true_pos, false_pos, int((~matched).sum())


def segment_f1(
    preds: Sequence[Labels],
    trues: Sequence[Labels],
    overlap: float,
    background: Collection[Hashable] = (),
) -> float:
    """F1@overlap over videos, TP/FP/FN summed first; 1.0 when no video has any segment."""
    if len(preds) != len(trues):
        raise ValueError(f"{len(preds)} predicted videos but {len(trues)} true ones")
    totals = np.zeros(3, dtype=np.int64)
    for pred, true in zip(preds, trues, strict=True):
        totals += segment_counts(pred, true, overlap, background)
    true_pos, false_pos, false_neg = (int(n) for n in totals)
    if true_pos + false_pos + false_neg == 0:
        return 1.0
    if true_pos == 0:
        return 0.0
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / (true_pos + false_neg)
    return 2 * precision * recall / (precision + recall)


def frame_metrics(
    preds: Sequence[Labels], trues: Sequence[Labels], background: Collection[Hashable] = ()
) -> dict[str, float]:
    """``frame_accuracy``, ``f1_macro``, ``edit``, ``f1_10``, ``f1_25``, ``f1_50`` (module doc).

    Each video's predicted and true label sequences must have equal lengths.
    """
    if len(preds) != len(trues) or not trues:
        raise ValueError(
            f"need equally many predicted and true videos, got {len(preds)} and {len(trues)}"
        )
    flat_pred: list[Hashable] = []
    flat_true: list[Hashable] = []
    for index, (pred, true) in enumerate(zip(preds, trues, strict=True)):
        if len(pred) != len(true):
            raise ValueError(f"video {index}: {len(pred)} predicted frames, {len(true)} true")
        flat_pred.extend(np.asarray(pred).tolist())
        flat_true.extend(np.asarray(true).tolist())
    ids = {label: i for i, label in enumerate(dict.fromkeys(flat_true + flat_pred))}
    cm = confusion_matrix([ids[y] for y in flat_true], [ids[y] for y in flat_pred], len(ids))
    total = int(cm.sum())
    metrics = {
        "frame_accuracy": float(np.trace(cm) / total) if total else 1.0,
        "f1_macro": _f1_macro(cm),
        "edit": float(
            np.mean([edit_score(p, t, background) for p, t in zip(preds, trues, strict=True)])
        ),
    }
    for overlap in OVERLAPS:
        metrics[f"f1_{round(overlap * 100)}"] = segment_f1(preds, trues, overlap, background)
    return metrics
