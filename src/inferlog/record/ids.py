"""UUIDv7 identifiers (RFC 9562): time-ordered, so ids sort roughly by creation and index well.

Made by the producer, not the store: the id is the idempotency key that lets a retried delivery
land exactly once. Generation sits on the SDK's hot path, so randomness is drawn from ``os.urandom``
in 4 KiB batches rather than one system call per id.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 9562 variant bits 10xx


class _Generator:
    """Formats the 13 time characters once per millisecond; random hex comes from a pooled urandom."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh state and a fresh lock: after a fork, the inherited lock may be held by a parent
        thread that does not exist in the child, and it would never be released."""
        self.lock = threading.Lock()
        self.ms = -1
        self.prefix = ""
        self.pool = ""
        self.offset = 0

    def __call__(self, unix_ms: int | None) -> str:
        ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
        with self.lock:
            if ms != self.ms:
                stamp = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
                self.prefix = f"{stamp[:8]}-{stamp[8:]}-7"
                self.ms = ms
            prefix = self.prefix
            offset = self.offset
            if offset + 19 > len(self.pool):
                self.pool = os.urandom(_BATCH).hex()
                offset = 0
            self.offset = offset + 19
            rand = self.pool[offset : offset + 19]  # 74 random bits used of these 76
        return f"{prefix}{rand[:3]}-{_VARIANT[rand[3]]}{rand[4:7]}-{rand[7:]}"


_BATCH = 4096
_generate = _Generator()

# A forked child must not hand out the same random bytes as its parent, nor wait on its lock.
os.register_at_fork(after_in_child=_generate.reset)


def uuid7(unix_ms: int | None = None) -> str:
    """A new UUIDv7 as a lowercase hyphenated string."""
    return _generate(unix_ms)


def is_uuid(text: str) -> bool:
    """True for a lowercase hyphenated UUID string (any version): the form ids are stored in."""
    return _UUID_RE.match(text) is not None


def uuid8(*parts: str) -> str:
    """A deterministic UUIDv8 named by ``parts`` (sha256 of them, NUL-separated, cut to 128 bits).

    For entries made from messages that may be delivered twice: a redelivery gets the same id, which
    the store then takes as the duplicate it is. Start ``parts`` with a namespace (``"kserve"``).
    """
    return uuid8_of(hashlib.sha256("\x00".join(parts).encode()).digest())


def uuid8_of(digest: bytes) -> str:
    """The UUIDv8 made of a digest's first 128 bits, with the version and variant bits set."""
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (RFC 9562: custom)
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
