"""Timeline figures of a frame run's test videos: truth against prediction, and how sure.

Per video (:func:`timeline_figure`): the true label ribbon, the predicted ribbon and the
confidence curve (the predicted class's probability at each sampled frame) on one time axis in
seconds, with the wrongly labelled frames shaded. :func:`overview_figure` stacks every video's
two ribbons in one picture. Colours come from :mod:`pipeline.colours`, so a class looks the same
in every figure. Pure matplotlib on the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ERROR_COLOUR = "#d62728"
OVERVIEW_MAX_VIDEOS = 200  # beyond that the rows are thinner than a pixel at any sane size


class VideoTimeline(NamedTuple):
    """One evaluated video: per sampled frame its time, true and predicted class id, and the
    predicted class's probability."""

    video: str
    times_s: np.ndarray  # (T,) presentation times of the sampled frames
    true: np.ndarray  # (T,) class ids
    pred: np.ndarray  # (T,) class ids
    confidence: np.ndarray  # (T,) probability of the predicted class

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.true == self.pred)) if len(self.true) else 1.0


def timeline_of(video: str, times_s, true, scores) -> VideoTimeline:
    """From the evaluation's per-video truth and ``(T, C)`` probabilities."""
    scores = np.asarray(scores, dtype=np.float64)  # (T, C)
    pred = scores.argmax(1)
    steps = len(pred)
    times = np.asarray(times_s, dtype=np.float64)[:steps]
    if len(times) != steps:
        raise ValueError(f"{video}: {len(times)} sample times for {steps} predicted frames")
    return VideoTimeline(video, times, np.asarray(true)[:steps], pred, scores.max(1))


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Half-open runs ``(start, end, label)`` of equal consecutive values."""
    labels = np.asarray(labels)
    if not len(labels):
        return []
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(labels)]])
    return [(int(s), int(e), int(labels[s])) for s, e in zip(starts, ends, strict=True)]


def step_edges(times_s: np.ndarray) -> np.ndarray:
    """``T + 1`` edges: each sampled frame spans from its time to the next one's; the last
    spans the median step."""
    times = np.asarray(times_s, dtype=np.float64)
    if len(times) == 0:
        return np.zeros(1)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    return np.concatenate([times, [times[-1] + step]])


def _ribbon(
    axes: Axes, labels: np.ndarray, edges: np.ndarray, y: float, height: float, colours: list[str]
) -> None:
    """One row of coloured spans, one ``broken_barh`` call per class (fast for long videos)."""
    spans: dict[int, list[tuple[float, float]]] = {}
    for start, end, label in runs(labels):
        spans.setdefault(label, []).append((edges[start], edges[end] - edges[start]))
    for label, bars in spans.items():
        axes.broken_barh(bars, (y, height), facecolors=colours[label], linewidth=0)


def _legend(figure: Figure, classes: Sequence[str], colours: list[str], used: set[int]) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=colours[i], edgecolor="#999999", linewidth=0.5, label=name)
        for i, name in enumerate(classes)
        if i in used
    ]
    figure.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False,
        fontsize=8,
    )  # fmt: skip


def _colour_list(classes: Sequence[str], colours: Mapping[str, str]) -> list[str]:
    return [colours.get(name, "#000000") for name in classes]


def timeline_figure(
    timeline: VideoTimeline, classes: Sequence[str], colours: Mapping[str, str]
) -> Figure:
    """Truth and prediction ribbons over the confidence curve, wrong frames shaded red."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    palette = _colour_list(classes, colours)
    edges = step_edges(timeline.times_s)
    figure = Figure(figsize=(10, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    ribbons, curve = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [1.1, 1.4]}
    )  # fmt: skip
    _ribbon(ribbons, timeline.true, edges, 1.1, 0.8, palette)
    _ribbon(ribbons, timeline.pred, edges, 0.1, 0.8, palette)
    ribbons.set(ylim=(0, 2), yticks=[0.5, 1.5], yticklabels=["predicted", "true"])
    ribbons.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ribbons.spines[side].set_visible(False)
    wrong = timeline.true != timeline.pred
    for start, end, is_wrong in runs(wrong.astype(np.int64)):
        if is_wrong:
            curve.axvspan(edges[start], edges[end], color=ERROR_COLOUR, alpha=0.15, linewidth=0)
    curve.step(edges, np.append(timeline.confidence, timeline.confidence[-1:]), where="post",
               color="#333333", linewidth=1.0)  # fmt: skip
    curve.set(ylim=(0, 1.02), xlim=(edges[0], edges[-1]), ylabel="confidence",
              xlabel="time (s)")  # fmt: skip
    curve.grid(axis="y", linewidth=0.3)
    figure.suptitle(
        f"{timeline.video}: frame accuracy {timeline.accuracy:.1%} "
        f"(red: wrong frames; curve: probability of the predicted label)",
        fontsize=9,
    )
    used = set(np.unique(timeline.true).tolist()) | set(np.unique(timeline.pred).tolist())
    _legend(figure, classes, palette, used)
    return figure


def overview_figure(
    timelines: Sequence[VideoTimeline],
    classes: Sequence[str],
    colours: Mapping[str, str],
    split: str = "test",
) -> Figure:
    """Every video's true (upper) and predicted (lower) ribbon, one pair of rows per video on a
    common time axis, least accurate video first; at most ``OVERVIEW_MAX_VIDEOS`` rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not timelines:
        raise ValueError("an overview needs at least one video")
    shown = sorted(timelines, key=lambda t: (t.accuracy, t.video))[:OVERVIEW_MAX_VIDEOS]
    palette = _colour_list(classes, colours)
    row_inches = 0.42 if len(shown) <= 40 else max(0.1, 16.0 / len(shown))
    figure = Figure(figsize=(11, 1.4 + row_inches * len(shown)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    used: set[int] = set()
    longest = 0.0
    for row, timeline in enumerate(shown):
        edges = step_edges(timeline.times_s)
        y = len(shown) - 1 - row
        _ribbon(axes, timeline.true, edges, y + 0.48, 0.4, palette)
        _ribbon(axes, timeline.pred, edges, y + 0.06, 0.4, palette)
        used |= set(np.unique(timeline.true).tolist()) | set(np.unique(timeline.pred).tolist())
        longest = max(longest, float(edges[-1]))
    names = [f"{t.video}  {t.accuracy:.0%}" for t in shown]
    fontsize = 8 if len(shown) <= 40 else max(3, int(320 / len(shown)))
    axes.set_yticks(np.arange(len(shown)) + 0.47, names[::-1], fontsize=fontsize)
    axes.set(ylim=(0, len(shown)), xlim=(0, longest), xlabel="time (s)")
    axes.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    more = (
        f", least accurate {len(shown)} of {len(timelines)}" if len(shown) < len(timelines) else ""
    )
    figure.suptitle(
        f"{len(timelines)} {split} videos{more}: per video, true (upper) and predicted (lower) "
        f"labels, frame accuracy after the name",
        fontsize=9,
    )
    _legend(figure, classes, palette, used)
    return figure


__all__ = [
    "VideoTimeline",
    "overview_figure",
    "runs",
    "step_edges",
    "timeline_figure",
    "timeline_of",
]
