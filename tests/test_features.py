from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from pipeline.config import load_config
from pipeline.features.backbones import BackboneError, load_backbone, weights_id
from pipeline.features.extractor import ExtractorSpec, FeatureExtractor, spec_from_config

BACKBONES = {
    "resnet18": 512,
    "resnet50": 2048,
    "mobilenet_v3_small": 576,
    "mobilenet_v3_large": 960,
    "efficientnet_b0": 1280,
    "regnet_y_400mf": 440,
    "convnext_tiny": 768,
}


def _frames(count: int = 6, height: int = 80, width: int = 120, seed: int = 0) -> np.ndarray:
    """Smooth, structured frames (gradients + blobs), closer to video than white noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for _ in range(count):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 30)
        blob = ((x - cx) ** 2 + (y - cy) ** 2 < r**2)[..., None] * rng.uniform(0, 255, 3)
        base = np.stack([x / width * 255, y / height * 255, np.full_like(x, 128.0)], -1)
        frames.append(np.clip(0.5 * base + blob + rng.normal(0, 8, base.shape), 0, 255))
    return np.stack(frames).astype(np.uint8)


def _spec(**overrides) -> ExtractorSpec:
    fields = dict(
        backbone="resnet18", weights="none:seed0", image_size=64, sample_fps=5.0,
        max_frames=None, precision="fp32", decoder="test",
    )  # fmt: skip
    return ExtractorSpec(**{**fields, **overrides})


@pytest.mark.parametrize(("name", "dim"), BACKBONES.items())
def test_backbones_without_head_give_pooled_vectors(name: str, dim: int) -> None:
    backbone = load_backbone(name, "none", image_size=64)
    assert backbone.dim == dim
    with torch.inference_mode():
        out = backbone.module(torch.zeros(2, 3, 64, 64))
    assert out.reshape(2, -1).shape == (2, dim)


def test_random_init_is_seeded() -> None:
    a = load_backbone("resnet18", "none", 64, seed=1).module.conv1.weight
    b = load_backbone("resnet18", "none", 64, seed=1).module.conv1.weight
    c = load_backbone("resnet18", "none", 64, seed=2).module.conv1.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_loads_and_has_a_content_id(tmp_path: Path, suffix: str) -> None:
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    backbone = load_backbone("resnet18", str(path), 64)
    assert backbone.weights_id.startswith("file:")
    assert torch.equal(backbone.module.conv1.weight, model.conv1.weight)


def test_mismatched_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), path)
    with pytest.raises(BackboneError, match="does not fit resnet18"):
        load_backbone("resnet18", str(path), 64)


def test_failed_download_names_model_and_fix(tmp_path: Path, monkeypatch) -> None:
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(BackboneError) as info:
        load_backbone("resnet18", "DEFAULT", 64)
    message = str(info.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in message and "features.weights" in message


@pytest.mark.parametrize(
    ("name", "weights", "fragment"),
    [("resnet999", "none", "unknown backbone"), ("resnet18", "IMAGENET9K", "unknown weights")],
)
def test_bad_backbone_settings(name: str, weights: str, fragment: str) -> None:
    with pytest.raises(BackboneError, match=fragment):
        load_backbone(name, weights, 64)


def test_weights_id_resolves_default_to_the_real_name() -> None:
    assert weights_id("resnet18", "DEFAULT") == "ResNet18_Weights.IMAGENET1K_V1"
    assert weights_id("resnet18", "none", seed=3) == "none:seed3"


def test_bf16_features_agree_with_fp32() -> None:
    frames = _frames(8)
    fp32 = FeatureExtractor(_spec(precision="fp32"), device="cpu").embed(frames)
    bf16 = FeatureExtractor(_spec(precision="bf16"), device="cpu").embed(frames)
    cosine = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    assert cosine.min() >= 0.99, cosine


def test_embed_batches_are_independent_of_batch_size() -> None:
    frames = _frames(7)
    one = FeatureExtractor(_spec(), device="cpu", batch_size=3).embed(frames)
    four = FeatureExtractor(_spec(), device="cpu", batch_size=4).embed(frames)
    np.testing.assert_allclose(one, four, rtol=1e-4, atol=1e-4)


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
    assert (_spec().key() == _spec(**change).key()) is same


def test_spec_round_trips_through_dict() -> None:
    spec = _spec()
    assert ExtractorSpec.from_dict(spec.to_dict()) == spec


def test_spec_from_config_resolves_auto_precision() -> None:
    cfg = load_config(None, ["features.weights=none", "features.device=cpu"])
    spec = spec_from_config(cfg)
    assert spec.precision in ("fp32", "bf16") and spec.weights == "none:seed0"


def test_failed_compile_falls_back_to_eager_with_a_warning(monkeypatch) -> None:
    def broken_compile(module, **kwargs):
        def run(batch):
            raise RuntimeError("inductor: no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    frames = _frames(5)
    compiled = FeatureExtractor(_spec(), device="cpu", batch_size=4, compile_mode="on")
    assert compiled.compiled
    with pytest.warns(UserWarning, match="torch.compile failed"):
        out = compiled.embed(frames)
    assert not compiled.compiled
    eager = FeatureExtractor(_spec(), device="cpu", batch_size=4).embed(frames)
    np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-5)


def test_auto_compile_waits_until_the_job_is_long(monkeypatch) -> None:
    import pipeline.features.extractor as features

    calls = []
    monkeypatch.setattr(features, "AUTO_COMPILE_AFTER_FRAMES", 10)
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append(1) or module)
    extractor = FeatureExtractor(_spec(), device="cpu", batch_size=4, compile_mode="auto")
    extractor.embed(_frames(6))
    assert not calls
    extractor.embed(_frames(6))
    assert calls and extractor.compiled


def test_compile_cache_goes_where_asked_unless_the_user_chose_one(monkeypatch, tmp_path) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from pipeline.features.extractor import _use_compile_cache

    # torchvision's import has already put inductor's default here: that is not a choice.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the default, inside this test
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    _use_compile_cache(tmp_path / "store" / ".compile_cache")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "store" / ".compile_cache")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    _use_compile_cache(tmp_path / "store" / ".compile_cache")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


@pytest.mark.slow
def test_real_compile_agrees_with_eager_and_caches_under_the_given_folder(
    monkeypatch, tmp_path
) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 80, 3), dtype=np.uint8)
    spec = _spec(precision="fp32")
    eager = FeatureExtractor(spec, device="cpu", batch_size=4, compile_mode="off")
    cache = tmp_path / "store" / ".compile_cache"
    compiled = FeatureExtractor(
        spec, device="cpu", batch_size=4, compile_mode="on", cache_dir=cache
    )
    got = compiled.embed(frames)
    assert compiled.compiled, "torch.compile fell back to eager"
    np.testing.assert_allclose(got, eager.embed(frames), rtol=1e-3, atol=1e-3)
    assert any(path.is_file() for path in cache.rglob("*"))
