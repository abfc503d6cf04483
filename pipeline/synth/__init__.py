"""Synthetic labelled videos (real mp4 files) for the demo, the tests and benchmarks.

``dataset`` plans and writes a dataset; ``render`` draws the pixels of each class.
"""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    dataset="write_dataset CLIP_CLASSES FRAME_CLASSES BACKGROUND REVERSED_PAIRS",
)
