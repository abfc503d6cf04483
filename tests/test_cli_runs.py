"""pipeline/cli/runs.py: a flow run under vidtag's settings with progress from its events."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import tiny_config


@pytest.mark.parametrize("missing", ["data.videos=null"])
def test_extract_without_videos_is_a_clear_error(missing: str) -> None:
    result = CliRunner().invoke(app, ["extract", "--set", missing])
    assert result.exit_code == 2 and "data.videos" in result.output


def test_run_flow_draws_the_events_of_what_it_starts(tmp_path) -> None:
    """The events ``start`` reports reach the bars; the silent reporter is back after it."""
    import io

    from rich.console import Console

    from pipeline.cli.console import ProgressReporter
    from pipeline.cli.runs import run_flow
    from pipeline.jobs import VideoRecord
    from pipeline.progress import SilentReporter, reporter

    console = Console(file=io.StringIO(), width=200, color_system=None)
    made: list[ProgressReporter] = []

    def bars(progress):
        made.append(ProgressReporter(progress, announce=lambda n: f"doing {n} videos"))
        return made[-1]

    def start() -> str:
        reporter().videos(2)
        reporter().frames(7)
        reporter().video_done(VideoRecord("a.mp4", "ok"))
        return "finished"

    cfg = tiny_config(tmp_path, tmp_path, None, "clip")
    assert run_flow(cfg, console, start, bars) == "finished"
    (bars_drawn,) = made
    shown = {t.description: (t.total, t.completed) for t in bars_drawn.progress.tasks}
    assert shown == {"videos": (2, 1), "frames": (None, 7)}
    assert "doing 2 videos" in console.file.getvalue()
    assert isinstance(reporter(), SilentReporter)


def test_run_flow_checks_the_runner_before_starting(tmp_path) -> None:
    """A Dask runner without a Prefect server: refused before ``start`` is called."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from rich.console import Console

    from flows.runner import RunnerError
    from pipeline.cli.runs import run_flow

    cfg = tiny_config(tmp_path, tmp_path, None, "clip", **{"runner.kind": "dask"})
    started = []
    with temporary_settings(restore_defaults={PREFECT_API_URL}), pytest.raises(RunnerError):
        run_flow(cfg, Console(file=None), lambda: started.append(1), lambda p: None)
    assert started == []


def test_ui_hint_names_the_config_when_it_alone_names_the_store(tmp_path) -> None:
    from pipeline.cli.runs import ui_hint
    from pipeline.tracking.mlflow import resolve_uri

    cfg = tiny_config(tmp_path, tmp_path, None, "clip")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(cfg.to_yaml())
    assert ui_hint(resolve_uri(cfg), config_file) == f"vidtag ui -c {config_file}"


@pytest.mark.parametrize("with_config", [True, False])
def test_ui_hint_names_the_store_when_set_or_the_environment_chose_it(
    tmp_path, with_config: bool
) -> None:
    """A store from --set (or $MLFLOW_TRACKING_URI) is not the config's: `vidtag ui -c CONFIG`
    would open another one, so the hint names the store itself."""
    import shlex

    from pipeline.cli.runs import ui_hint

    cfg = tiny_config(tmp_path, tmp_path, None, "clip")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(cfg.to_yaml())
    other = f"sqlite:///{tmp_path / 'other dir' / 'mlflow.db'}"
    hint = ui_hint(other, config_file if with_config else None)
    assert shlex.split(hint) == ["vidtag", "ui", "--set", f"tracking.uri={other}"]


@pytest.mark.slow
def test_extract_of_one_video_says_video_and_prints_plain_lines(
    prefect_api, index_videos, tmp_path
) -> None:
    """CliRunner's output is not a terminal: plain per-video lines, no bar, "1 video"."""
    import shutil

    videos = tmp_path / "videos"
    videos.mkdir()
    source = next(iter(index_videos.values()))
    shutil.copy(source, videos / source.name)
    cfg = tiny_config(tmp_path, videos, None, "clip")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(cfg.to_yaml())
    result = CliRunner().invoke(app, ["extract", "-c", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "extracting features of 1 video into" in result.output
    assert f"1/1 ok {videos / source.name}" in result.output
    bars = [line for line in result.output.splitlines() if "━" in line and "/" in line]
    assert bars == []  # no bar ("videos ━━━ 1/1 0:00:01") drawn into a non-terminal


@pytest.mark.slow
def test_extract_never_imports_mlflow(prefect_api, index_videos, tmp_path) -> None:
    """`vidtag extract` run end to end in a fresh process (on this session's Prefect API): the
    import chain of the command and everything the flow does leave mlflow unimported."""
    import os
    import shutil
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    from tests.conftest import REPO

    videos = tmp_path / "videos"
    videos.mkdir()
    source = next(iter(index_videos.values()))
    shutil.copy(source, videos / source.name)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(tiny_config(tmp_path, videos, None, "clip").to_yaml())
    script = (
        "import sys\nfrom pipeline.cli.app import app\n"
        "try:\n    app(['extract', '-c', sys.argv[1]])\nexcept SystemExit as end:\n"
        "    assert not end.code, end.code\n"
        "print('flow ran; mlflow imported:', 'mlflow' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": PREFECT_API_URL.value()}
    result = subprocess.run(
        [sys.executable, "-c", script, str(config_file)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1/1 ok" in result.stdout
    assert "flow ran; mlflow imported: False" in result.stdout, result.stdout
