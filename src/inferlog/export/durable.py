"""Files that are either whole or absent after a crash: write beside, fsync, rename, fsync the folder.

A rename is atomic on POSIX file systems, but only durable once the folder holding the new name is
synced; a folder made on the way is only durable once its parent is. These helpers do both, so the
lake's commit order (data files first, the cursor after) holds across a power cut, not just a kill.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from inferlog.errors import UsageError


def sync_folder(path: Path) -> None:
    """Make the names in ``path`` (renames, new files, deletions) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folders(root: Path, relative: str) -> Path:
    """``root/relative``, creating each missing level and syncing the parent that gained it."""
    path = root
    for part in Path(relative).parts:
        child = path / part
        if not child.is_dir():
            child.mkdir(exist_ok=True)
            sync_folder(path)
        path = child
    return path


@contextlib.contextmanager
def replacing(path: Path, temporary: Path) -> Iterator[IO[bytes]]:
    """A stream to ``temporary`` that becomes ``path`` (synced) only if the block ends without error."""
    try:
        with temporary.open("wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        sync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, whole or not at all."""
    with replacing(path, path.with_name(f".{path.name}.{os.getpid()}.tmp")) as stream:
        stream.write(data)


@contextlib.contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) or refuse at once: one writer per dataset.

    The kernel drops the lock when the process dies, however it dies, so a killed export never
    leaves a dataset locked.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another export is writing to {what} right now: wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)
