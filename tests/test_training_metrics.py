"""Clip and frame/segment metrics: hand-worked cases, MS-TCN reference port, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.training.metrics import (
    clip_metrics,
    confusion_matrix,
    edit_score,
    frame_metrics,
    per_class_report,
    report_text,
    segment_counts,
    segment_f1,
    segments,
)

# --- a direct port of MS-TCN's eval.py (github.com/yabufarha/ms-tcn), kept as written ------


def mstcn_get_labels_start_end_time(frame_wise_labels, bg_class=("background",), fix=False):
    # MS-TCN ends the last segment at ``i`` (= len - 1); ``fix`` ends it at len instead.
    labels = []
    starts = []
    ends = []
    last_label = frame_wise_labels[0]
    if frame_wise_labels[0] not in bg_class:
        labels.append(frame_wise_labels[0])
        starts.append(0)
    for i in range(len(frame_wise_labels)):
        if frame_wise_labels[i] != last_label:
            if frame_wise_labels[i] not in bg_class:
                labels.append(frame_wise_labels[i])
                starts.append(i)
            if last_label not in bg_class:
                ends.append(i)
            last_label = frame_wise_labels[i]
    if last_label not in bg_class:
        ends.append(len(frame_wise_labels) if fix else i)
    return labels, starts, ends


def mstcn_levenstein(p, y, norm=False):
    m_row = len(p)
    n_col = len(y)
    D = np.zeros([m_row + 1, n_col + 1], np.float64)
    for i in range(m_row + 1):
        D[i, 0] = i
    for i in range(n_col + 1):
        D[0, i] = i
    for j in range(1, n_col + 1):
        for i in range(1, m_row + 1):
            if y[j - 1] == p[i - 1]:
                D[i, j] = D[i - 1, j - 1]
            else:
                D[i, j] = min(D[i - 1, j] + 1, D[i, j - 1] + 1, D[i - 1, j - 1] + 1)
    if norm:
        score = (1 - D[-1, -1] / max(m_row, n_col)) * 100
    else:
        score = D[-1, -1]
    return score


def mstcn_edit_score(recognized, ground_truth, norm=True, bg_class=("background",)):
    P, _, _ = mstcn_get_labels_start_end_time(recognized, bg_class)
    Y, _, _ = mstcn_get_labels_start_end_time(ground_truth, bg_class)
    return mstcn_levenstein(P, Y, norm)


def mstcn_f_score(recognized, ground_truth, overlap, bg_class=("background",), fix=False):
    p_label, p_start, p_end = mstcn_get_labels_start_end_time(recognized, bg_class, fix)
    y_label, y_start, y_end = mstcn_get_labels_start_end_time(ground_truth, bg_class, fix)
    tp = 0
    fp = 0
    hits = np.zeros(len(y_label))
    for j in range(len(p_label)):
        intersection = np.minimum(p_end[j], y_end) - np.maximum(p_start[j], y_start)
        union = np.maximum(p_end[j], y_end) - np.minimum(p_start[j], y_start)
        IoU = (1.0 * intersection / union) * (
            [p_label[j] == y_label[x] for x in range(len(y_label))]
        )
        # Get the best scoring segment
        idx = np.array(IoU).argmax()
        if IoU[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = 1
        else:
            fp += 1
    fn = len(y_label) - sum(hits)
    return float(tp), float(fp), float(fn)


def mstcn_f1(recognized_list, truth_list, overlap, bg_class, fix=True):
    tp = fp = fn = np.float64(0.0)  # numpy floats, as in MS-TCN: 0 / 0 -> nan, not an error
    for rec, gt in zip(recognized_list, truth_list, strict=True):
        a, b, c = mstcn_f_score(rec, gt, overlap, bg_class, fix)
        tp, fp, fn = tp + a, fp + b, fn + c
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2.0 * (precision * recall) / (precision + recall)
    return np.nan_to_num(f1)


def runs(*pairs: tuple[str, int]) -> list[str]:
    """``runs(("a", 3), ("b", 2))`` -> ``["a", "a", "a", "b", "b"]``."""
    return [label for label, count in pairs for _ in range(count)]


BG = ("background",)

# --- segments ---------------------------------------------------------------------------------


def test_segments_are_half_open_and_the_last_closes_at_the_end():
    found = segments(runs(("background", 2), ("a", 3), ("b", 1)), BG)
    assert found.labels == ["a", "b"]
    assert found.starts.tolist() == [2, 5]
    assert found.ends.tolist() == [5, 6]  # the last run ends at len, not len - 1


def test_segments_background_accepts_a_lone_label():
    assert segments(["bg", "a", "bg"], "bg").labels == ["a"]  # not the characters b, g
    assert segments([0, 1, 1, 0], 0).labels == [1]


@pytest.mark.parametrize("labels", [[], ["background"] * 4])
def test_segments_of_nothing(labels):
    assert segments(labels, BG).labels == []


# --- edit score -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred, true, expected",
    [
        (runs(("a", 2), ("b", 2)), runs(("a", 3), ("b", 1)), 1.0),  # boundaries don't matter
        (runs(("a", 2), ("b", 2), ("a", 1)), runs(("a", 3), ("b", 2)), 1 - 1 / 3),  # 1 insertion
        (runs(("a", 4)), runs(("b", 4)), 0.0),  # one substitution of one
        (runs(("a", 2), ("c", 2)), runs(("a", 1), ("b", 1), ("c", 2)), 1 - 1 / 3),
        # background splits a run into two segments of the same label
        (runs(("a", 2), ("background", 1), ("a", 2)), runs(("a", 5)), 0.5),
        (runs(("background", 5)), runs(("background", 5)), 1.0),  # both empty: defined 1.0
        (runs(("background", 5)), runs(("a", 5)), 0.0),  # empty prediction
        ([], [], 1.0),
    ],
)
def test_edit_score_hand_worked(pred, true, expected):
    assert edit_score(pred, true, BG) == pytest.approx(expected)


def test_edit_score_matches_mstcn_where_defined():
    pred = runs(("a", 3), ("background", 2), ("b", 4), ("c", 1), ("a", 2))
    true = runs(("background", 1), ("a", 4), ("c", 3), ("b", 2), ("a", 3))
    assert edit_score(pred, true, BG) * 100 == pytest.approx(mstcn_edit_score(pred, true))


# --- F1@k -------------------------------------------------------------------------------------


def test_segment_f1_hand_worked():
    true = runs(("a", 10), ("background", 10), ("b", 10))
    # a: IoU 8/10 = 0.8; c: no true c, a false positive; b: IoU 3/10 = 0.3.
    pred = runs(("a", 8), ("background", 2), ("c", 5), ("background", 12), ("b", 3))
    assert segments(pred, BG).labels == ["a", "c", "b"]
    assert segment_counts(pred, true, 0.10, BG) == (2, 1, 0)
    assert segment_counts(pred, true, 0.50, BG) == (1, 2, 1)
    assert segment_f1([pred], [true], 0.10, BG) == pytest.approx(0.8)  # P 2/3, R 1
    assert segment_f1([pred], [true], 0.50, BG) == pytest.approx(0.4)  # P 1/3, R 1/2


def test_segment_f1_greedy_match_and_duplicates():
    true = runs(("a", 10))
    pred = runs(("a", 5), ("b", 1), ("a", 4))  # two predictions want the same true segment
    assert segment_counts(pred, true, 0.25, BG) == (1, 2, 0)


def test_segment_f1_sums_counts_over_videos_before_dividing():
    perfect, missed = runs(("a", 4)), runs(("background", 4))
    # Video 1: TP 1. Video 2: FN 1. Summed: P = 1, R = 1/2, F1 = 2/3 (not the mean 0.5).
    f1 = segment_f1([perfect, missed], [perfect, perfect], 0.5, BG)
    assert f1 == pytest.approx(2 / 3)


def test_segment_f1_empty_cases():
    nothing, some = runs(("background", 6)), runs(("a", 3), ("b", 3))
    assert segment_counts(nothing, some, 0.5, BG) == (0, 0, 2)
    assert segment_counts(some, nothing, 0.5, BG) == (0, 2, 0)  # MS-TCN's argmax would raise
    assert segment_f1([nothing], [some], 0.5, BG) == 0.0
    assert segment_f1([nothing], [nothing], 0.5, BG) == 1.0


def test_segment_f1_last_segment_ends_at_len_unlike_mstcn():
    # A one-frame last segment is empty in MS-TCN's code ([5, 5)), a full frame here.
    pred = true = runs(("a", 5), ("b", 1))
    assert segment_f1([pred], [true], 0.5, BG) == 1.0
    with np.errstate(invalid="ignore"):  # its b: IoU 0 / 0 -> nan
        assert mstcn_f_score(pred, true, 0.5, BG) == (1.0, 1.0, 1.0)


def test_segment_f1_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        segment_f1([["a"]], [["a"]], 0.0)


# --- frame_metrics ----------------------------------------------------------------------------


def test_frame_metrics_hand_worked():
    true = [runs(("background", 2), ("a", 4), ("b", 4)), runs(("a", 5))]
    pred = [runs(("background", 3), ("a", 3), ("b", 4)), runs(("a", 3), ("c", 2))]
    metrics = frame_metrics(pred, true, BG)
    assert set(metrics) == {"frame_accuracy", "f1_macro", "edit", "f1_10", "f1_25", "f1_50"}
    assert metrics["frame_accuracy"] == pytest.approx(12 / 15)
    # classes bg, a, b, c: F1 = 2*1/(2+3)... computed per class from pooled frames
    f1 = {"background": 2 * 2 / (2 + 3), "a": 2 * 6 / (9 + 6), "b": 1.0, "c": 0.0}
    assert metrics["f1_macro"] == pytest.approx(np.mean(list(f1.values())))
    assert metrics["edit"] == pytest.approx((1.0 + 0.5) / 2)
    # Segments: video 1 both match (IoU 3/4, 1); video 2 a IoU 3/5, c false positive.
    assert metrics["f1_50"] == pytest.approx(2 * (3 / 4) * 1 / (3 / 4 + 1))
    assert metrics["f1_10"] == metrics["f1_25"] == metrics["f1_50"]


def test_frame_metrics_rejects_length_mismatch():
    with pytest.raises(ValueError, match="video 0"):
        frame_metrics([["a", "a"]], [["a"]])


def test_frame_metrics_accepts_ids_and_arrays():
    true = [np.array([0, 1, 1, 2]), np.array([2, 2])]
    metrics = frame_metrics([t.copy() for t in true], true, background=0)
    assert all(value == 1.0 for value in metrics.values())


# --- properties -------------------------------------------------------------------------------

LABELS = st.sampled_from(["background", "a", "b", "c"])
label_seqs = st.lists(LABELS, min_size=1, max_size=40)
equal_length_pairs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(*[st.lists(LABELS, min_size=n, max_size=n)] * 2)
)
videos = st.lists(equal_length_pairs, min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(videos)
def test_identical_labels_score_one(pairs):
    trues = [true for _, true in pairs]
    metrics = frame_metrics(trues, [list(t) for t in trues], BG)
    assert metrics == dict.fromkeys(metrics, 1.0)


@settings(max_examples=300, deadline=None)
@given(videos, st.sampled_from([0.1, 0.25, 0.5, 0.75, 1.0]))
def test_segment_f1_agrees_with_mstcn(pairs, overlap):
    preds = [pred for pred, _ in pairs]
    trues = [true for _, true in pairs]
    counts = np.sum([segment_counts(p, t, overlap, BG) for p, t in pairs], axis=0)
    ours = segment_f1(preds, trues, overlap, BG)
    assert 0.0 <= ours <= 1.0
    if counts.sum() == 0:
        assert ours == 1.0  # defined here; MS-TCN's 0/0 gives 0
        return
    has_true = [bool(segments(t, BG).labels) for t in trues]
    if all(has_true):  # MS-TCN's argmax over no true segments raises
        for pred, true in pairs:
            expected = mstcn_f_score(pred, true, overlap, BG, fix=True)
            assert segment_counts(pred, true, overlap, BG) == tuple(int(n) for n in expected)
        assert ours == pytest.approx(float(mstcn_f1(preds, trues, overlap, BG)))


@settings(max_examples=300, deadline=None)
@given(label_seqs, label_seqs)
def test_edit_score_agrees_with_mstcn_and_is_symmetric(pred, true):
    ours = edit_score(pred, true, BG)
    assert 0.0 <= ours <= 1.0
    assert ours == pytest.approx(edit_score(true, pred, BG))
    if segments(pred, BG).labels or segments(true, BG).labels:
        assert ours * 100 == pytest.approx(mstcn_edit_score(pred, true))
    else:
        assert ours == 1.0


@settings(max_examples=100, deadline=None)
@given(videos)
def test_frame_metrics_are_fractions(pairs):
    metrics = frame_metrics([p for p, _ in pairs], [t for _, t in pairs], BG)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    assert metrics["f1_10"] >= metrics["f1_25"] >= metrics["f1_50"]


# --- clip metrics -----------------------------------------------------------------------------


def test_confusion_matrix_rows_are_truth():
    cm = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert cm.dtype == np.int64
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([3], [0], 3)


def test_clip_metrics_hand_worked():
    y_true = [0, 0, 0, 1, 2, 2]
    scores = np.eye(3)[[0, 0, 1, 1, 1, 2]]  # predictions 0 0 1 1 1 2
    metrics = clip_metrics(y_true, scores, 3)
    assert set(metrics) == {"accuracy", "f1_macro", "mean_class_accuracy"}  # 3 classes: no top5
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # F1: class 0 P 1 R 2/3 -> 0.8; class 1 P 1/3 R 1 -> 0.5; class 2 P 1 R 1/2 -> 2/3
    assert metrics["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)


def test_clip_metrics_top5_only_beyond_five_classes():
    logits = np.tile(np.arange(8.0), (2, 1))  # ranking 7 6 5 4 3 2 1 0
    metrics = clip_metrics([3, 2], logits, 8)
    assert metrics["accuracy"] == 0.0
    assert metrics["top5"] == 0.5  # 3 is in the top 5, 2 is not
    assert "top5" not in clip_metrics([3, 2], logits[:, :5], 5)


def test_clip_metrics_agree_with_sklearn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 200)
    y_score = rng.normal(size=(200, 7)) + 2 * np.eye(7)[y_true]
    y_pred = y_score.argmax(1)
    metrics = clip_metrics(y_true, y_score, 7)
    assert metrics["f1_macro"] == pytest.approx(sklearn.f1_score(y_true, y_pred, average="macro"))
    assert metrics["top5"] == pytest.approx(sklearn.top_k_accuracy_score(y_true, y_score, k=5))
    balanced = sklearn.balanced_accuracy_score(y_true, y_pred)
    assert metrics["mean_class_accuracy"] == pytest.approx(balanced)


def test_per_class_report_and_text():
    report = per_class_report([0, 0, 1], [0, 1, 1], ["walk", "run", "jump"])
    assert list(report) == ["walk", "run", "jump"]
    assert report["walk"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                              "support": 2}  # fmt: skip
    assert report["jump"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    text = report_text(report)
    assert text.splitlines()[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert "jump" in text
