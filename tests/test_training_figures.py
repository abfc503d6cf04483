"""pipeline/training/figures.py: the confusion-matrix figure a training run logs."""

from __future__ import annotations

import numpy as np
import pytest

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


@pytest.mark.parametrize(("classes", "texts"), [(3, 9), (30, 900), (31, 0)])
def test_counts_are_written_in_the_cells_up_to_30_classes(classes: int, texts: int) -> None:
    cm = np.diag(np.arange(1, classes + 1))
    (axes,) = confusion_figure(cm, [f"c{i}" for i in range(classes)]).axes[:1]
    assert len(axes.texts) == texts
    assert [label.get_text() for label in axes.get_xticklabels()][:2] == ["c0", "c1"]
    image = axes.images[0].get_array()
    np.testing.assert_array_equal(image, np.eye(classes))  # rows normalised: recall
