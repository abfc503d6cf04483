"""The cluster (tests/cluster/cluster.py) once per module; skipped with the reason where network
namespaces cannot be made (not root, no iproute2, no permission)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster, running_cluster
from tests.cluster.netns import unavailable_reason


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    if reason := unavailable_reason():
        pytest.skip(f"cluster tests: {reason}")
    with running_cluster(tmp_path_factory.mktemp("cluster") / "shared") as running:
        yield running
