"""pipeline/colours.py: one colour per class, fixed by the class's position."""

from __future__ import annotations

import pytest

from pipeline.colours import BACKGROUND_COLOUR, PALETTE, class_colours


def test_background_is_grey_and_does_not_shift_the_others() -> None:
    with_background = class_colours(["background", "pour", "stir"], "background")
    without = class_colours(["pour", "stir"])
    assert with_background == {**without, "background": BACKGROUND_COLOUR}
    assert without == {"pour": PALETTE[0], "stir": PALETTE[1]}


@pytest.mark.parametrize(("count", "distinct"), [(3, 3), (20, 20), (25, 20)])
def test_colours_are_distinct_up_to_the_palette_size(count: int, distinct: int) -> None:
    mapping = class_colours([f"c{i}" for i in range(count)])
    assert len(mapping) == count and len(set(mapping.values())) == distinct
    assert mapping["c0"] == PALETTE[0]
