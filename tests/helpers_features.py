"""A small extractor spec for the feature tests: random-init resnet18 at 64 px, fp32."""

from __future__ import annotations

from pipeline.features.spec import ExtractorSpec


def make_spec(**overrides) -> ExtractorSpec:
    fields = dict(
        backbone="resnet18", weights="none:seed0", image_size=64, sample_fps=5.0,
        max_frames=None, precision="fp32", decoder="test",
    )  # fmt: skip
    return ExtractorSpec(**{**fields, **overrides})
