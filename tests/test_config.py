from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
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


@pytest.mark.parametrize(
    ("yaml_text", "overrides"),
    [
        ("decode:\n  sample_fps: .inf\n", []),
        ("decode:\n  sample_fps: .nan\n", []),
        ("train:\n  lr: .inf\n", []),
        ("", ["decode.sample_fps=inf"]),
        ("", ["decode.sample_fps=.inf"]),
        ("", ["data.val_fraction=nan"]),
    ],
)
def test_non_finite_floats_are_rejected(
    tmp_path: Path, yaml_text: str, overrides: list[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match="finite number"):
        load_config(path, overrides)


def test_non_utf8_file_is_a_config_error_naming_file_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# café\ndecode:\n  backend: auto\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)
    assert "byte 5" in str(info.value) and "0xe9" in str(info.value)


def test_cli_non_utf8_file_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"model:\n  cell: \xff\n")
    result = CliRunner().invoke(app, ["config", "show", "-c", str(path)])
    assert result.exit_code == 2
    assert "UTF-8" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("yaml_text", "key", "line"),
    [
        ("decode:\n  sample_fps: 2\ndecode:\n  chunk_frames: 8\n", "'decode'", 3),
        ("train:\n  lr: 0.1\n  epochs: 3\n  lr: 0.2\n", "'lr'", 4),
        ("data:\n  extensions: [.mp4]\nmodel: {cell: gru, cell: lstm}\n", "'cell'", 3),
    ],
)
def test_duplicate_keys_are_config_errors(tmp_path: Path, yaml_text: str, key: str, line: int):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and f"duplicate key {key}" in message and f"line {line}" in message


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  <<: {hidden: 64, layers: 3}\n  hidden: 32\n")
    cfg = load_config(path)
    assert cfg.model.hidden == 32 and cfg.model.layers == 3


def test_duplicate_keys_in_schedules_file_are_schedule_errors(tmp_path: Path) -> None:
    from flows.schedules import ScheduleError, load_schedules

    path = tmp_path / "schedules.yaml"
    path.write_text(
        "deployments:\n  - name: a\n    flow: train\n    interval: 60\n    interval: 90\n"
    )
    with pytest.raises(ScheduleError, match=r"duplicate key 'interval' on line 5"):
        load_schedules(path)


def test_duplicate_keys_in_an_override_value_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="duplicate key"):
        load_config(None, ["data.extensions={a: 1, a: 2}"])


@pytest.mark.parametrize(
    "yaml_text",
    ["decode:\n  # sample_fps: 3\n", "decode:\n", "decode: null\ntrain:\n  # lr: 1\n"],
)
def test_a_section_with_only_comments_means_defaults(tmp_path: Path, yaml_text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    cfg = load_config(path, ["decode.chunk_frames=8"])
    assert cfg.decode.sample_fps == 5.0 and cfg.decode.chunk_frames == 8 and cfg.train.lr == 1e-3


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", "on"), ("True", "on"), ("yes", "on"), ("on", "on"), ("false", "off"), ("no", "off")],
)
def test_compile_override_reads_booleans_like_yaml(tmp_path: Path, value: str, expected: str):
    assert load_config(None, [f"features.compile={value}"]).features.compile == expected
    path = tmp_path / "c.yaml"
    path.write_text(f"features:\n  compile: {value}\n")
    assert load_config(path).features.compile == expected


def test_other_choice_fields_still_reject_booleans() -> None:
    with pytest.raises(ConfigError, match="decode.backend"):
        load_config(None, ["decode.backend=true"])


def test_set_expands_a_home_folder_in_paths(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(None, ["data.videos=~/clips", "features.store=~/store"])
    assert Path(cfg.data.videos) == tmp_path / "clips"
    assert Path(cfg.features.store) == tmp_path / "store"


def test_min_segment_s_is_auto_or_seconds_and_fold_needs_a_split_file() -> None:
    assert load_config(None).label.min_segment_s == "auto"
    assert load_config(None, ["label.min_segment_s=0.5"]).label.min_segment_s == 0.5
    for bad in ("-1", "often", "true"):
        with pytest.raises(ConfigError, match="expected a number of seconds >= 0 or 'auto'"):
            load_config(None, [f"label.min_segment_s={bad}"])
    with pytest.raises(ConfigError, match="data.fold chooses a bundle of data.split_file"):
        load_config(None, ["data.fold=1"])


def test_absolute_paths_resolves_what_is_relative_and_keeps_the_rest(tmp_path: Path) -> None:
    from pipeline.config import absolute_paths

    cfg = load_config(None, ["data.videos=/abs/videos", "train.lr=0.002"])  # store: the default
    resolved = absolute_paths(cfg, tmp_path)
    assert resolved.features.store == (tmp_path / "feature_store").resolve()
    assert resolved.data.videos == Path("/abs/videos") and resolved.train.lr == 0.002
    assert resolved.train.checkpoint_dir == (tmp_path / "checkpoints").resolve()
    unchanged = {"features": {"store"}, "train": {"checkpoint_dir"}}
    assert resolved.model_dump(exclude=unchanged) == cfg.model_dump(exclude=unchanged)
    assert cfg.features.store == Path("feature_store")  # the original is left as it was
