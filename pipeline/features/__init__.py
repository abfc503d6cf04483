"""Features: per-frame CNN vectors and the store that keeps them.

``spec`` says what makes the features (its hash is the extractor key), ``extractor`` embeds
decoded frames (``backbones`` builds the torchvision model), ``store`` keeps one file per
(video, extractor key), ``extract`` does one video end to end and ``store_admin`` is what
``vidtag store`` runs.
"""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "ExtractorSpec": "spec",
    "spec_from_config": "spec",
    "resolve_device": "spec",
    "FeatureExtractor": "extractor",
    "extract_video": "extractor",
    "BackboneError": "backbones",
    "FeatureStore": "store",
    "StoredFeatures": "store",
    "StoreCorruptError": "store",
    "read_entry": "store",
    "extract_one": "extract",
    "get_extractor": "extract",
    "stored_features": "extract",
    "StoreAdminError": "store_admin",
    "open_store": "store_admin",
    "usage": "store_admin",
    "verify": "store_admin",
    "gc": "store_admin",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
