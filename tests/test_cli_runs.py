"""pipeline/cli/runs.py: a flow run under vidtag's settings with progress from its events."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app


@pytest.mark.parametrize("missing", ["data.videos=null"])
def test_extract_without_videos_is_a_clear_error(missing: str) -> None:
    result = CliRunner().invoke(app, ["extract", "--set", missing])
    assert result.exit_code == 2 and "data.videos" in result.output
