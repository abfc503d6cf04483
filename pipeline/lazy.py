"""Package surfaces that import their modules on first use.

Each stage's ``__init__.py`` names its public surface with :func:`lazy_surface`; a name's module
is imported when the name is first used, so ``from pipeline.features import FeatureStore`` does
not import torch, and ``vidtag --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_surface(
    package: str, **modules: str
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    ``modules`` maps each module of the package to the space-separated names it provides:
    ``lazy_surface(__name__, decode="probe iter_chunks", plan="sample_plan")``.
    """
    exports = {name: module for module, names in modules.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return sorted(exports), __getattr__, __dir__
