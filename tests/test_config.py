from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config, ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    if path.name == "schedules.yaml":
        pytest.skip("not a pipeline config")
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_defaults_without_file() -> None:
    cfg = load_config()
    assert cfg.model.cell == "gru" and cfg.decode.sample_fps == 5.0


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text("data:\n  videos: ../vids\nfeatures:\n  store: store\n")
    cfg = load_config(path)
    assert cfg.data.videos == (tmp_path / "vids").resolve()
    assert cfg.features.store == (tmp_path / "sub" / "store").resolve()


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("train.lr=0.001", ("train", "lr"), 0.001),
        ("train.epochs=7", ("train", "epochs"), 7),
        ("model.bidirectional=false", ("model", "bidirectional"), False),
        ("model.cell=lstm", ("model", "cell"), "lstm"),
        ("features.compile=off", ("features", "compile"), "off"),
        ("decode.sample_fps=null", ("decode", "sample_fps"), None),
        ("decode.sample_fps=7.5", ("decode", "sample_fps"), 7.5),
        ("tracking.experiment=123", ("tracking", "experiment"), "123"),
        ("features.weights=none", ("features", "weights"), "none"),
        ("data.extensions=[.mp4, .avi]", ("data", "extensions"), [".mp4", ".avi"]),
        ("data.videos=/tmp/x", ("data", "videos"), Path("/tmp/x")),
        ("train.grad_clip=null", ("train", "grad_clip"), None),
        ("model.projection=128", ("model", "projection"), 128),
    ],
)
def test_override_types(override: str, key: tuple[str, str], expected: object) -> None:
    cfg = load_config(None, [override])
    assert getattr(getattr(cfg, key[0]), key[1]) == expected


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "fragments"),
    [
        ("train:\n  lrr: 0.1\n", [], ["train.lrr", "unknown key", "lr"]),
        ("bogus:\n  a: 1\n", [], ["bogus", "unknown key", "data", "features"]),
        ("model:\n  cell: transformer\n", [], ["model.cell", "transformer", "'gru'"]),
        ("train:\n  lr: -1\n", [], ["train.lr", "-1", "greater than 0"]),
        ("train:\n  epochs: many\n", [], ["train.epochs", "many", "integer"]),
        ("", ["train.lrr=0.1"], ["train.lrr", "lrr", "allowed", "lr"]),
        ("", ["nosuch.key=1"], ["nosuch.key", "allowed", "train"]),
        ("", ["train.epochs=abc"], ["train.epochs", "abc"]),
        ("", ["train"], ["KEY=VALUE"]),
        ("", ["train=3"], ["whole section"]),
        ("", ["model.bidirectional=maybe"], ["model.bidirectional", "maybe", "boolean"]),
        ("- a\n- b\n", [], ["mapping"]),
        ("data: [unclosed\n", [], ["not valid YAML"]),
    ],
)
def test_config_errors_name_key_value_and_allowed(
    tmp_path: Path, yaml_text: str, overrides: list[str], fragments: list[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_flat_params_cover_every_key() -> None:
    flat = load_config().flat()
    assert flat["train.lr"] == 0.001 and "features.store" in flat and "label.overwrite" in flat


def test_cli_config_show_prints_resolved_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  cell: rnn\n")
    result = CliRunner().invoke(app, ["config", "show", "-c", str(path), "--set", "train.lr=0.5"])
    assert result.exit_code == 0, result.output
    assert "cell: rnn" in result.output and "lr: 0.5" in result.output


def test_cli_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "show", "--set", "model.cell=cnn"])
    assert result.exit_code == 2
    assert "model.cell" in result.output and "Traceback" not in result.output


def test_yaml_on_off_reads_as_compile_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("features:\n  compile: off\n")
    assert load_config(path).features.compile == "off"
