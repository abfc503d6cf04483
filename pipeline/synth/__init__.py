"""Synthetic labelled videos (real mp4 files) for the demo, the tests and benchmarks.

``dataset`` plans and writes a dataset; ``render`` draws the pixels of each class.
"""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "write_dataset": "dataset",
    "CLIP_CLASSES": "dataset",
    "FRAME_CLASSES": "dataset",
    "BACKGROUND": "dataset",
    "REVERSED_PAIRS": "dataset",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
