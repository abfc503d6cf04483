"""flows/schedules.py: the schedules file, its entries and their parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.schedules import ScheduleError, entry_flow, flow_parameters, load_schedules
from tests.conftest import REPO
from tests.helpers_schedules import schedules_file, serve_without_server


def test_shipped_schedules_file_is_valid() -> None:
    entries = load_schedules(REPO / "configs" / "schedules.yaml")
    assert {e.flow for e in entries} == {"train", "extract", "label", "watch"}
    for entry in entries:
        entry.load_config(REPO / "configs")  # every config it names loads
        assert entry.schedule().timezone == entry.timezone


def test_shipped_prefect_yaml_names_real_flows() -> None:
    from flows.schedules import import_flow

    tree = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in tree["deployments"]:
        module, _, name = deployment["entrypoint"].partition(":")
        flow = import_flow(f"{module.removesuffix('.py').replace('/', '.')}:{name}")
        assert set(deployment["parameters"]) <= set(flow.parameters.properties)
        assert deployment["work_pool"]["name"] == "vidtag" and deployment["schedules"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"cron": "0 2 * * *", "interval": 60}, "exactly one of cron or interval"),
        ({}, "exactly one of cron or interval"),
        ({"cron": "61 * * * *"}, "bad cron"),
        ({"interval": "soon"}, "bad interval"),
        ({"interval": 60, "timezone": "Mars/Base"}, "unknown timezone"),
        ({"interval": 60, "flow": "retrain"}, "unknown flow"),
        ({"interval": 60, "every": 3}, "every"),
    ],
)
def test_bad_entries_are_clear_errors(tmp_path: Path, entry: dict, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"deployments": [{"name": "n", "flow": "extract", **entry}]}))
    with pytest.raises(ScheduleError, match=message):
        load_schedules(path)


@pytest.mark.parametrize(("value", "seconds"), [(90, 90), ("90s", 90), ("15m", 900), ("1h", 3600)])
def test_intervals_accept_seconds_and_units(tmp_path: Path, value, seconds: float) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"deployments": [{"name": "n", "flow": "extract", "interval": value}]})
    )
    assert load_schedules(path)[0].interval == seconds


def test_a_function_that_is_not_a_flow_is_one_line(tmp_path: Path) -> None:
    from flows.schedules import import_flow

    with pytest.raises(ScheduleError, match="not a Prefect flow"):
        import_flow("pipeline.config:load_config")
    path = schedules_file(tmp_path, {"flow": "pipeline.config:load_config"})
    result, output = serve_without_server(path)
    assert result.exit_code == 2, result.output
    assert "'pipeline.config:load_config' is not a Prefect flow" in output
    assert "Traceback" not in result.output and "prefect server start" not in output


def test_entry_paths_are_relative_to_the_schedules_file(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "conf"
    label = {
        "flow": "label",
        "config": "c.yaml",
        "set": ["data.videos=inbox", "features.store=../store", "data.annotations=null"],
        "parameters": {"input": "inbox", "output": "out", "model": "models:/m@a"},
    }
    path = schedules_file(folder, label)
    monkeypatch.chdir(tmp_path)
    (entry,) = load_schedules(path.relative_to(tmp_path))
    parameters = flow_parameters(entry, entry_flow(entry, path), path.relative_to(tmp_path))
    config = parameters["config"]
    assert config["data"]["videos"] == str(folder / "inbox") == parameters["input"]
    assert config["features"]["store"] == str(tmp_path / "store")
    assert config["data"]["annotations"] is None
    assert parameters["output"] == str(folder / "out") and parameters["model"] == "models:/m@a"


def test_shipped_inbox_is_one_folder() -> None:
    path = REPO / "configs" / "schedules.yaml"
    entries = {entry.name: entry for entry in load_schedules(path)}
    extract, label = entries["hourly-inbox-features"], entries["hourly-inbox-labels"]
    videos = flow_parameters(extract, entry_flow(extract, path), path)["config"]["data"]["videos"]
    labels = flow_parameters(label, entry_flow(label, path), path)
    inbox = str(REPO / "data" / "inbox")
    assert videos == labels["input"] == labels["config"]["data"]["videos"] == inbox
    tree = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployed = {d["name"]: d["parameters"] for d in tree["deployments"]}
    # prefect.yaml paths are relative to the repository root (the worker's working folder)
    assert deployed["hourly-inbox-features"]["overrides"] == ["data.videos=data/inbox"]
    assert deployed["hourly-inbox-labels"]["parameters"]["input"] == "data/inbox"
    assert deployed["hourly-inbox-labels"]["overrides"] == ["data.videos=data/inbox"]
    watch = entries["inbox-watch"]
    watched = flow_parameters(watch, entry_flow(watch, path), path)
    assert watched["inbox"] == inbox and watched["output"] == labels["output"]
    assert watched["run_for_s"] < watch.interval  # one hourly run ends before the next starts
