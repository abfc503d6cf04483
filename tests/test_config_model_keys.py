"""pipeline/config.py, the model section: refinement stages and the tcn cell are frame-task
keys, refused for clip models with an error that says so; every model key is described."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.rnn import RNNConfig
from pipeline.config import ConfigError, ModelConfig, load_config


@pytest.mark.parametrize(
    "yaml_text, overrides, fragments",
    [
        ("model:\n  cell: tcn\n", [], ["c.yaml", "model.cell: tcn", "data.task: frame", "'clip'"]),
        ("", ["model.stages=3"], ["model.stages > 1", "data.task: frame"]),
        ("", ["data.task=frame", "model.stages=0"], ["model.stages", "0", "greater than"]),
        ("", ["data.task=frame", "model.tcn_layers=0"], ["model.tcn_layers", "0"]),
    ],
)
def test_frame_only_and_bad_model_keys_are_config_errors(
    tmp_path: Path, yaml_text: str, overrides: list[str], fragments: list[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_frame_models_take_stages_and_the_tcn_keys() -> None:
    cfg = load_config(
        overrides=[
            "data.task=frame", "model.cell=tcn", "model.stages=4", "model.tcn_layers=6",
            "model.tcn_channels=32", "model.bidirectional=false",
        ]
    )  # fmt: skip
    model = RNNConfig(**cfg.model.model_dump())
    assert (model.cell, model.stages, model.tcn_layers, model.tcn_channels) == ("tcn", 4, 6, 32)
    flat = cfg.flat()
    assert flat["model.stages"] == 4 and flat["model.stage_hidden"] == 64  # MLflow params


def test_every_model_key_is_described() -> None:
    undescribed = [name for name, f in ModelConfig.model_fields.items() if not f.description]
    assert not undescribed
