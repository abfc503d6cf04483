"""One colour per class, the same in every picture vidtag draws (MLflow figures, review page).

A class's colour is fixed by its position in the model's class list (background left out), so
the same class has the same colour in every figure of a run and in every run of a model.
"""

from __future__ import annotations

from collections.abc import Sequence

# Tableau 20: distinct on white, in an order that keeps neighbours apart (the MLflow figures'
# palette, and the review page's: pipeline/labeling/page.py).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
BACKGROUND_COLOUR = "#eeeeee"


def class_colours(classes: Sequence[str], background: str | None = None) -> dict[str, str]:
    """Class -> ``#rrggbb``: by position among the non-background classes (cycling after 20);
    the background label light grey."""
    shown = [name for name in classes if name != background]
    mapping = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(shown)}
    if background is not None:
        mapping[background] = BACKGROUND_COLOUR
    return mapping


__all__ = ["BACKGROUND_COLOUR", "PALETTE", "class_colours"]
