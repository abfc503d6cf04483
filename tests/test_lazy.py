"""Lazy package surfaces: a name imports its module on first use, an unknown name is an
AttributeError, and ``dir()`` lists the surface; every stage's surface resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

from pipeline.lazy import lazy_surface
from tests.conftest import REPO

STAGES = ["video", "features", "data", "synth", "training", "tracking", "labeling"]


def test_a_name_is_resolved_from_its_module_on_first_use() -> None:
    names, getattr_, dir_ = lazy_surface("pipeline", config="load_config", errors="UserError")
    from pipeline.config import load_config
    from pipeline.errors import UserError

    assert getattr_("load_config") is load_config and getattr_("UserError") is UserError
    assert dir_() == names == ["UserError", "load_config"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    _, getattr_, _ = lazy_surface("pipeline", config="load_config")
    with pytest.raises(AttributeError, match="module 'pipeline' has no attribute 'nope'"):
        getattr_("nope")
    with pytest.raises(AttributeError):  # a name the module lacks is not hidden either
        lazy_surface("pipeline", config="nope")[1]("nope")


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_surface_resolves_and_lists_itself(stage: str) -> None:
    package = importlib.import_module(f"pipeline.{stage}")
    names = dir(package)
    assert names == sorted(package.__all__) and names
    for name in names:
        assert getattr(package, name) is not None, f"pipeline.{stage}.{name}"
    assert not hasattr(package, "not_a_public_name")


def test_importing_a_surface_imports_none_of_its_modules() -> None:
    code = (
        "import sys, pipeline.features as f; "
        "print(sorted(m for m in sys.modules if m.startswith('pipeline.features.'))); "
        "f.FeatureStore; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "False"  # the store imports neither torch nor more


def test_the_surface_is_a_module_level_getattr() -> None:
    module = types.ModuleType("pkg")
    _, module.__getattr__, module.__dir__ = lazy_surface("pipeline", errors="UserError")
    from pipeline.errors import UserError

    assert module.UserError is UserError and dir(module) == ["UserError"]
