"""The spool: a framed, checksummed, memory-mapped write-ahead file that makes ``record()`` durable.

Layout: one spool root holds one *writer directory* per live process (``w-<pid>-<random>``), locked
with ``flock`` while its owner lives. A writer directory holds numbered *segments* of fixed size, each
preallocated (so a full disk fails at creation, not as a SIGBUS on a page fault) and mapped into
memory. A record is a frame ``u32 length | u32 crc32 | payload``; a zero length marks the end.

Appending a frame is a copy into the mapping under a lock: no system call, no fsync. The bytes are
then in the operating system's page cache, so SIGKILL or an OOM kill of the process loses nothing.
A *committer* thread fdatasyncs them on a short cadence (group commit); a caller that asked for
``machine`` durability waits for the sync that covers its frame.

A writer directory whose lock can be taken belongs to a dead process: it is *adopted* and replayed.
Replay stops at the first frame whose length or checksum is wrong — the torn tail a crash leaves —
and counts it. Delivery is at-least-once; the store deduplicates by id.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import mmap
import os
import secrets
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inferlog.errors import NotDurable, RecordInvalid, SpoolFull, UsageError

log = logging.getLogger("inferlog.spool")

FRAME = struct.Struct("<II")
SEGMENT_MAGIC = b"INFLSPL1"
SEGMENT_HEADER = struct.Struct("<8sQ")  # magic, segment number
DATA_START = SEGMENT_HEADER.size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:012d}.seg"


def _segment_numbers(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob("*.seg") if p.stem.isdigit())


@dataclass
class Cursor:
    """Where delivery stands in one writer directory: everything before it is in the store."""

    segment: int
    offset: int

    def save(self, directory: Path) -> None:
        # No fsync: losing a cursor update only means re-sending what the store will deduplicate.
        tmp = directory / "cursor.tmp"
        tmp.write_text(json.dumps({"segment": self.segment, "offset": self.offset}))
        os.replace(tmp, directory / "cursor")

    @classmethod
    def load(cls, directory: Path, first_segment: int) -> Cursor:
        try:
            data = json.loads((directory / "cursor").read_text())
            return cls(int(data["segment"]), int(data["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(first_segment, DATA_START)


def read_frames(
    buf: mmap.mmap | bytes, offset: int, limit: int, max_records: int
) -> tuple[list[bytes], int, bool]:
    """Read whole frames from ``offset`` up to ``limit``.

    Returns the payloads, the offset after the last good frame, and whether the data ended there
    (a zero length or a torn frame; the caller tells which by ``limit``).
    """
    payloads: list[bytes] = []
    unpack = FRAME.unpack_from
    while len(payloads) < max_records and offset + FRAME.size <= limit:
        length, crc = unpack(buf, offset)
        end = offset + FRAME.size + length
        if length == 0 or end > limit:
            return payloads, offset, True
        payload = bytes(buf[offset + FRAME.size : end])
        if zlib.crc32(payload) != crc:
            return payloads, offset, True
        payloads.append(payload)
        offset = end
    return payloads, offset, offset + FRAME.size > limit


class _Segment:
    """One mapped segment file."""

    def __init__(self, path: Path, number: int, size: int, *, create: bool) -> None:
        self.path = path
        self.number = number
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.posix_fallocate(self.fd, 0, size)
            self.size = os.fstat(self.fd).st_size
            self.mm = mmap.mmap(self.fd, self.size)
            if create:
                SEGMENT_HEADER.pack_into(self.mm, 0, SEGMENT_MAGIC, number)
                os.fsync(self.fd)  # writes back the mapped header page too
            elif SEGMENT_HEADER.unpack_from(self.mm, 0)[0] != SEGMENT_MAGIC:
                raise OSError(f"{path} is not an inferlog spool segment")
        except BaseException:
            os.close(self.fd)
            raise
        self.synced = DATA_START

    def close(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self.mm.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


class SpoolWriter:
    """This process's writer directory: appends frames, syncs them, hands them to the shipper."""

    def __init__(self, root: Path, *, segment_bytes: int, max_bytes: int, block_timeout: float) -> None:
        if segment_bytes < 64 * 1024:
            raise UsageError("spool segments must be at least 64 KiB")
        self.root = root
        self.segment_bytes = segment_bytes
        self.max_segments = max(2, max_bytes // segment_bytes)
        self.block_timeout = block_timeout
        root.mkdir(parents=True, exist_ok=True)
        # Made under a name orphan scans skip, locked, then renamed: another process's scan must never
        # see this directory unlocked (it would adopt it as a dead process's and remove it).
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        staging = root / f".new-{name}"
        staging.mkdir()
        self._lock_fd = os.open(staging / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.directory = root / f"w-{name}"
        staging.rename(self.directory)
        _fsync_dir(root)
        self._lock = threading.Lock()
        self._dir_lock = threading.Lock()  # recreating a deleted writer directory
        self._space = threading.Condition(self._lock)
        self._synced_cond = threading.Condition()
        self._io_lock = threading.Lock()  # held while syncing or closing segment files
        self._segments: dict[int, _Segment] = {}
        self._spare: _Segment | None = None
        self._spare_retry_at = 0.0
        self._current = self._new_segment(1)
        self._offset = DATA_START
        self.head = (1, DATA_START)  # (segment, offset) just past the last whole frame
        self.appended = 0  # frames appended, ever
        self.synced = 0  # frames known to be synced to disk
        self._broken: str | None = None
        self._closed = False

    # -- the caller's path ----------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Copy one frame into the mapping; returns its ticket for :meth:`wait_synced`."""
        need = FRAME.size + len(payload)
        if need > self.segment_bytes - DATA_START:
            raise RecordInvalid(
                f"record of {len(payload)} bytes is larger than a spool segment "
                f"({self.segment_bytes} bytes); raise spool_segment_bytes"
            )
        crc = zlib.crc32(payload)
        with self._lock:
            if self._broken or self._closed:
                raise NotDurable(self._broken or "the log is closed")
            offset = self._offset
            if offset + need > self.segment_bytes:
                self._rotate()
                offset = DATA_START
            mm = self._current.mm
            mm[offset + FRAME.size : offset + need] = payload
            FRAME.pack_into(mm, offset, len(payload), crc)  # header last: a torn frame fails its checks
            self._offset = offset + need
            self.head = (self._current.number, self._offset)
            self.appended += 1
            return self.appended

    def has_room(self) -> bool:
        """Whether an append now would not wait for the shipper: a free segment is left even if it
        rotates (what a caller on an event loop asks before recording inline, not in a thread)."""
        return not (self._broken or self._closed) and len(self._segments) < self.max_segments - 1

    def _rotate(self) -> None:
        deadline = time.monotonic() + self.block_timeout
        while len(self._segments) >= self.max_segments:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                raise SpoolFull(
                    f"spool {self.directory} is full ({len(self._segments)} segments of "
                    f"{self.segment_bytes} bytes) and did not drain within {self.block_timeout}s: "
                    "the store is not keeping up or is unreachable"
                )
            self._space.wait(remaining)
        number = self._current.number + 1
        spare, self._spare = self._spare, None
        if spare is not None and spare.number == number:
            self._segments[number] = spare
            self._current = spare
        else:
            if spare is not None:
                spare.close()
            self._current = self._new_segment(number)
        self._offset = DATA_START

    def _ensure_directory(self) -> None:
        """Recreate the writer directory (and retake its lock) if it was deleted while in use.

        Someone cleaning up a "temporary" folder under a running process must not turn every later
        record into a drop. Frames in the deleted segments are still mapped, so the shipper delivers
        them; only a crash before it does would lose them, which the error logged here says once.
        """
        if self.directory.is_dir():
            return
        with self._dir_lock:
            if self.directory.is_dir():
                return
            log.error(
                "spool folder %s was deleted while in use; recreating it (records already spooled are "
                "delivered from memory, but would be lost if this process crashed before that)",
                self.directory,
            )
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # else another process would adopt it
            old, self._lock_fd = self._lock_fd, lock_fd
            with contextlib.suppress(OSError):
                os.close(old)
            _fsync_dir(self.directory.parent)

    def _new_segment(self, number: int) -> _Segment:
        try:
            self._ensure_directory()
            segment = _Segment(_segment_path(self.directory, number), number, self.segment_bytes, create=True)
            _fsync_dir(self.directory)
        except OSError as exc:
            # Not "broken": nothing written was lost, and the next append tries again.
            raise NotDurable(f"cannot create a spool segment in {self.directory}: {exc}") from exc
        self._segments[number] = segment
        return segment

    # -- the committer ------------------------------------------------------------------------

    def sync(self) -> None:
        """fdatasync every segment with unsynced frames (group commit). Never retried on failure.

        fdatasync rather than msync: Linux tracks pages dirtied through a shared mapping, so it writes
        them back all the same, and unlike ``mmap.flush`` it releases the GIL while it waits, so the
        callers' ``record()`` keeps running during the group commit.
        """
        with self._lock:
            target, head = self.appended, self.head
        with self._io_lock:  # segments are not closed while we sync them
            with self._lock:
                segments = [s for n, s in sorted(self._segments.items()) if n <= head[0]]
            try:
                for segment in segments:
                    end = head[1] if segment.number == head[0] else segment.size
                    if segment.synced < end:
                        os.fdatasync(segment.fd)
                        segment.synced = end
            except OSError as exc:
                # fsyncgate: after a failed sync the page cache may already have dropped the data.
                self._broken = f"spool sync failed ({exc}); records after the last sync may be lost"
                log.error(self._broken)
        with self._synced_cond:
            if not self._broken:
                self.synced = max(self.synced, target)
            self._synced_cond.notify_all()

    def wait_synced(self, ticket: int, timeout: float) -> None:
        """Block until the frame with ``ticket`` is synced to disk; raise NotDurable if it cannot be."""
        deadline = time.monotonic() + timeout
        with self._synced_cond:
            while self.synced < ticket:
                if self._broken:
                    raise NotDurable(self._broken)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NotDurable(f"spool sync did not complete within {timeout}s")
                self._synced_cond.wait(remaining)

    def prepare_spare(self) -> None:
        """Create the next segment ahead of need, so rotation does no file I/O on a caller's path.

        The file is made under a temporary name and renamed into place under the lock only if the
        writer has not meanwhile created that segment itself.
        """
        if time.monotonic() < self._spare_retry_at:
            return  # it failed a moment ago (full disk, folder gone): the committer must not spin on it
        with self._lock:
            if self._spare is not None or self._offset < self.segment_bytes // 2 or self._closed:
                return
            number = self._current.number + 1
        temporary = self.directory / f".spare-{number:012d}.tmp"
        try:
            self._ensure_directory()
            spare = _Segment(temporary, number, self.segment_bytes, create=True)
        except OSError as exc:
            log.warning("cannot pre-create spool segment (tried again in 1s): %s", exc)
            self._spare_retry_at = time.monotonic() + 1.0
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        with self._lock:
            if self._spare is None and self._current.number + 1 == number and not self._closed:
                final = _segment_path(self.directory, number)
                try:
                    os.rename(temporary, final)
                    _fsync_dir(self.directory)
                except OSError as exc:
                    log.warning("cannot pre-create spool segment: %s", exc)
                else:
                    spare.path = final
                    self._spare = spare
                    return
        spare.close()
        with contextlib.suppress(OSError):
            temporary.unlink()

    # -- the shipper --------------------------------------------------------------------------

    def read(self, cursor: Cursor, max_records: int) -> tuple[list[bytes], Cursor]:
        """Frames after ``cursor`` (at most ``max_records``) and the cursor after them."""
        segment_no, head_offset = self.head
        segment = self._segments.get(cursor.segment)
        if segment is None:
            return [], cursor
        limit = head_offset if cursor.segment == segment_no else segment.size
        payloads, offset, ended = read_frames(segment.mm, cursor.offset, limit, max_records)
        if cursor.segment < segment_no and ended and not payloads:
            return [], Cursor(cursor.segment + 1, DATA_START)
        return payloads, Cursor(cursor.segment, offset)

    def release_before(self, segment_no: int) -> None:
        """Delete segments wholly delivered (numbers below ``segment_no``), freeing space."""
        with self._lock:
            done = [n for n in self._segments if n < segment_no and n != self._current.number]
            dropped = [self._segments.pop(n) for n in done]
            if dropped:
                self._space.notify_all()
        with self._io_lock:
            for segment in dropped:
                segment.close()
                with contextlib.suppress(OSError):
                    segment.path.unlink()

    def pending_bytes(self) -> int:
        return len(self._segments) * self.segment_bytes

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self, *, delivered: bool) -> None:
        """Unmap and unlock; remove the directory only if everything in it was delivered."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._space.notify_all()
            segments = list(self._segments.values())
            if self._spare is not None:
                segments.append(self._spare)
        if not self._broken:
            self.sync()
        with self._io_lock:
            for segment in segments:
                segment.close()
        if delivered:
            shutil.rmtree(self.directory, ignore_errors=True)
        os.close(self._lock_fd)

    def abandon_after_fork(self) -> None:
        """In a forked child: let go of the parent's directory without touching its files.

        Once only (the descriptor's number may be reused after), and at the fork itself: a child that
        never records must not keep the parent's folder looking alive after the parent is gone.
        """
        self._closed = True
        fd, self._lock_fd = self._lock_fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class OrphanSpool:
    """A dead process's writer directory, adopted (locked) for replay."""

    def __init__(self, directory: Path, lock_fd: int) -> None:
        self.directory = directory
        self._lock_fd = lock_fd
        numbers = _segment_numbers(directory)
        self.cursor = Cursor.load(directory, numbers[0] if numbers else 1)
        self.torn = 0

    def batches(self, max_records: int) -> Iterator[tuple[list[bytes], Cursor]]:
        """Yield frames with the cursor after them, segment by segment, from the saved cursor."""
        for number in _segment_numbers(self.directory):
            if number < self.cursor.segment:
                continue
            offset = self.cursor.offset if number == self.cursor.segment else DATA_START
            data = _segment_path(self.directory, number).read_bytes()
            if data[: len(SEGMENT_MAGIC)] != SEGMENT_MAGIC:
                log.error("skipping %s: not a spool segment", _segment_path(self.directory, number))
                continue
            while True:
                payloads, offset, ended = read_frames(data, offset, len(data), max_records)
                if payloads:
                    yield payloads, Cursor(number, offset)
                if ended:
                    if offset + FRAME.size <= len(data) and FRAME.unpack_from(data, offset)[0] != 0:
                        self.torn += 1  # a torn tail: cut here
                        log.warning("cut a torn frame in %s at offset %d", number, offset)
                    break

    def ack(self, cursor: Cursor) -> None:
        self.cursor = cursor
        cursor.save(self.directory)

    def finish(self) -> None:
        """Everything was delivered: remove the directory."""
        shutil.rmtree(self.directory, ignore_errors=True)
        os.close(self._lock_fd)

    def release(self) -> None:
        """Give the directory back (delivery did not finish); a later open retries it."""
        os.close(self._lock_fd)


def adopt_orphans(root: Path, own: Path | None = None) -> list[OrphanSpool]:
    """Lock and return every writer directory under ``root`` whose process is gone."""
    orphans: list[OrphanSpool] = []
    if not root.is_dir():
        return orphans
    for directory in sorted(root.glob("w-*")):
        if directory == own or not directory.is_dir():
            continue
        try:
            fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # alive: its owner still holds the lock
            continue
        orphans.append(OrphanSpool(directory, fd))
    return orphans


def undelivered(root: Path) -> list[Path]:
    """Writer directories under ``root`` left by processes that ended with records not yet delivered.

    Read-only: each directory's lock is tried and at once let go (a live owner holds it; a clean
    close removes its directory), so nothing is adopted or replayed here.
    """
    found: list[Path] = []
    if not root.is_dir():
        return found
    for directory in sorted(root.glob("w-*")):
        if not directory.is_dir() or not any(directory.glob("*.seg")):
            continue
        try:
            fd = os.open(directory / "lock", os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            continue  # alive, or being replayed right now
        else:
            found.append(directory)
        finally:
            os.close(fd)
    return found
