"""File helpers: atomic writes, the one reader of users' text files, content hashes.

Atomic writes go to a temp file in the same folder, fsync, then ``os.replace``: readers (and a
re-run after a kill) see the old file or the new one, never half of one. The file gets the mode
a plain ``open(path, "w")`` would give it (``0o666`` less the umask), not the ``0o600`` of
``mkstemp``, so a shared store or output folder stays readable by others.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pipeline.errors import UserError

_HASH_BLOCK = 1 << 20


def _umask_from_proc() -> int | None:
    """The process umask from ``/proc/self/status`` (Linux >= 4.7), or None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_at_import() -> int:
    # Set-and-restore is process-global, so it runs once here (import time), never per write.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_from_proc()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_at_import()


def current_umask() -> int:
    """The umask now when the OS tells it without changing it, else the one at import."""
    mask = _umask_from_proc()
    return _UMASK_AT_IMPORT if mask is None else mask


def default_file_mode() -> int:
    """What ``open(path, "w")`` would create: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):  # not on Windows, where the mode bits mean little
                os.fchmod(handle.fileno(), default_file_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8, newlines written as given (no platform translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


class UserTextError(UserError):
    """A user's text file that cannot be read or is not UTF-8; ``line`` is None for a read
    failure."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path, self.problem, self.line = Path(path), problem, line
        super().__init__(f"{path}: {problem}")


def read_user_text(path: Path, what: str, error: type[Exception] | None = None) -> str:
    """A user's text file (config, manifest, schedules, label files): UTF-8, a leading BOM
    dropped.

    Undecodable bytes or a read failure become one error naming the file, the byte and line
    (or the OS reason), never a traceback: ``error(message)`` when given, else a
    :class:`UserTextError` that also carries the problem and line apart.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem = f"cannot read {what} ({exc.strerror or exc})"
        raise _text_error(UserTextError(path, problem), error) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = (
            f"{what} is not UTF-8 text: byte {exc.start} (line {line}) is "
            f"0x{data[exc.start]:02x}; save it as UTF-8"
        )
        raise _text_error(UserTextError(path, problem, line), error) from None


def _text_error(located: UserTextError, error: type[Exception] | None) -> Exception:
    return located if error is None else error(str(located))


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's content (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
