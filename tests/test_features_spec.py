"""The extractor spec: its key changes with every part that changes the features and never
otherwise, known specs keep their key across versions, and it round-trips through a dict."""

from __future__ import annotations

import pytest

from pipeline.config import load_config
from pipeline.features.spec import (
    ExtractorSpec,
    resolve_device,
    resolve_precision,
    spec_from_config,
)
from tests.helpers_features import make_spec


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({}, True),
        ({"weights_path": "/elsewhere"}, True),
        ({"backbone": "resnet50"}, False),
        ({"weights": "none:seed1"}, False),
        ({"image_size": 96}, False),
        ({"sample_fps": 10.0}, False),
        ({"max_frames": 100}, False),
        ({"precision": "bf16"}, False),
        ({"decoder": "other"}, False),
    ],
)
def test_extractor_key_changes_with_every_part_of_the_spec(change: dict, same: bool) -> None:
    assert (make_spec().key() == make_spec(**change).key()) is same


def test_spec_round_trips_through_dict() -> None:
    spec = make_spec()
    assert ExtractorSpec.from_dict(spec.to_dict()) == spec


def test_spec_from_config_resolves_auto_precision() -> None:
    cfg = load_config(None, ["features.weights=none", "features.device=cpu"])
    spec = spec_from_config(cfg)
    assert spec.precision in ("fp32", "bf16") and spec.weights == "none:seed0"


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        (dict(backbone="resnet18", weights="none:seed0", image_size=64, sample_fps=5.0,
              max_frames=None, precision="fp32", decoder="test"), "6805d84e1abae9beb6d0"),
        (dict(backbone="resnet18", weights="ResNet18_Weights.IMAGENET1K_V1", image_size=224,
              sample_fps=None, max_frames=300, precision="bf16", decoder="opencv-1"),
         "513db77bd4ceaa3ed852"),
        (dict(backbone="resnet50", weights="file:0123456789abcdef", image_size=160,
              sample_fps=2.5, max_frames=None, precision="fp16", decoder="d2",
              weights_path="/x/w.pth"), "33f89c25dc71f870bfb3"),
    ],
)  # fmt: skip
def test_known_specs_keep_their_key(fields: dict, key: str) -> None:
    # Computed before the spec moved to its own module: a changed key orphans every store
    # entry and every trained model's features.
    assert ExtractorSpec(**fields).key() == key


def test_to_dict_carries_the_key_and_from_dict_ignores_it() -> None:
    spec = make_spec(weights="file:0123456789abcdef", weights_path="/models/w.pth")
    data = spec.to_dict()
    assert data["key"] == spec.key() and data["weights_path"] == "/models/w.pth"
    assert ExtractorSpec.from_dict(data) == spec


@pytest.mark.parametrize(
    ("weights", "path", "source"),
    [
        ("none:seed3", None, ("none", 3)),
        ("ResNet18_Weights.IMAGENET1K_V1", None, ("ResNet18_Weights.IMAGENET1K_V1", 0)),
        ("file:0123456789abcdef", "/models/w.pth", ("/models/w.pth", 0)),
    ],
)
def test_weights_source_rebuilds_the_weights(weights: str, path, source) -> None:
    assert make_spec(weights=weights, weights_path=path).weights_source() == source


def test_a_file_weights_id_without_its_path_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs its weights file path"):
        make_spec(weights="file:0123456789abcdef").weights_source()


@pytest.mark.parametrize(("name", "device"), [("cpu", "cpu"), ("cuda:1", "cuda:1")])
def test_a_named_device_is_taken_as_given(name: str, device: str) -> None:
    assert str(resolve_device(name)) == device


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_an_explicit_precision_is_kept(precision: str) -> None:
    assert resolve_precision(precision, resolve_device("cpu")) == precision


def test_auto_precision_on_cpu_follows_the_cpu(monkeypatch) -> None:
    import pipeline.features.spec as spec_module

    cpu = resolve_device("cpu")
    monkeypatch.setattr(spec_module, "cpu_has_fast_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(spec_module, "cpu_has_fast_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"


def test_spec_from_config_refuses_an_unknown_backbone_before_any_work() -> None:
    from pipeline.features.backbones import BackboneError

    cfg = load_config(None, ["features.backbone=resnet999", "features.weights=none"])
    with pytest.raises(BackboneError, match="unknown backbone"):
        spec_from_config(cfg)


def test_spec_from_config_takes_the_decode_settings() -> None:
    from pipeline.video.decode import DECODER_VERSION

    cfg = load_config(
        None,
        ["features.weights=none", "features.device=cpu", "features.precision=fp32",
         "decode.sample_fps=2.5", "decode.max_frames=40", "features.image_size=96"],
    )  # fmt: skip
    spec = spec_from_config(cfg)
    assert (spec.sample_fps, spec.max_frames, spec.image_size) == (2.5, 40, 96)
    assert (spec.precision, spec.decoder, spec.weights_path) == ("fp32", DECODER_VERSION, None)


def test_an_existing_store_keeps_the_resolved_spec_per_settings(tmp_path) -> None:
    import json

    cfg = load_config(None, [f"features.store={tmp_path / 'store'}", "features.weights=none"])
    first = spec_from_config(cfg)
    assert spec_from_config(cfg) == first
    (cached,) = (tmp_path / "store" / ".specs").glob("*.json")
    # What is read back is the cached resolution (here marked by hand), not a new one.
    marked = ExtractorSpec.from_dict({**first.to_dict(), "precision": "marked"})
    cached.write_text(json.dumps(marked.to_dict()))
    assert spec_from_config(cfg) == marked
    other = cfg.model_copy(update={"features": cfg.features.model_copy(update={"image_size": 96})})
    assert spec_from_config(other).image_size == 96  # other settings: resolved on their own
    assert len(list((tmp_path / "store" / ".specs").glob("*.json"))) == 2
    # A damaged cache file (cut short, or not matching its key) is resolved again.
    for damaged in ("{", json.dumps({**first.to_dict(), "precision": "marked"}), "{}"):
        cached.write_text(damaged)
        assert spec_from_config(cfg) == first


@pytest.mark.slow  # a fresh Python process
def test_a_stored_video_is_found_without_importing_torch(tmp_path, index_videos) -> None:
    """What a run with every video stored does (spec, store lookup) needs no torch/torchvision:
    seconds of imports saved on every such run."""
    import subprocess
    import sys

    from pipeline.features.extract import extract_one
    from tests.conftest import REPO, tiny_config

    cfg = tiny_config(tmp_path, index_videos["lossless"].parent, None, "clip")
    extract_one(index_videos["lossless"], cfg)
    (tmp_path / "c.yaml").write_text(cfg.to_yaml())
    code = (
        "import sys\n"
        "from pipeline.config import load_config\n"
        "from pipeline.features.extract import already_stored\n"
        "from pipeline.features.spec import spec_from_config\n"
        "from pipeline.features.store import FeatureStore\n"
        f"cfg = load_config({str(tmp_path / 'c.yaml')!r}, [])\n"
        "spec = spec_from_config(cfg)\n"
        f"record = already_stored({str(index_videos['lossless'])!r}, "
        "FeatureStore(cfg.features.store), spec.key())\n"
        "print(record.status, [m for m in ('torch', 'torchvision') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "skipped []", out.stderr
