"""pipeline/training/figures.py: the confusion-matrix figure a training run logs."""

from __future__ import annotations

from pipeline.training.figures import confusion_figure
from pipeline.training.metrics import (
    confusion_matrix,
)


def test_confusion_figure_renders(tmp_path):
    cm = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2], 3)
    figure = confusion_figure(cm, ["a", "b", "c"])
    path = tmp_path / "cm.png"
    figure.savefig(path)
    assert path.stat().st_size > 1000
