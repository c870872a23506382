"""An exclusive file lock shared by every process on the machine (fcntl: Linux, macOS)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _acquire(path: Path, timeout_s: float | None) -> IO[str] | None:
    """Open and lock ``path``; None when it is held and ``timeout_s`` is None (a non-blocking attempt)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            if deadline is None:
                return None
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f}s for the lock {path}; if no process holds it, delete it")
            time.sleep(0.05)
            continue
        if _still_at(path, handle):
            return handle
        handle.close()  # the file was deleted while we waited (`pepperpy plugins clean`): lock the new one


def _still_at(path: Path, handle: IO[str]) -> bool:
    try:
        named, opened = os.stat(path), os.fstat(handle.fileno())
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


@contextmanager
def file_lock(path: Path, timeout_s: float) -> Iterator[int]:
    """An exclusive lock on ``path`` shared by every process on the machine.

    Yields the locked file descriptor: a child process started with it (``pass_fds``) keeps the
    lock held until the child exits too, even when this process dies first.
    """
    handle = _acquire(path, timeout_s)
    assert handle is not None
    with handle:  # closing releases the lock (once no child holds the descriptor either)
        yield handle.fileno()


@contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Take the lock on ``path`` only if no process holds it now: yields True while held, False otherwise."""
    handle = _acquire(path, None)
    if handle is None:
        yield False
        return
    with handle:
        yield True


__all__ = ["file_lock", "try_lock"]
