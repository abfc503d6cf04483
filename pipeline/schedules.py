"""``configs/schedules.yaml``: named, scheduled deployments of vidtag's flows.

Each entry names a flow (``extract``, ``train``, ``label`` or ``module:function``), a vidtag
config file with optional ``set`` overrides, extra flow parameters, and exactly one of ``cron``
or ``interval``, a timezone and whether the schedule is active::

    deployments:
      - name: nightly-retrain
        flow: train
        config: clip_activity.yaml      # relative to this file's folder
        set: [train.epochs=40]
        cron: "0 2 * * *"
        timezone: Europe/Berlin
        active: true

The config is read and validated when the schedules are registered (``vidtag serve``); its
resolved values travel as the deployment's ``config`` parameter, so a flow run does not depend
on the working folder. Edit the config, then restart ``vidtag serve`` to update the deployment.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config import Config, DuplicateKeyError, load_config, strict_safe_load
from pipeline.errors import UserError
from pipeline.fileio import read_user_text

FLOWS = {
    "extract": "flows.extract:extract_features",
    "train": "flows.train:train",
    "label": "flows.label:label_folder",
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
        return load_config(path, self.set)

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


def import_flow(ref: str):
    """The flow object named ``module:function``."""
    import importlib

    module_name, _, attribute = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ScheduleError(f"cannot import flow {ref!r}: {exc}") from None


def flow_parameters(entry: ScheduleEntry, base: Path) -> dict[str, Any]:
    """The deployment's parameters: the resolved config (when given) plus ``parameters``."""
    parameters = dict(entry.parameters)
    if entry.config is not None or "config" not in parameters:
        parameters["config"] = entry.load_config(base).model_dump(mode="json")
    return parameters
