"""The import rules of `shared/DESIGN.md` ("Layout"), checked by reading source with `ast`.

Nothing is imported: every ``import``/``from … import`` in `pipeline/`, `flows/` and `models/`
counts, at module level or inside a function, except under ``if TYPE_CHECKING:``. Each broken
rule is one :class:`Violation`, printed as ``file:line: rule (detail)``.

Layering: the graph's nodes are ``pipeline.<sub>`` per subpackage, ``flows`` and ``models``, and
it has no cycle. The top-level modules of ``pipeline`` (config, errors, fileio, claims, progress,
jobs, lazy) are the base layer below them: they import no subpackage and not ``flows``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

PACKAGES = ("pipeline", "flows", "models")
BASE = "pipeline"  # the graph node of pipeline/__init__.py and pipeline/<module>.py

# One short name per rule, as reported.
PREFECT = "prefect outside flows/"
MLFLOW = "mlflow outside pipeline/tracking/"
CLI_LIBS = "typer/rich outside pipeline/cli/"
MODELS = "models/ imports project code"
FLOWS = "pipeline/ imports flows/ outside pipeline/cli/"
PRIVATE = "private module of another package"
BASE_LAYER = "base layer imports a subpackage or flows/"
CYCLE = "import cycle between subpackages"
RULES = (PREFECT, MLFLOW, CLI_LIBS, MODELS, FLOWS, PRIVATE, BASE_LAYER, CYCLE)

# The MLflow "model from code" file: MLflow runs it, so it must call mlflow itself.
MLFLOW_ALLOWED_FILES = ("pipeline/labeling/pyfunc.py",)


class Import(NamedTuple):
    path: str  # the importing file, relative to the checked root, posix
    module: str  # the importing module, e.g. pipeline.video.decode
    line: int
    target: str  # the imported module, absolute, e.g. pipeline.video._backends


class Violation(NamedTuple):
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule} ({self.detail})"


def module_name(relpath: Path) -> str:
    parts = list(relpath.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> list[Path]:
    """Every ``.py`` file of the checked packages, relative to ``root``."""
    return sorted(
        path.relative_to(root)
        for package in PACKAGES
        if (root / package).is_dir()
        for path in (root / package).rglob("*.py")
    )


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements anywhere under ``node``, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _import_nodes(node)


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from <…> import``, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def read_imports(root: Path) -> list[Import]:
    """Every import of every checked file; ``from a import b`` imports ``a.b`` when that is a
    module of the tree, else ``a``."""
    files = source_files(root)
    modules = {module_name(path) for path in files}
    found = []
    for path in files:
        module = module_name(path)
        is_package = path.name == "__init__.py"
        tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve_from(node, module, is_package)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in dict.fromkeys(targets):  # one row per module a statement imports
                found.append(Import(path.as_posix(), module, node.lineno, target))
    return found


def subpackages(root: Path) -> set[str]:
    """``pipeline.<sub>`` for every subpackage (a folder with an ``__init__.py``)."""
    return {f"pipeline.{init.parent.name}" for init in (root / "pipeline").glob("*/__init__.py")}


def node_of(module: str, subs: set[str]) -> str | None:
    """The layering node of a project module (None for third-party modules)."""
    parts = module.split(".")
    if parts[0] in ("flows", "models"):
        return parts[0]
    if parts[0] != "pipeline":
        return None
    sub = ".".join(parts[:2])
    return sub if sub in subs else BASE


def _top(module: str) -> str:
    return module.split(".")[0]


def _private_owner(target: str) -> str | None:
    """The package a private (underscored) project module belongs to, if ``target`` is one."""
    parts = target.split(".")
    if parts[0] not in PACKAGES:
        return None
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def rule_violations(imp: Import, subs: set[str]) -> Iterator[Violation]:
    """The per-import rules (everything but cycles)."""
    top, target = _top(imp.target), imp.target
    if top in ("prefect", "prefect_dask") and not imp.path.startswith("flows/"):
        yield Violation(imp.path, imp.line, PREFECT, f"imports {target}")
    if top == "mlflow" and not (
        imp.path.startswith("pipeline/tracking/") or imp.path in MLFLOW_ALLOWED_FILES
    ):
        yield Violation(imp.path, imp.line, MLFLOW, f"imports {target}")
    if top in ("typer", "rich") and not imp.path.startswith("pipeline/cli/"):
        yield Violation(imp.path, imp.line, CLI_LIBS, f"imports {target}")
    if imp.path.startswith("models/") and top in ("pipeline", "flows"):
        yield Violation(imp.path, imp.line, MODELS, f"imports {target}")
    if (
        imp.path.startswith("pipeline/")
        and not imp.path.startswith("pipeline/cli/")
        and top == "flows"
    ):
        yield Violation(imp.path, imp.line, FLOWS, f"imports {target}")
    owner = _private_owner(target)
    if owner is not None and imp.module != owner and not imp.module.startswith(owner + "."):
        yield Violation(imp.path, imp.line, PRIVATE, f"imports {target}, private to {owner}")
    if node_of(imp.module, subs) == BASE and node_of(target, subs) not in (None, BASE, "models"):
        yield Violation(imp.path, imp.line, BASE_LAYER, f"imports {target}")


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components of ``graph`` (node -> successors), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def cycle_violations(imports: list[Import], subs: set[str]) -> Iterator[Violation]:
    """Each import that is an edge inside a cycle of the subpackage graph."""
    edges = [(node_of(imp.module, subs), node_of(imp.target, subs), imp) for imp in imports]
    # The base layer is no node: its own rule keeps it below every subpackage.
    edges = [(a, b, imp) for a, b, imp in edges if a and b and a != b and BASE not in (a, b)]
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    component_of = {}
    for component in _strongly_connected(graph):
        if len(component) > 1:
            for node in component:
                component_of[node] = component
    for a, b, imp in edges:
        if a in component_of and b in component_of[a]:
            members = ", ".join(sorted(component_of[a]))
            yield Violation(imp.path, imp.line, CYCLE, f"{a} -> {b}; cycle among {members}")


def check_tree(root: Path) -> list[Violation]:
    """Every violation of the layout rules under ``root`` (a checkout), sorted."""
    imports = read_imports(root)
    subs = subpackages(root)
    violations = {v for imp in imports for v in rule_violations(imp, subs)}
    violations |= set(cycle_violations(imports, subs))
    return sorted(violations)


def expected_test_module(relpath: Path) -> str:
    """The test module a source module must have: ``pipeline/video/_container.py`` ->
    ``test_video_container``, ``flows/label.py`` -> ``test_flows_label``, ``pipeline/config.py``
    -> ``test_config``."""
    parts = list(relpath.with_suffix("").parts)
    if parts[0] == "pipeline":
        parts = parts[1:]
    return "test_" + "_".join(part.lstrip("_") for part in parts)


def missing_test_modules(root: Path) -> list[str]:
    """Source modules under ``root`` with no ``tests/<name>.py`` or ``tests/<name>_<topic>.py``."""
    tests = {path.stem for path in (root / "tests").glob("test_*.py")}
    missing = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.name == "__init__.py":
                continue
            name = expected_test_module(path.relative_to(root))
            if not any(test == name or test.startswith(f"{name}_") for test in tests):
                missing.append(f"{path.relative_to(root).as_posix()}: no tests/{name}.py")
    return missing
