"""The extractor spec: everything that changes the features, and its stable hash (the key).

A spec is built from the config once, before any work (``spec_from_config``), travels with a
trained model, and names the store folder its features live in. The device and precision
helpers live here because the spec's precision class is resolved for the device it will run on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Config

if TYPE_CHECKING:
    import torch

# --- device and precision ----------------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: oneDNN then runs bf16 convolutions natively (x3+ over fp32)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        try:
            if getattr(cpu, probe)():
                return True
        except Exception:  # noqa: BLE001 - private probes vary across torch versions
            continue
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


# --- the extractor spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractorSpec:
    """Everything that changes the features. Its hash is the extractor key."""

    backbone: str
    weights: str  # weights id: torchvision enum name, "none:seed<N>", or "file:<sha256/16>"
    image_size: int
    sample_fps: float | None
    max_frames: int | None
    precision: str  # fp32 | bf16 | fp16 (resolved, never "auto")
    decoder: str  # pipeline.video.decode.DECODER_VERSION
    weights_path: str | None = field(default=None, compare=False)  # where a file id is loaded

    def key(self) -> str:
        identity = {k: v for k, v in asdict(self).items() if k != "weights_path"}
        blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractorSpec:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    def weights_source(self) -> tuple[str, int]:
        """(what load_backbone takes, seed) to rebuild exactly these weights."""
        if self.weights.startswith("none:seed"):
            return "none", int(self.weights.removeprefix("none:seed"))
        if self.weights.startswith("file:"):
            if not self.weights_path:
                raise ValueError(f"extractor spec {self.key()} needs its weights file path")
            return self.weights_path, 0
        return self.weights, 0


def spec_from_config(cfg: Config) -> ExtractorSpec:
    """The spec of ``cfg``'s features on this machine.

    Resolving it checks the backbone and weights against torchvision and the precision against
    the device: seconds of imports (torch, torchvision) that a run with every video already
    stored would do for nothing. So the store keeps the resolved spec in ``<store>/.specs/``,
    keyed by the settings, this machine (host name, visible GPUs) and the torch and torchvision
    versions; any change there resolves it again.
    """
    cache = _spec_cache_path(cfg)
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        cached = ExtractorSpec.from_dict(data)
        if cached.key() == data["key"]:  # whole: not a file cut short or edited by hand
            return cached
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # not cached yet (or unreadable): resolve it
    spec = _resolve_spec(cfg)
    from pipeline.fileio import atomic_write_text

    try:
        atomic_write_text(cache, json.dumps(spec.to_dict(), sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only store: resolve again next time
    return spec


def _spec_cache_path(cfg: Config) -> Path:
    """Where the resolved spec of ``cfg`` is kept."""
    import importlib.metadata
    import os
    import platform

    from pipeline.video.decode import DECODER_VERSION

    store = Path(cfg.features.store).expanduser()
    feats = cfg.features
    weights = Path(feats.weights).expanduser()
    try:
        weights_file = list(weights.stat()[6:9]) if weights.is_file() else None  # size, times
    except OSError:
        weights_file = None
    gpus = "/proc/driver/nvidia/gpus"
    versions = {}
    for package in ("torch", "torchvision"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    identity = {
        "features": [feats.backbone, feats.weights, feats.seed, feats.image_size,
                     feats.precision, feats.device, weights_file],
        "decode": [cfg.decode.sample_fps, cfg.decode.max_frames, DECODER_VERSION],
        "machine": [platform.node(), os.environ.get("CUDA_VISIBLE_DEVICES"),
                    sorted(os.listdir(gpus)) if os.path.isdir(gpus) else None],
        "versions": versions,
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return store / ".specs" / f"{digest}.json"


def _resolve_spec(cfg: Config) -> ExtractorSpec:
    from pipeline.features.backbones import check_backbone, weights_id
    from pipeline.video.decode import DECODER_VERSION

    feats = cfg.features
    check_backbone(feats.backbone)  # before any work: a typo is one error, not N failed videos
    device = resolve_device(feats.device)
    ident = weights_id(feats.backbone, feats.weights, feats.seed)
    return ExtractorSpec(
        backbone=feats.backbone,
        weights=ident,
        image_size=feats.image_size,
        sample_fps=cfg.decode.sample_fps,
        max_frames=cfg.decode.max_frames,
        precision=resolve_precision(feats.precision, device),
        decoder=DECODER_VERSION,
        weights_path=str(Path(feats.weights).expanduser().resolve())
        if ident.startswith("file:")
        else None,
    )
