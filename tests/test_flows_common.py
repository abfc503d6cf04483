"""flows/common.py: the retry rule, and a finished task's record (a failed one included)."""

from __future__ import annotations

import pytest


class _FailedState:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (FileNotFoundError(2, "No such file or directory"), False),
        (IsADirectoryError(21, "Is a directory"), False),
        (NotADirectoryError(20, "Not a directory"), False),
        (PermissionError(13, "Permission denied"), False),
        (ValueError("bad"), False),
        (OSError(5, "Input/output error"), True),
        (TimeoutError("network storage"), True),
    ],
)
def test_only_transient_io_errors_are_retried(error: BaseException, retried: bool) -> None:
    from flows.common import transient

    assert transient(None, None, _FailedState(error)) is retried
