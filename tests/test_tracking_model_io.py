"""pipeline/tracking/model_io.py: a trained model as four plain files, and back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.rnn import build_model, model_config_dict
from pipeline.errors import UserError
from pipeline.features import ExtractorSpec
from pipeline.tracking.model_io import (
    CLASSES,
    EXTRACTOR,
    FILES,
    MODEL_CONFIG,
    WEIGHTS,
    TrainedModel,
    load_model_dir,
    load_model_files,
    save_model_dir,
)

SPEC = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", "2")
D, NAMES = 8, ["background", "stir", "pour"]


def _saved(folder: Path, task: str, background: str | None = "background", **cfg):
    torch.manual_seed(0)
    module = build_model(task, D, len(NAMES), {"hidden": 6, "layers": 1, **cfg}).eval()
    save_model_dir(folder, module, model_config_dict(module), SPEC, NAMES, background)
    return module


def _features(lengths=(5, 9)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, D)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize(
    ("task", "background", "cfg"),
    [("clip", None, {}), ("frame", "background", {"cell": "lstm", "bidirectional": True}),
     ("frame", "background", {"stages": 3, "stage_hidden": 4}),
     ("frame", "background", {"cell": "tcn", "stages": 2, "tcn_layers": 3, "tcn_channels": 5,
                              "bidirectional": False})],
)  # fmt: skip
def test_a_saved_model_loads_back_the_same(tmp_path, task, background, cfg) -> None:
    module = _saved(tmp_path, task, background, **cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    loaded = load_model_dir(tmp_path)
    assert (loaded.task, loaded.classes, loaded.spec, loaded.background) == (
        task, NAMES, SPEC, background,
    )  # fmt: skip
    assert not loaded.module.training and model_config_dict(loaded.module) == (
        model_config_dict(module)
    )
    features = _features()
    expected = TrainedModel(module, task, NAMES, SPEC, background).predict_proba(features)
    for got, want in zip(loaded.predict_proba(features), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_weights_are_plain_safetensors_and_the_rest_json(tmp_path) -> None:
    module = _saved(tmp_path, "clip")
    weights = load_file(tmp_path / WEIGHTS)  # no pickle anywhere
    assert weights.keys() == module.state_dict().keys()
    for key, value in module.state_dict().items():
        assert torch.equal(weights[key], value)
    assert json.loads((tmp_path / CLASSES).read_text()) == {
        "classes": NAMES, "background": "background",
    }  # fmt: skip
    assert ExtractorSpec.from_dict(json.loads((tmp_path / EXTRACTOR).read_text())) == SPEC
    assert json.loads((tmp_path / MODEL_CONFIG).read_text())["task"] == "clip"


def test_a_model_config_in_the_old_format_still_loads(tmp_path) -> None:
    """model_config.json as written before models had their own config dataclass: the app's
    ModelConfig dump, with every field."""
    _saved(tmp_path, "clip", cell="gru", pooling="attention")
    old = {
        "task": "clip", "input_dim": D, "num_classes": len(NAMES),
        "cfg": {"cell": "gru", "hidden": 6, "layers": 1, "bidirectional": True, "dropout": 0.2,
                "pooling": "attention", "input_norm": True, "projection": None},
    }  # fmt: skip
    (tmp_path / MODEL_CONFIG).write_text(json.dumps(old))
    loaded = load_model_files({name: tmp_path / name for name in FILES})
    saved = model_config_dict(loaded.module)  # the same model, weights loaded strictly
    assert {**saved, "cfg": {k: saved["cfg"][k] for k in old["cfg"]}} == old
    assert saved["cfg"]["stages"] == 1  # keys added since: the model saved before them


@pytest.mark.parametrize(("missing", "lengths"), [((WEIGHTS,), (5,)), ((CLASSES, EXTRACTOR), (5,))])
def test_a_folder_missing_files_is_a_user_error_naming_them(tmp_path, missing, lengths) -> None:
    _saved(tmp_path, "frame")
    for name in missing:
        (tmp_path / name).unlink()
    with pytest.raises(UserError, match=f"missing {', '.join(n for n in FILES if n in missing)}"):
        load_model_dir(tmp_path)


@pytest.mark.parametrize(("task", "shapes"), [("clip", [(3,), (3,)]), ("frame", [(5, 3), (9, 3)])])
def test_predict_proba_gives_probabilities_per_video(tmp_path, task, shapes) -> None:
    _saved(tmp_path, task)
    probs = load_model_dir(tmp_path).predict_proba(_features((5, 9)))
    assert [p.shape for p in probs] == shapes
    for p in probs:
        np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
