"""The most confused class pairs of a clip run, each with the videos that were confused.

A confusion matrix says that 3 "pour" videos were called "stir"; a reviewer's next question is
which three. :func:`confused_pairs` answers it (a JSON-ready record per ordered pair, most
frequent first); :func:`confusions_figure` draws the same as a small bar chart whose bars carry
the example names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_PAIRS = 10
EXAMPLES = 5


def confused_pairs(
    videos: Sequence[str],
    true: Sequence[int],
    pred: Sequence[int],
    scores: Sequence[np.ndarray],
    classes: Sequence[str],
    top: int = TOP_PAIRS,
    examples: int = EXAMPLES,
) -> dict[str, Any]:
    """``{"videos", "wrong", "pairs": [{true, predicted, count, fraction_of_true, videos:
    [{video, score}]}]}``: the ``top`` (true, predicted) pairs by count (ties by name), each
    with up to ``examples`` of its videos, the most confidently wrong first."""
    support = np.bincount(np.asarray(true, dtype=np.int64), minlength=len(classes))
    by_pair: dict[tuple[int, int], list[tuple[float, str]]] = {}
    for video, t, p, s in zip(videos, true, pred, scores, strict=True):
        if int(t) != int(p):
            by_pair.setdefault((int(t), int(p)), []).append((float(np.asarray(s)[p]), video))
    order = sorted(
        by_pair, key=lambda pair: (-len(by_pair[pair]), classes[pair[0]], classes[pair[1]])
    )
    pairs = []
    for t, p in order[:top]:
        wrong = sorted(by_pair[(t, p)], key=lambda item: (-item[0], item[1]))
        pairs.append({
            "true": classes[t],
            "predicted": classes[p],
            "count": len(wrong),
            "fraction_of_true": len(wrong) / int(support[t]),
            "videos": [{"video": v, "score": round(score, 4)} for score, v in wrong[:examples]],
        })  # fmt: skip
    return {
        "videos": len(videos),
        "wrong": sum(len(v) for v in by_pair.values()),
        "pairs": pairs,
    }


def confusions_figure(summary: dict[str, Any]) -> Figure:
    """Horizontal bars ``true → predicted`` (count), the example video names beside each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pairs = summary["pairs"]
    figure = Figure(figsize=(10, 1.2 + 0.45 * max(len(pairs), 1)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    title = f"most confused pairs: {summary['wrong']} of {summary['videos']} videos wrong"
    if not pairs:
        axes.text(0.5, 0.5, "no video was confused", ha="center", va="center")
        axes.set_axis_off()
        figure.suptitle(title, fontsize=10)
        return figure
    counts = [pair["count"] for pair in pairs][::-1]
    names = [f"{pair['true']} → {pair['predicted']}" for pair in pairs][::-1]
    axes.barh(range(len(pairs)), counts, color="#d62728", alpha=0.35)
    axes.set_yticks(range(len(pairs)), names, fontsize=9)
    longest = max(counts)
    for row, pair in enumerate(pairs[::-1]):
        shown = ", ".join(item["video"] for item in pair["videos"])
        more = pair["count"] - len(pair["videos"])
        text = f"{pair['fraction_of_true']:.0%} of {pair['true']}: {shown}"
        text += f" (+{more})" if more else ""
        axes.text(longest * 0.02, row, text, va="center", fontsize=7, color="#222222", clip_on=True)
    axes.set(xlim=(0, longest * 1.05), xlabel="videos (true → predicted)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.suptitle(title, fontsize=10)
    return figure


__all__ = ["confused_pairs", "confusions_figure"]
