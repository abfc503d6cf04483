"""Features: per-frame CNN vectors and the store that keeps them.

``spec`` says what makes the features (its hash is the extractor key), ``extractor`` embeds
decoded frames (``backbones`` builds the torchvision model), ``store`` keeps one file per
(video, extractor key), ``extract`` does one video end to end and ``store_admin`` is what
``vidtag store`` runs.
"""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    spec="ExtractorSpec spec_from_config resolve_device",
    extractor="FeatureExtractor extract_video",
    backbones="BackboneError",
    store="FeatureStore StoredFeatures StoreCorruptError read_entry",
    extract="extract_one get_extractor stored_features already_stored",
    store_admin="StoreAdminError open_store usage verify gc",
)
