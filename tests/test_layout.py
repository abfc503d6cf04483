"""The layout's rules (tests/layout_rules.py): the tree keeps the import rules and has a test
module per module, and the checkers find each kind of break in a planted tree."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from tests import layout_rules as rules

REPO = Path(__file__).resolve().parents[1]

# The planted tree: allowed imports everywhere, plus one break per rule, marked `# <- RULE`.
ALLOWED = {
    "pipeline/__init__.py": "",
    "pipeline/config.py": "import yaml\nfrom models import rnn\n",
    "pipeline/lazy.py": "import importlib\n",
    "pipeline/video/__init__.py": "from pipeline.lazy import lazy_surface\n",
    "pipeline/video/decode.py": "from . import _backends\nfrom pipeline.video._backends import x\n",
    "pipeline/video/_backends.py": "import numpy\n",
    "pipeline/features/__init__.py": "",
    "pipeline/features/store.py": dedent(
        """\
        from typing import TYPE_CHECKING

        from pipeline.video import decode
        from pipeline.config import Config

        if TYPE_CHECKING:
            import mlflow
            from flows import label
        """
    ),
    "pipeline/tracking/__init__.py": "",
    "pipeline/tracking/mlflow.py": "import mlflow\nfrom mlflow import MlflowClient\n",
    "pipeline/training/__init__.py": "",
    "pipeline/training/job.py": "from pipeline.tracking import mlflow\n",
    "pipeline/labeling/__init__.py": "",
    "pipeline/labeling/pyfunc.py": "import mlflow\n",
    "pipeline/cli/__init__.py": "",
    "pipeline/cli/app.py": "import typer\nfrom rich.console import Console\n"
    "from flows import label\n",
    "flows/__init__.py": "",
    "flows/label.py": "import prefect\nfrom prefect_dask import DaskTaskRunner\n"
    "from pipeline import video\n",
    "models/__init__.py": "",
    "models/rnn.py": "import torch\nfrom .gru_kernel import gru\n",
    "models/gru_kernel.py": "import torch\n",
}

# rule -> (file, source, the line that breaks it)
PLANTED = {
    rules.PREFECT: ("pipeline/data/discovery.py", "import os\n\n\ndef f():\n  import prefect\n", 5),
    rules.MLFLOW: ("pipeline/labeling/predict.py", "import numpy\nfrom mlflow import Client\n", 2),
    rules.CLI_LIBS: ("pipeline/progress.py", "from rich.progress import Progress\n", 1),
    rules.MODELS: ("models/tagger.py", "import torch\nfrom pipeline.config import Config\n", 2),
    rules.FLOWS: ("pipeline/synth/render.py", "from .. import lazy\nimport flows.label\n", 2),
    rules.PRIVATE: ("pipeline/features/extract.py", "from pipeline.video import _backends\n", 1),
    rules.BASE_LAYER: ("pipeline/fileio.py", "import os\nfrom .features import store\n", 2),
    rules.CYCLE: ("pipeline/video/plan.py", "from pipeline.features.store import x\n", 1),
}  # fmt: skip


def plant(root: Path, files: dict[str, str]) -> Path:
    for relpath, source in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in path.relative_to(root).parents:
            init = root / package / "__init__.py"
            if package != Path(".") and not init.exists():
                init.write_text("")
        path.write_text(source)
    return root


def test_a_tree_that_keeps_the_rules_reports_nothing(tmp_path: Path) -> None:
    assert rules.check_tree(plant(tmp_path, ALLOWED)) == []


@pytest.mark.parametrize("rule", rules.RULES)
def test_each_planted_break_is_reported_with_file_line_and_rule(tmp_path: Path, rule: str) -> None:
    relpath, source, line = PLANTED[rule]
    violations = rules.check_tree(plant(tmp_path, {**ALLOWED, relpath: source}))
    assert (relpath, line, rule) in [(v.path, v.line, v.rule) for v in violations]
    assert str(violations[0]).startswith(f"{violations[0].path}:{violations[0].line}: ")
    if rule == rules.CYCLE:  # both edges of the cycle: store.py -> video and plan.py -> features
        assert {(v.path, v.rule) for v in violations} == {
            ("pipeline/features/store.py", rule),
            (relpath, rule),
        }
    else:
        assert [(v.path, v.line, v.rule) for v in violations] == [(relpath, line, rule)]


def test_all_planted_breaks_at_once(tmp_path: Path) -> None:
    planted = {relpath: source for relpath, source, _ in PLANTED.values()}
    reported = {
        (v.path, v.line, v.rule) for v in rules.check_tree(plant(tmp_path, ALLOWED | planted))
    }
    assert {(relpath, line, rule) for rule, (relpath, _, line) in PLANTED.items()} <= reported


def test_relative_imports_resolve_against_the_package(tmp_path: Path) -> None:
    decode = "from . import plan\nfrom .. import config\n"
    files = {
        "pipeline/video/decode.py": decode,
        "pipeline/video/plan.py": "",
        "pipeline/config.py": "",
    }
    root = plant(tmp_path, files)
    targets = {(imp.module, imp.target) for imp in rules.read_imports(root)}
    assert ("pipeline.video.decode", "pipeline.video.plan") in targets
    assert ("pipeline.video.decode", "pipeline.config") in targets


@pytest.fixture(scope="module")
def tree_violations() -> list[rules.Violation]:
    return rules.check_tree(REPO)


@pytest.mark.parametrize("rule", rules.RULES)
def test_the_tree_keeps_the_rules(tree_violations: list[rules.Violation], rule: str) -> None:
    broken = [str(v) for v in tree_violations if v.rule == rule]
    assert broken == [], "\n".join(broken)


@pytest.mark.parametrize(
    ("source", "test_module"),
    [
        ("pipeline/config.py", "test_config"),
        ("pipeline/video/decode.py", "test_video_decode"),
        ("pipeline/video/_container.py", "test_video_container"),
        ("flows/label.py", "test_flows_label"),
        ("models/rnn.py", "test_models_rnn"),
    ],
)
def test_test_modules_are_named_after_their_module(source: str, test_module: str) -> None:
    assert rules.expected_test_module(Path(source)) == test_module


def test_a_module_without_a_test_module_is_reported(tmp_path: Path) -> None:
    files = {
        "pipeline/__init__.py": "",
        "pipeline/video/__init__.py": "",
        "pipeline/video/decode.py": "",
        "pipeline/video/plan.py": "",
        "flows/label.py": "",
        "tests/test_video_decode.py": "",
        "tests/test_flows_label_summary.py": "",  # a topic suffix counts
    }
    assert rules.missing_test_modules(plant(tmp_path, files)) == [
        "pipeline/video/plan.py: no tests/test_video_plan.py"
    ]


def test_every_module_has_a_test_module() -> None:
    assert rules.missing_test_modules(REPO) == []
