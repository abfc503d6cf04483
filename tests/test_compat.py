"""Models registered and stores written by the flat layout (commit 777090c) still label a folder.

`tests/data/compat_v1/README.md` says how the data was made. The test copies it, points the
copied MLflow store at the copy, labels the videos through the CLI and compares with the labels
the old code wrote.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app

DATA = Path(__file__).parent / "data" / "compat_v1"
OLD_ROOT = "/tmp/compat_stage"  # where the old code wrote it (see the README)
EXTRACTOR_KEY = "bcd7e2793e411ee9d148"
# Every column in which MLflow 3.17 keeps an absolute artifact path.
PATH_COLUMNS = {
    "experiments": "artifact_location",
    "runs": "artifact_uri",
    "logged_models": "artifact_location",
    "model_versions": "storage_location",
}
# Fields of labels.json that depend on where and when the labelling ran, not on the model.
PER_RUN_FIELDS = {"path", "created_at"}
SCORE_TOLERANCE = 1e-4  # scores are written rounded to 6 decimals

pytestmark = pytest.mark.slow


def relocate_mlflow_store(db: Path, old_root: str, new_root: str) -> int:
    """Rewrite the absolute artifact paths in an MLflow SQLite store; returns the rows changed."""
    changed = 0
    with sqlite3.connect(db) as connection:
        for table, column in PATH_COLUMNS.items():
            cursor = connection.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?, ?) WHERE {column} LIKE ?",
                (old_root, new_root, f"%{old_root}%"),
            )
            changed += cursor.rowcount
    return changed


# Keys labels.json gained since v1 (additive, same schema): the preview the review page plays.
ADDED_KEYS = {"preview"}


def same_labels(new: object, old: object, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old``: numbers within ``SCORE_TOLERANCE``, the rest exactly
    (a document may carry the keys added since, ``ADDED_KEYS``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        if not where:
            new = {k: v for k, v in new.items() if k not in ADDED_KEYS or k in old}
        if set(new) != set(old):
            return [f"{where}: keys {sorted(new)} != {sorted(old)}"]
        return [d for key in old for d in same_labels(new[key], old[key], f"{where}.{key}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(new) != len(old):
            return [f"{where}: {len(new)} items != {len(old)}"]
        pairs = enumerate(zip(new, old, strict=True))
        return [d for i, (n, o) in pairs for d in same_labels(n, o, f"{where}[{i}]")]
    numbers = (int, float)
    if isinstance(old, float) and isinstance(new, numbers) and not isinstance(new, bool):
        return (
            [] if math.isclose(new, old, abs_tol=SCORE_TOLERANCE) else [f"{where}: {new} != {old}"]
        )
    return [] if new == old and type(new) is type(old) else [f"{where}: {new!r} != {old!r}"]


def store_entries(store: Path) -> dict[str, int]:
    """Every stored feature file (relative path) -> its mtime (ns)."""
    return {
        p.relative_to(store).as_posix(): p.stat().st_mtime_ns
        for p in store.rglob("*.safetensors")
        if not any(part.startswith(".") for part in p.relative_to(store).parts)
    }


@pytest.fixture(scope="module")
def compat_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compat") / "compat_v1"
    shutil.copytree(DATA, root)
    assert relocate_mlflow_store(root / "mlflow.db", OLD_ROOT, str(root)) >= 7
    return root


@pytest.mark.parametrize("task", ["frame", "clip"])
def test_old_model_and_store_label_like_before(prefect_api, compat_copy: Path, task: str) -> None:
    root = compat_copy
    store = root / "store"
    before = store_entries(store)
    out = root / "out" / task
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    result = CliRunner().invoke(
        app,
        ["label", str(root / "videos" / task), "--model", f"models:/compat-{task}@candidate",
         "--out", str(out), "-c", str(root / f"{task}.yaml"),
         "--set", f"features.store={store}", "--set", f"tracking.uri={tracking}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    with open(out / "summary.csv") as handle:
        rows = handle.read().splitlines()[1:]
    videos = sorted(p.name for p in (root / "videos" / task).iterdir())
    assert len(rows) == len(videos) and all(",ok," in row for row in rows), rows

    old_docs = sorted((root / "labels" / task).glob("*.labels.json"))
    assert [p.name for p in old_docs] == [Path(v).stem + ".labels.json" for v in videos]
    for old_file in old_docs:
        old = json.loads(old_file.read_text())
        new = json.loads((out / old_file.name).read_text())
        assert new["model"]["version"] == "1" and new["model"]["run_id"] == old["model"]["run_id"]
        assert new["model"]["extractor"]["key"] == EXTRACTOR_KEY
        for field in PER_RUN_FIELDS:
            old.pop(field), new.pop(field)
        assert same_labels(new, old) == [], old_file.name

    assert store_entries(store) == before  # every feature reused: nothing new, nothing rewritten
    assert sorted(p.name for p in store.iterdir() if not p.name.startswith(".")) == [EXTRACTOR_KEY]
