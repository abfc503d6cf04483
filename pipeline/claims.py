"""Per-item claims across processes and machines, so concurrent runs never repeat work.

Two runs over the same folder and store (two schedules firing together, two users, Dask
workers of different runs) each check "already done?", then *claim* the item with an
exclusive ``flock`` on a small lock file beside the output, check again, and only then work.
The second run waits for the first to finish that item and then finds it done, so nothing is
computed twice. ``flock`` is released by the kernel when a process dies, so a killed run never
leaves a stale claim (Linux NFSv4 maps ``flock`` to byte-range locks that work across clients).
Lock files are a few bytes and are left in place: deleting one while another process holds or
opens it would let two processes lock different files of the same name.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent runs there may repeat work, not corrupt
    fcntl = None  # type: ignore[assignment]


class ClaimTimeout(TimeoutError):
    """Another process held the claim for longer than the wait allowed."""


@contextlib.contextmanager
def claim(lock_path: str | Path, wait_s: float = 6 * 3600, poll_s: float = 0.1) -> Iterator[None]:
    """Hold the exclusive claim on ``lock_path`` for the block; wait while another holds it."""
    lock_path = Path(lock_path)
    if fcntl is None:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, lock_path, wait_s, poll_s)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, lock_path: Path, wait_s: float, poll_s: float) -> None:
    # Polling with LOCK_NB rather than a blocking flock keeps the wait interruptible.
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                message = f"{lock_path} is held by another run for over {wait_s:.0f} s"
                raise ClaimTimeout(message) from None
            time.sleep(poll_s)


def lock_path_for(output: str | Path) -> Path:
    """The lock file that guards ``output``: ``<folder>/.locks/<name>.lock``."""
    output = Path(output)
    return output.parent / ".locks" / f"{output.name}.lock"
