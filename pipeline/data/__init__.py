"""Data: which videos a job has, their labels, and the datasets training reads.

``discovery`` finds videos (folder or manifest), ``annotations`` reads the label formats,
``datasets`` splits by video, aligns labels to samples, pads and buckets.
"""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "DiscoveryError": "discovery",
    "discover_videos": "discovery",
    "AnnotationError": "annotations",
    "Annotations": "annotations",
    "VideoAnnotation": "annotations",
    "Segment": "annotations",
    "load_annotations": "annotations",
    "Batch": "datasets",
    "Sample": "datasets",
    "SequenceDataset": "datasets",
    "BucketBatchSampler": "datasets",
    "IGNORE_INDEX": "datasets",
    "collate": "datasets",
    "build_samples": "datasets",
    "class_weights": "datasets",
    "dataset_fingerprint": "datasets",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
