"""Labelling: new videos -> per-frame labels, segments and the files people review.

``segments`` turns one video's predictions into labels (pure), ``predict`` runs a model on a
video with its own extractor, ``folder`` plans a folder and labels one video of it,
``outputs`` writes the per-video files and summary.csv, ``page`` the review page.
"""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "SegmentBuilder": "segments",
    "VideoLabels": "segments",
    "get_model": "predict",
    "check_spec": "predict",
    "label_video": "predict",
    "predict_table": "predict",
    "plan_folder": "folder",
    "label_one": "folder",
    "write_outputs": "outputs",
    "index_html": "page",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
