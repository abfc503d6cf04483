"""Named, scheduled deployments of the flows from `configs/schedules.yaml` (README, "Schedules").

Each entry is validated (flow, config with its ``set`` overrides, parameters that must bind to
the flow's signature, one of ``cron``/``interval``, timezone) before anything is registered;
relative paths resolve against the schedules file's folder, and the resolved config travels as
the deployment's ``config`` parameter, so a run does not depend on the working folder.
"""

from __future__ import annotations

import datetime
import inspect
import re
import zoneinfo
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config import (
    _PATH_KEYS,
    Config,
    ConfigError,
    DuplicateKeyError,
    absolute_sqlite_uri,
    load_config,
    strict_safe_load,
)
from pipeline.errors import UserError
from pipeline.fileio import read_user_text

FLOWS = {
    "extract": "flows.extract:extract_features",
    "train": "flows.train:train",
    "label": "flows.label:label_folder",
    "watch": "flows.label:watch_inbox",
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Path parameters of the label and watch flows, read against the schedules file's folder.
_PATH_PARAMETERS = {
    FLOWS["label"]: ("input", "output", "model"),
    FLOWS["watch"]: ("inbox", "output", "model"),
}


class ScheduleError(UserError):
    """The schedules file is missing, malformed or names something that does not exist."""


class ScheduleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    flow: str
    config: Path | None = None
    set: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = None
    interval: float | None = Field(None, gt=0, description="seconds, or '90s', '15m', '1h', '1d'")
    timezone: str = "UTC"
    active: bool = True
    description: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("flow")
    @classmethod
    def _known_flow(cls, value: str) -> str:
        if value not in FLOWS and ":" not in value:
            raise ValueError(f"unknown flow {value!r}: use {', '.join(FLOWS)} or module:function")
        return value

    @field_validator("interval", mode="before")
    @classmethod
    def _interval_seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
            if not match:
                raise ValueError(f"bad interval {value!r}: seconds, or e.g. '90s', '15m', '1h'")
            return float(match[1]) * _UNITS[match[2]]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}: use an IANA name") from None
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleEntry:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        if self.cron is not None:
            from prefect.client.schemas.schedules import CronSchedule

            try:
                CronSchedule(cron=self.cron, timezone=self.timezone)
            except ValidationError:
                raise ValueError(f"bad cron expression {self.cron!r}") from None
        return self

    @property
    def flow_ref(self) -> str:
        return FLOWS.get(self.flow, self.flow)

    def load_config(self, base: Path) -> Config:
        path = self.config
        if path is not None and not path.is_absolute():
            path = base / path
        return load_config(path, [_resolve_override(override, base) for override in self.set])

    def schedule(self):
        """The Prefect schedule object (its ``active`` flag is this entry's)."""
        from prefect.schedules import Cron, Interval

        if self.cron is not None:
            return Cron(self.cron, timezone=self.timezone, active=self.active)
        anchor = datetime.datetime.now(zoneinfo.ZoneInfo(self.timezone))
        return Interval(
            datetime.timedelta(seconds=self.interval),
            anchor_date=anchor,
            timezone=self.timezone,
            active=self.active,
        )


class SchedulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployments: list[ScheduleEntry]

    @model_validator(mode="after")
    def _unique_names(self) -> SchedulesFile:
        names = [entry.name for entry in self.deployments]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate deployment names: {', '.join(duplicates)}")
        return self


def load_schedules(path: str | Path) -> list[ScheduleEntry]:
    """The validated entries of a schedules file; every problem is one ScheduleError."""
    path = Path(path)
    text = read_user_text(path, "schedules file", ScheduleError)
    try:
        tree = strict_safe_load(text)
    except DuplicateKeyError as exc:
        raise ScheduleError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ScheduleError(f"{path} is not valid YAML: {exc}") from None
    try:
        return SchedulesFile.model_validate(tree or {}).deployments
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ScheduleError(f"invalid schedules file {path}:\n{problems}") from None


def _resolve_override(override: str, base: Path) -> str:
    """``key=value`` with a relative path of a path key (``data.videos``...) made absolute."""
    key, sep, raw = override.partition("=")
    value = raw.strip()
    if sep and key.strip() == "tracking.uri":
        return f"{key}={absolute_sqlite_uri(value, base)}"  # sqlite:///rel.db: this file's folder
    if not sep or tuple(key.strip().split(".")) not in _PATH_KEYS:
        return override
    if value.lower() in ("", "null", "~"):
        return override
    path = Path(value).expanduser()
    return override if path.is_absolute() else f"{key}={(base / path).resolve()}"


def _resolve_path(value: Any, base: Path) -> Any:
    """A relative path string made absolute against ``base``; URIs and the rest as they are."""
    if not isinstance(value, str) or not value or re.match(r"[A-Za-z][\w+.-]+:", value):
        return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else str((base / path).resolve())


def import_flow(ref: str):
    """The Prefect flow named ``module:function``."""
    import importlib

    from prefect import Flow

    module_name, _, attribute = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
        found = getattr(module, attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ScheduleError(f"cannot import flow {ref!r}: {exc}") from None
    if not isinstance(found, Flow):
        raise ScheduleError(f"{ref!r} is not a Prefect flow: decorate it with @flow")
    return found


def _where(entry: ScheduleEntry, schedules_file: Path) -> str:
    return f"{schedules_file}: deployment {entry.name!r}"


def entry_flow(entry: ScheduleEntry, schedules_file: Path):
    """The Prefect flow ``entry`` names; a ScheduleError naming the file and entry otherwise."""
    try:
        return import_flow(entry.flow_ref)
    except ScheduleError as exc:
        raise ScheduleError(f"{_where(entry, schedules_file)}: {exc}") from None


def flow_parameters(entry: ScheduleEntry, flow: Any, schedules_file: Path) -> dict[str, Any]:
    """The deployment's parameters, checked against ``flow``'s signature.

    The resolved config (when the flow takes one) plus ``parameters``; relative paths of a
    ``label`` entry's ``input``, a ``watch`` entry's ``inbox``, and either's ``output`` and
    local ``model`` are read against the schedules file's folder.
    """
    where = _where(entry, schedules_file)
    base = schedules_file.parent
    signature = inspect.signature(flow.fn)
    parameters = dict(entry.parameters)
    for name in _PATH_PARAMETERS.get(entry.flow_ref, ()):
        if name in parameters:
            parameters[name] = _resolve_path(parameters[name], base)
    if "config" in signature.parameters:
        if entry.config is not None or "config" not in parameters:
            parameters["config"] = _entry_config(entry, base, where).model_dump(mode="json")
    elif entry.config is not None or entry.set:
        raise ScheduleError(f"{where}: flow {entry.flow_ref} takes no config: drop config/set")
    _check_binds(signature, parameters, f"{where}: flow {entry.flow_ref}")
    return parameters


def _entry_config(entry: ScheduleEntry, base: Path, where: str) -> Config:
    try:
        return entry.load_config(base)
    except ConfigError as exc:
        raise ScheduleError(f"{where}: {exc}") from None


def _check_binds(signature: inspect.Signature, parameters: dict[str, Any], where: str) -> None:
    """A ScheduleError naming every missing and unknown parameter unless they bind."""
    accepted = signature.parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    required = [n for n, p in accepted.items() if p.kind in named and p.default is p.empty]
    missing = [n for n in required if n not in parameters]
    unknown = [n for n in parameters if not takes_any and n not in accepted]
    problems = []
    if missing:
        problems.append(f"needs parameters {', '.join(missing)} (add them under parameters:)")
    if unknown:
        takes = ", ".join(accepted) or "none"
        problems.append(f"takes no parameters {', '.join(unknown)} (it takes {takes})")
    if not problems:
        try:
            signature.bind(**parameters)
        except TypeError as exc:
            problems.append(f"cannot take these parameters: {exc}")
    if problems:
        raise ScheduleError(f"{where} {'; '.join(problems)}")
