"""UUIDv7 identifiers (RFC 9562): time-ordered, so ids sort roughly by creation and index well.

Made by the producer, not the store: the id is the idempotency key that lets a retried delivery
land exactly once. Generation sits on the SDK's hot path, so randomness is drawn from ``os.urandom``
in 4 KiB batches rather than one system call per id.
"""

from __future__ import annotations

import os
import re
import threading
import time

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_lock = threading.Lock()
_pool = b""
_offset = 0
_BATCH = 4096
_RAND_BYTES = 10


def _random10() -> bytes:
    global _pool, _offset
    with _lock:
        if _offset + _RAND_BYTES > len(_pool):
            _pool = os.urandom(_BATCH)
            _offset = 0
        chunk = _pool[_offset : _offset + _RAND_BYTES]
        _offset += _RAND_BYTES
    return chunk


def _reset_after_fork() -> None:
    # A forked child must not hand out the same random bytes as its parent.
    global _pool, _offset
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)


def uuid7(unix_ms: int | None = None) -> str:
    """A new UUIDv7 as a lowercase hyphenated string."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(_random10(), "big")
    rand_a = (rand >> 64) & 0x0FFF
    rand_b = rand & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def is_uuid(text: str) -> bool:
    """True for a lowercase hyphenated UUID string (any version): the form ids are stored in."""
    return _UUID_RE.match(text) is not None
