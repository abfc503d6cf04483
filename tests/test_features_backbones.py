"""Backbones: every supported torchvision model headless, seeded random init, local weights
files with a content id, and the errors for bad settings and failed downloads."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from pipeline.features.backbones import BackboneError, load_backbone, weights_id

BACKBONES = {
    "resnet18": 512,
    "resnet50": 2048,
    "mobilenet_v3_small": 576,
    "mobilenet_v3_large": 960,
    "efficientnet_b0": 1280,
    "regnet_y_400mf": 440,
    "convnext_tiny": 768,
}


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
