"""Data: which videos a job has, their labels, and the datasets training reads.

``discovery`` finds videos (folder or manifest), ``annotations`` reads the label formats,
``datasets`` splits by video, aligns labels to samples, pads and buckets.
"""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    discovery="DiscoveryError discover_videos",
    annotations="AnnotationError Annotations VideoAnnotation Segment load_annotations",
    bundles="apply_split_bundles bundle_pair",
    datasets=(
        "Batch Sample SequenceDataset BucketBatchSampler IGNORE_INDEX collate build_samples "
        "class_weights dataset_fingerprint"
    ),
)
