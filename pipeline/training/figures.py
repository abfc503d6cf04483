"""Figures a training run logs: the confusion-matrix heat map.

Kept apart from ``metrics`` so that the prediction path (which imports the task objects and
their metrics) never needs matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def confusion_figure(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    """A confusion-matrix heat map (colour = row-normalised recall, text = counts)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    cm = np.asarray(cm)
    count = len(class_names)
    size = min(max(4.0, 0.45 * count + 2.0), 30.0)
    figure = Figure(figsize=(size, size), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = cm.sum(1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of true class")
    axes.set(xticks=range(count), yticks=range(count), xlabel="predicted", ylabel="true")
    axes.set_xticklabels(class_names, rotation=90)
    axes.set_yticklabels(class_names)
    if count <= 30:  # beyond that the numbers are unreadable anyway
        for (row, col), value in np.ndenumerate(cm):
            colour = "white" if normalised[row, col] > 0.5 else "black"
            axes.text(col, row, str(value), ha="center", va="center", color=colour, fontsize=8)
    return figure
