"""A trained model as plain files: weights (safetensors), model config, extractor spec, classes.

The same folder layout is what the MLflow pyfunc logs as artifacts, so a model can be loaded from
a registry URI or a local folder without unpickling anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.features.spec import ExtractorSpec
from pipeline.fileio import atomic_write_bytes, atomic_write_text

WEIGHTS = "weights.safetensors"
MODEL_CONFIG = "model_config.json"
EXTRACTOR = "extractor.json"
CLASSES = "classes.json"
FILES = (WEIGHTS, MODEL_CONFIG, EXTRACTOR, CLASSES)
# Optional: the labelling options the model was trained with (``label.min_segment_s``), the
# served model's defaults. Older models have none.
OPTIONS = "labeling.json"


@dataclass
class TrainedModel:
    module: nn.Module  # ClipClassifier, FrameTagger or TemporalConvNet (tcn), in eval mode
    task: str  # clip | frame
    classes: list[str]
    spec: ExtractorSpec
    background: str | None
    options: dict[str, Any] = field(default_factory=dict)  # labelling defaults (OPTIONS)

    @torch.inference_mode()
    def predict_proba(self, features: list[np.ndarray]) -> list[np.ndarray]:
        """Per video: clip (C,) class probabilities; frame (T, C) per sampled step."""
        outputs = []
        for feats in features:
            x = torch.as_tensor(np.asarray(feats, np.float32))[None]  # (1, T, D)
            lengths = torch.tensor([x.shape[1]])
            outputs.append(self.module(x, lengths).float().softmax(-1)[0].numpy())
        return outputs


def save_model_dir(
    folder: Path,
    module: nn.Module,
    model_config: dict[str, Any],
    spec: ExtractorSpec,
    classes: list[str],
    background: str | None,
    options: dict[str, Any] | None = None,
) -> Path:
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS, save(state))
    atomic_write_text(folder / MODEL_CONFIG, json.dumps(model_config, indent=2))
    atomic_write_text(folder / EXTRACTOR, json.dumps(spec.to_dict(), indent=2))
    classes_doc = {"classes": classes, "background": background}
    atomic_write_text(folder / CLASSES, json.dumps(classes_doc, indent=2))
    if options is not None:
        atomic_write_text(folder / OPTIONS, json.dumps(options, indent=2))
    return folder


def model_files(folder: Path) -> dict[str, Path]:
    """The files of a model folder by name: the four required ones and OPTIONS if present."""
    names = [*FILES, *([OPTIONS] if (folder / OPTIONS).is_file() else [])]
    return {name: folder / name for name in names}


def load_model_files(paths: dict[str, str | Path]) -> TrainedModel:
    """Rebuild from the four files (keys are the file names in ``FILES``)."""
    from safetensors.torch import load_file

    from models.rnn import build_model

    model_config = json.loads(Path(paths[MODEL_CONFIG]).read_text())
    module = build_model(**model_config)
    module.load_state_dict(load_file(str(paths[WEIGHTS])))
    module.eval()
    classes_doc = json.loads(Path(paths[CLASSES]).read_text())
    spec = ExtractorSpec.from_dict(json.loads(Path(paths[EXTRACTOR]).read_text()))
    options_path = paths.get(OPTIONS)
    options = json.loads(Path(options_path).read_text()) if options_path else {}
    return TrainedModel(
        module, model_config["task"], classes_doc["classes"], spec,
        classes_doc.get("background"), options,
    )  # fmt: skip


def load_model_dir(folder: str | Path) -> TrainedModel:
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        from pipeline.errors import UserError

        raise UserError(f"{folder} is not a vidtag model folder: missing {', '.join(missing)}")
    return load_model_files(model_files(folder))
