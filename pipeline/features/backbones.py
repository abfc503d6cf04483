"""torchvision classification models without their heads, and their preprocessing.

``load_backbone("resnet18", "DEFAULT", image_size=224)`` gives a module mapping a normalised
(B, 3, S, S) batch to pooled (B, D) features, plus the numbers its weights were trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.errors import UserError
from pipeline.fileio import file_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NO_WEIGHTS = ("none", "null", "random", "")


class BackboneError(UserError):
    """Unknown model, weights that cannot be found, fetched or loaded."""


@dataclass(frozen=True)
class Preprocess:
    resize_size: int  # short side before the centre crop
    crop_size: int  # square input of the network
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass
class Backbone:
    name: str
    weights_id: str  # stable identity of the weights: part of the extractor key
    module: nn.Module  # (B, 3, S, S) normalised -> (B, D)
    preprocess: Preprocess
    dim: int


def weights_id(name: str, weights: str, seed: int = 0) -> str:
    """A stable identity for the weights setting, computed without loading anything."""
    if weights.strip().lower() in NO_WEIGHTS:
        return f"none:seed{seed}"
    path = Path(weights).expanduser()
    if _looks_like_file(weights):
        if not path.is_file():
            raise BackboneError(f"weights file not found for {name}: {path}")
        return f"file:{file_sha256(path)[:16]}"
    return str(_torchvision_weights(name, weights))


def check_backbone(name: str) -> None:
    """BackboneError unless ``name`` is a torchvision classification model."""
    import difflib

    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise BackboneError(
            f"unknown backbone {name!r}: {hint}any of the {len(known)} torchvision "
            "classification models works (torchvision.models.list_models(module="
            "torchvision.models)), e.g. resnet18, resnet50, mobilenet_v3_small, efficientnet_b0"
        )


def load_backbone(name: str, weights: str, image_size: int, seed: int = 0) -> Backbone:
    import torchvision.models as tvm

    check_backbone(name)
    ident = weights_id(name, weights, seed)
    if ident.startswith("none:"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = tvm.get_model(name, weights=None)
        preprocess = _scaled(256, 224, IMAGENET_MEAN, IMAGENET_STD, image_size)
    elif ident.startswith("file:"):
        model = tvm.get_model(name, weights=None)
        _load_state_file(model, Path(weights).expanduser(), name)
        preprocess = _scaled(256, 224, IMAGENET_MEAN, IMAGENET_STD, image_size)
    else:
        enum = _torchvision_weights(name, weights)
        model = _download(tvm, name, enum)
        transform = enum.transforms()
        preprocess = _scaled(
            transform.resize_size[0], transform.crop_size[0], transform.mean, transform.std,
            image_size,
        )  # fmt: skip
    module = strip_head(model).eval()
    dim = _feature_dim(module, preprocess.crop_size)
    return Backbone(name, ident, module, preprocess, dim)


def strip_head(model: nn.Module) -> nn.Module:
    """Replace the classification layer by Identity, keeping pooling and any final norm."""
    for attr in ("fc", "head", "heads"):
        if isinstance(getattr(model, attr, None), (nn.Linear, nn.Sequential)):
            setattr(model, attr, nn.Identity())
            return model
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential):
        # ConvNeXt's classifier starts with the final LayerNorm: keep it, drop the Linear.
        if any(isinstance(m, (nn.LayerNorm,)) or "Norm" in type(m).__name__ for m in classifier):
            linear_positions = [i for i, m in enumerate(classifier) if isinstance(m, nn.Linear)]
            classifier[linear_positions[-1]] = nn.Identity()
        else:  # MobileNet/EfficientNet/VGG-style MLP heads: the pooled vector is the feature
            model.classifier = nn.Identity()
        return model
    if isinstance(classifier, nn.Linear):
        model.classifier = nn.Identity()
        return model
    raise BackboneError(f"do not know how to remove the head of {type(model).__name__}")


def _scaled(resize: int, crop: int, mean, std, image_size: int) -> Preprocess:
    # Keep the weights' resize/crop ratio (256/224 for ImageNet) at any input size.
    resize_size = max(image_size, round(image_size * resize / crop))
    return Preprocess(resize_size, image_size, tuple(mean), tuple(std))


def _looks_like_file(weights: str) -> bool:
    return weights.endswith((".pth", ".pt", ".safetensors")) or "/" in weights


def _torchvision_weights(name: str, weights: str):
    import torchvision.models as tvm

    try:
        enum_cls = tvm.get_model_weights(name)
    except ValueError as exc:
        raise BackboneError(f"unknown backbone {name!r}: {exc}") from None
    key = weights.split(".")[-1]
    try:
        return enum_cls.DEFAULT if key == "DEFAULT" else enum_cls[key]
    except KeyError:
        allowed = ", ".join(["DEFAULT", *(w.name for w in enum_cls), "none", "a .pth/.safetensors"])
        raise BackboneError(f"unknown weights {weights!r} for {name}; allowed: {allowed}") from None


def _download(tvm, name: str, enum) -> nn.Module:
    try:
        return tvm.get_model(name, weights=enum)
    except Exception as exc:  # noqa: BLE001 - urllib, ssl, hash and OS errors all end here
        raise BackboneError(
            f"could not fetch the pretrained weights {enum} for {name}: {exc}. "
            f"Fix: run once with network access (torchvision caches them under "
            f"~/.cache/torch/hub), or download {enum.url} elsewhere and set "
            f"features.weights to the local file, or use features.weights=none"
        ) from None


def _load_state_file(model: nn.Module, path: Path, name: str) -> None:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise BackboneError(f"cannot read weights file {path}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    head_only = all(k.split(".")[0] in ("fc", "classifier", "head", "heads") for k in missing)
    if unexpected or not head_only:
        raise BackboneError(
            f"weights file {path} does not fit {name}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


def _feature_dim(module: nn.Module, size: int) -> int:
    with torch.inference_mode():
        out = module(torch.zeros(1, 3, size, size))
    return int(out.reshape(1, -1).shape[1])
