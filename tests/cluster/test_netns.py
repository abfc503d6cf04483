"""Where the cluster tests skip: the reason names what is missing (fast: nothing is built)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.cluster import netns


def test_without_root_the_reason_says_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns.unavailable_reason() == "needs root (ip netns add)"


def test_without_iproute2_the_reason_says_iproute2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert netns.unavailable_reason() == "needs iproute2 (`ip`)"
