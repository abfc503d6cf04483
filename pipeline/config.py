"""The one config tree: YAML -> pydantic -> flow parameters -> MLflow params.

Loading is YAML safe loading that refuses duplicate keys (:class:`StrictSafeLoader`); dotted
``--set a.b=c`` overrides are coerced to the field's type as YAML would read them; every problem
becomes a :class:`ConfigError` naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import UserError
from pipeline.fileio import read_user_text

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
)  # fmt: skip


class ConfigError(UserError, ValueError):
    """A config file or override that cannot be used; the message says why."""


class Section(BaseModel):
    # Unknown keys are errors (typos must not be silently ignored); assignments validate; a float
    # must be finite (YAML reads .inf and .nan, which would only fail later, deep in a flow).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )


class DataConfig(Section):
    task: Literal["clip", "frame"] = Field(
        "clip", description="clip: many-to-one; frame: per frame"
    )
    videos: Path | None = Field(None, description="folder of videos (recursive) or a manifest")
    annotations: Path | None = Field(None, description="label file or folder")
    class_names: Path | None = Field(None, description="class-names file for MMAction2 lists")
    background: str = Field("background", description="label of frames no segment covers")
    extensions: list[str] = Field(list(VIDEO_EXTENSIONS), description="video file extensions")
    val_fraction: float = Field(
        0.15,
        ge=0.0,
        lt=1.0,
        description="share of videos for validation (carved out of train when the split "
        "column marks none val); 0: no early stopping, train.epochs run, the last kept",
    )
    test_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    split_seed: int = 0
    split_file: Path | None = Field(
        None,
        description="MS-TCN split bundle (splits/train.split1.bundle; its test.*.bundle beside "
        "it) or a folder of them chosen by data.fold; one video file name per line",
    )
    fold: int | None = Field(
        None, ge=0, description="with a split_file folder: train.split<fold>.bundle and test.*"
    )

    @model_validator(mode="after")
    def _fold_needs_split_file(self) -> DataConfig:
        if self.fold is not None and self.split_file is None:
            raise ValueError("data.fold chooses a bundle of data.split_file: set data.split_file")
        return self


class DecodeConfig(Section):
    backend: Literal["auto", "decord", "opencv"] = "auto"
    sample_fps: float | None = Field(5.0, gt=0, description="target sampling rate; null = all")
    max_frames: int | None = Field(None, gt=0, description="cap by uniform thinning")
    chunk_frames: int = Field(64, gt=0, description="frames decoded per chunk (bounds memory)")


class FeaturesConfig(Section):
    backbone: str = Field("resnet18", description="any torchvision classification model name")
    weights: str = Field(
        "DEFAULT", description="DEFAULT, a torchvision weights name, a local file, or none"
    )
    image_size: int = Field(224, ge=16, le=1024)
    batch_size: int = Field(32, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N, mps")
    compile: Literal["auto", "on", "off"] = "auto"
    threads: int | None = Field(None, gt=0, description="torch intra-op threads; null = cores")
    seed: int = Field(0, description="seed of random init when weights is none")
    store: Path = Field(Path("feature_store"), description="feature store folder")

    @field_validator("compile", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare on/off as a boolean.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class ModelConfig(Section):
    cell: Literal["rnn", "gru", "lstm", "none", "tcn"] = Field(
        "gru",
        description="rnn, gru, lstm; none: a per-step MLP, the order-blind baseline; tcn: "
        "MS-TCN's dilated residual temporal convolutions (frame task only)",
    )
    hidden: int = Field(256, gt=0, description="RNN hidden size (per direction)")
    layers: int = Field(2, gt=0, description="stacked RNN layers")
    bidirectional: bool = Field(
        True, description="false: causal (a step reads no later step; tcn pads on the left)"
    )
    dropout: float = Field(
        0.2, ge=0.0, lt=1.0, description="between RNN layers and before heads; tcn: per layer"
    )
    pooling: Literal["last", "mean", "attention"] = Field(
        "last", description="clip models: how the steps' states become one"
    )
    input_norm: bool = Field(True, description="LayerNorm on the input features")
    projection: int | None = Field(None, gt=0, description="linear input projection size")
    stages: int = Field(
        1,
        ge=1,
        description="frame models: stage 1 plus stages-1 refinement stages, each reading the "
        "previous stage's class probabilities (MS-TCN); all trained, the last predicts",
    )
    stage_hidden: int = Field(
        64, gt=0, description="RNN cells: hidden size of each refinement stage's 1-layer RNN"
    )
    stage_residual: bool = Field(
        True,
        description="RNN cells: each later stage adds a correction to the previous stage's "
        "logits, zero at start (a fresh multi-stage model predicts as its first stage); "
        "false: it predicts anew from the probabilities (MS-TCN's way)",
    )
    tcn_layers: int = Field(
        10, gt=0, description="tcn: dilated residual layers per stage (dilation 2^i, kernel 3)"
    )
    tcn_channels: int = Field(64, gt=0, description="tcn: feature maps of every layer")


class TrainConfig(Section):
    epochs: int = Field(30, gt=0)
    batch_size: int = Field(16, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    patience: int = Field(8, ge=0, description="epochs without improvement before stopping")
    seed: int = 0
    class_weights: bool = False
    smooth_weight: float = Field(
        0.0,
        ge=0,
        description="frame models: weight of MS-TCN's smoothing loss (truncated MSE of "
        "neighbouring steps' log-probabilities); 0: off",
    )
    device: str = "auto"
    checkpoint_dir: Path = Path("checkpoints")


class TrackingConfig(Section):
    # A relative sqlite:/// path resolves against the config file's folder (against the working
    # folder when it comes from --set or $MLFLOW_TRACKING_URI), like every other path.
    uri: str | None = Field(None, description="MLflow URI; null = $MLFLOW_TRACKING_URI or sqlite")
    experiment: str = "vidtag"
    registered_model: str = "vidtag"
    # A new version becomes @candidate only when its selection score on the test split beats
    # the current candidate's by more than this (0: any improvement).
    promote_margin: float = Field(0.0, ge=0, le=1)
    # A frame run logs a truth-against-prediction figure (timelines/<video>.png) for the first
    # this many test videos, and one overview of them all (0: only the overview).
    timeline_videos: int = Field(20, ge=0)


class RunnerConfig(Section):
    kind: Literal["local", "dask"] = "local"
    workers: int = Field(2, gt=0)
    address: str | None = Field(None, description="existing Dask scheduler, e.g. tcp://host:8786")


AUTO = "auto"
# ``label.min_segment_s: auto`` where nothing chose a merge length: a model trained without
# validation videos (``data.val_fraction: 0``), or one trained before models stored it. 0.3 s is
# what the shipped frame configs used before ``auto``: it drops one-step flickers at 5-10 fps.
AUTO_MIN_SEGMENT_FALLBACK_S = 0.3


class LabelConfig(Section):
    min_segment_s: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        AUTO,
        description="merge runs shorter than this (seconds) into a neighbour; auto: training "
        "picks it on the validation videos and stores it with the model, labelling uses the "
        "model's (a number given here or with --set wins)",
    )
    overwrite: bool = False
    previews: Literal["auto", "always", "never"] = Field(
        "auto",
        description="browser-playable H.264 preview beside the labels: auto = only for videos "
        "a browser cannot play (AVI, MPEG-4 Part 2, ...), always, never",
    )

    live_window_s: float = Field(
        30.0, ge=0, description="live: smoothing may revise only this many seconds back"
    )
    live_give_up_s: float = Field(
        60.0, gt=0, description="live: end after this long without a frame (reconnecting)"
    )

    @field_validator("min_segment_s", mode="before")
    @classmethod
    def _seconds_or_auto(cls, value: Any) -> Any:
        if value == AUTO:
            return value
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not (0 <= number < float("inf"))
        ):
            raise ValueError(f"expected a number of seconds >= 0 or {AUTO!r}")
        return number


class Config(Section):
    data: DataConfig = DataConfig()
    decode: DecodeConfig = DecodeConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    runner: RunnerConfig = RunnerConfig()
    label: LabelConfig = LabelConfig()

    @model_validator(mode="after")
    def _frame_only_models(self) -> Config:
        if self.data.task != "frame" and (self.model.cell == "tcn" or self.model.stages > 1):
            what = "model.cell: tcn" if self.model.cell == "tcn" else "model.stages > 1"
            raise ValueError(
                f"{what} labels every frame: it needs data.task: frame, got "
                f"{self.data.task!r} (clip models: cell rnn, gru, lstm or none, one stage)"
            )
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def flat(self) -> dict[str, Any]:
        """``{"train.lr": 0.001, ...}``: the MLflow run's params."""
        return flatten(self.model_dump(mode="json"))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- loading -------------------------------------------------------------------------------


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice (plain YAML would silently keep the last one)."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        self.key, self.line, self.first_line = key, line, first_line
        super().__init__(problem=str(self))

    def __str__(self) -> str:
        return (
            f"duplicate key {self.key!r} on line {self.line} (already given on line "
            f"{self.first_line}); give each key once"
        )


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKeyError` for a repeated mapping key at
    any depth (keys brought in by a ``<<`` merge may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_lines:
                    raise DuplicateKeyError(key, line, first_lines[key])
                first_lines[key] = line
            except TypeError:
                continue  # an unhashable key: the base class reports it
        return super().construct_mapping(node, deep)


def strict_safe_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (:class:`DuplicateKeyError`)."""
    return yaml.load(text, Loader=StrictSafeLoader)  # safe: StrictSafeLoader is a SafeLoader


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Read ``path`` (or the embedded defaults), apply ``a.b=c`` overrides, validate.

    Relative paths inside the file are resolved against the file's folder, so a config
    works from any working directory.
    """
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        tree = _read_yaml(path)
        _resolve_paths(tree, path.parent)
    for override in overrides:
        _apply_override(tree, override)
    return validate_tree(tree, source)


def validate_tree(tree: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        tree = strict_safe_load(read_user_text(path, "config file", ConfigError))
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {tree!r}")
    # A section whose keys are all commented out reads as null: it means "all defaults".
    return {section: {} if node is None else node for section, node in tree.items()}


_PATH_KEYS = (
    ("data", "videos"),
    ("data", "annotations"),
    ("data", "class_names"),
    ("data", "split_file"),
    ("features", "store"),
    ("train", "checkpoint_dir"),
)


SQLITE_PREFIX = "sqlite:///"


def absolute_sqlite_uri(uri: str, base: Path) -> str:
    """``sqlite:///relative/file.db`` made absolute against ``base`` (``sqlite:////abs/file.db``);
    any other URI (an absolute or in-memory SQLite store, a server) is returned as it is."""
    if not uri.startswith(SQLITE_PREFIX):
        return uri
    path_part, sep, query = uri.removeprefix(SQLITE_PREFIX).partition("?")
    if not path_part or path_part == ":memory:":
        return uri
    path = Path(path_part).expanduser()
    if path.is_absolute():
        return f"{SQLITE_PREFIX}{path}{sep}{query}" if path_part.startswith("~") else uri
    return f"{SQLITE_PREFIX}{(base / path).resolve()}{sep}{query}"


def absolute_paths(cfg: Config, base: Path | None = None) -> Config:
    """A copy of ``cfg`` whose relative paths (a default like ``feature_store``, a ``--set``)
    are resolved against ``base`` (the working folder): what a flow hands to tasks that may
    run on another machine or in a worker started in another folder."""
    tree = cfg.model_dump(mode="json")
    _resolve_paths(tree, Path.cwd() if base is None else base)
    return validate_tree(tree, "config")


def _resolve_paths(tree: dict[str, Any], base: Path) -> None:
    for section, key in _PATH_KEYS:
        node = tree.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str):
            value = Path(node[key]).expanduser()
            if not value.is_absolute():
                node[key] = str((base / value).resolve())
    tracking = tree.get("tracking")
    if isinstance(tracking, dict) and isinstance(tracking.get("uri"), str):
        tracking["uri"] = absolute_sqlite_uri(tracking["uri"], base)


def _apply_override(tree: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {override!r}: expected KEY=VALUE, e.g. train.lr=0.001")
    parts = key.split(".")
    annotation = _field_annotation(parts)
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"bad override {override!r}: {part!r} is not a section")
        node = child
    value = _coerce(raw.strip(), annotation)
    if tuple(parts) in _PATH_KEYS and isinstance(value, str):
        value = str(Path(value).expanduser())  # the shell leaves `key=~/x` unexpanded
    if tuple(parts) == ("tracking", "uri") and isinstance(value, str):
        value = absolute_sqlite_uri(value, Path.cwd())  # typed here: the working folder
    node[parts[-1]] = value


def _field_annotation(parts: list[str]) -> Any:
    """The annotation of the field at a dotted key, or a ConfigError naming the allowed keys."""
    model: type[BaseModel] = Config
    annotation: Any = None
    for depth, part in enumerate(parts):
        if model is None or part not in model.model_fields:
            where = ".".join(parts[:depth]) or "the top level"
            allowed = ", ".join(model.model_fields) if model else "(none: not a section)"
            raise ConfigError(
                f"unknown config key {'.'.join(parts)!r}: {part!r} is not a key of {where} "
                f"(allowed: {allowed})"
            )
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    if model is not None:
        raise ConfigError(f"override {'.'.join(parts)!r} names a whole section; name one key in it")
    return annotation


def _coerce(raw: str, annotation: Any) -> Any:
    """Strings stay strings for text fields (``experiment=123``); YAML rules otherwise.

    A choice field given something that is not one of its choices reads it as YAML would when
    that is a boolean (``features.compile=true`` is ``compile: true``, i.e. ``on``).
    """
    if raw.lower() in ("null", "~"):
        return None
    if _is_text(annotation):
        choices = _choices(annotation)
        if choices and raw not in choices and isinstance(_yaml_value(raw), bool):
            return _yaml_value(raw)
        return raw
    return _yaml_value(raw)


def _yaml_value(raw: str) -> Any:
    try:
        return strict_safe_load(raw)
    except DuplicateKeyError as exc:
        raise ConfigError(f"bad override value {raw!r}: {exc}") from None
    except yaml.YAMLError:
        return raw


def _choices(annotation: Any) -> set[str]:
    """The strings a Literal field (optionally ``| None``) allows; empty for other fields."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return set(args)
    if typing.get_origin(annotation) in (Union, types.UnionType) and args:
        nested = [_choices(a) for a in args]
        return set().union(*nested) if all(nested) else set()
    return set()


def _is_text(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_text(a) for a in args)
    if origin is Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    return annotation in (str, Path)


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        value = error.get("input")
        if not error["loc"]:  # a rule across sections (Config's model validator)
            lines.append(f"  {error['msg'].removeprefix('Value error, ')}")
        elif error["type"] == "extra_forbidden":
            allowed = _allowed_keys(error["loc"][:-1])
            lines.append(f"  unknown key {key!r} (allowed here: {allowed})")
        else:
            lines.append(f"  {key}: bad value {value!r}: {error['msg']}")
    return "\n".join(lines)


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(str(part)) if model else None
        model = field.annotation if field else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return ", ".join(model.model_fields)
    return "?"
