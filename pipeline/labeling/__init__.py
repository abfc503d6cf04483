"""Labelling: new videos -> per-frame labels, segments and the files people review."""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "get_model": "predict",
    "resolve_model": "predict",
    "check_spec": "predict",
    "label_one": "predict",
    "predict_table": "predict",
    "write_outputs": "outputs",
    "index_html": "page",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
