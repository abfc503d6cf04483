"""The @candidate alias moved by hand: promote, rollback and their history, in a real store."""

from __future__ import annotations

import pytest

from tests.helpers_registry import register, temp_registry

NAME = "promo"


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory):
    """Versions 1, 2, 3 of ``promo``, all @challenger-only when registered."""
    root = tmp_path_factory.mktemp("registry")
    with temp_registry(root) as uri:
        for seed in (1, 2, 3):
            register(root / f"v{seed}", NAME, seed, test_accuracy=seed / 10)
        yield uri


def _candidate() -> str | None:
    from pipeline.tracking.registry import alias_info

    found = alias_info(NAME, "candidate")
    return found.version if found else None


@pytest.mark.slow
def test_promote_and_rollback_walk_the_candidate_history(three_versions) -> None:
    from pipeline.tracking.mlflow import TrackingError
    from pipeline.tracking.registry import move_candidate, rollback_candidate

    assert _candidate() is None
    assert move_candidate(NAME, "1") is None
    assert move_candidate(NAME, "3") == "1"
    assert move_candidate(NAME, "2") == "3"
    assert rollback_candidate(NAME) == ("2", "3")
    assert _candidate() == "3"
    assert rollback_candidate(NAME) == ("3", "1")
    with pytest.raises(TrackingError, match="nothing to roll back to"):
        rollback_candidate(NAME)
    assert _candidate() == "1"


@pytest.mark.slow
def test_versions_list_newest_first_with_aliases_and_metrics(three_versions) -> None:
    from pipeline.tracking.registry import move_candidate, registered_versions

    move_candidate(NAME, "2")
    versions = registered_versions(NAME)
    assert [v.version for v in versions] == ["3", "2", "1"]
    assert versions[0].aliases == ["challenger"]  # the alias moved with each registration
    assert "candidate" in versions[1].aliases
    assert [v.metrics["test_accuracy"] for v in versions] == pytest.approx([0.3, 0.2, 0.1])


@pytest.mark.slow
def test_unknown_models_and_versions_name_the_store(three_versions) -> None:
    from pipeline.tracking.mlflow import TrackingError
    from pipeline.tracking.registry import move_candidate, registered_versions

    with pytest.raises(TrackingError, match="no version 9.*tracking store: sqlite:///"):
        move_candidate(NAME, "9")
    with pytest.raises(TrackingError, match=f"'nope' not found.*{three_versions}"):
        registered_versions("nope")
