"""pipeline/cli/app.py: the Typer app: help, examples, signals, what `train` prints."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import REPO


def _commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            paths += [[name, sub] for sub in subcommands]
        else:
            paths.append([name])
    return paths


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("synth", "probe", "extract", "train", "store", "config", "ui"):
        assert name in result.output


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from pipeline.cli.app import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "heavy = [m for m in ('torch', 'prefect', 'mlflow', 'cv2') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_sigterm_unwinds_like_ctrl_c_so_cleanup_runs() -> None:
    import signal

    from pipeline.cli.app import _on_start

    before = signal.getsignal(signal.SIGTERM)
    try:
        _on_start()
        handler = signal.getsignal(signal.SIGTERM)
        with pytest.raises(SystemExit) as stopped:
            handler(signal.SIGTERM, None)
        assert stopped.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, before)


def test_extract_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["extract", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.slow
def test_train_cli_prints_run_version_metrics_and_ui_command(clip_run) -> None:
    _, output = clip_run
    for fragment in ("MLflow run:", "models:/test-clip/1", "test_accuracy", "vidtag ui -c"):
        assert fragment in output
    assert "epoch 1/" in output  # not a terminal: plain epoch lines, no bar
    assert [line for line in output.splitlines() if "━" in line and "/" in line] == []


def test_help_paragraphs_wrap_to_the_terminal() -> None:
    """No hard line break inside a paragraph: a wide terminal shows each one on one line."""
    result = CliRunner().invoke(app, ["label", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert (
        "Features come from the model's own extractor spec (stored ones are reused). Videos "
        "already labelled by the same model are skipped" in result.output
    )


def test_unwrap_paragraphs_keeps_paragraphs_and_joins_lines() -> None:
    from pipeline.cli.app import unwrap_paragraphs

    doc = """First line
    continues.

    Second paragraph
        over two lines.
    """
    assert unwrap_paragraphs(doc) == "First line continues.\n\nSecond paragraph over two lines."
