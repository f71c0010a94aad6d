"""Candidate replacements for inferlog's two hottest pure-Python pieces, measured by the benchmarks.

Nothing in ``src/`` uses these. They exist so that docs/benchmarks.md can show, in the same run,
what the proposed changes would cost; ``run.py`` also checks the canonical candidate byte for byte
against ``inferlog.record.canonical.canonicalize`` on every record it times.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time

import msgspec

from inferlog.record.canonical import canonicalize
from inferlog.record.model import Entry

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class PrefixCachedUuid7:
    """UUIDv7 with the 13 time characters formatted once per millisecond and the 74 random bits
    taken as hex characters from a 4 KiB ``os.urandom`` pool (same entropy source as today)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = -1
        self._prefix = ""
        self._pool = ""
        self._offset = 0

    def __call__(self) -> str:
        ms = time.time_ns() // 1_000_000
        with self._lock:
            if ms != self._ms:
                h = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
                self._prefix = f"{h[:8]}-{h[8:]}-7"
                self._ms = ms
            offset = self._offset
            if offset + 19 > len(self._pool):
                self._pool = os.urandom(4096).hex()
                offset = 0
            self._offset = offset + 19
            prefix, rand = self._prefix, self._pool[offset : offset + 19]
        return f"{prefix}{rand[:3]}-{_VARIANT[rand[3]]}{rand[4:7]}-{rand[7:]}"


# msgspec's sorted JSON equals RFC 8785 except for: floats it spells differently (integral values
# "3.0", exponent forms, -0.0), NaN/Infinity (it writes null), datetimes with no microseconds or a
# non-UTC offset, and key order when keys hold characters above U+FFFF (UTF-16 vs code points).
# msgspec writes no whitespace, so a number always follows ":", "," or "[". The output is mapped to
# byte classes with one C-speed ``bytes.translate`` and searched there; a false alarm inside a string
# only costs time (the exact path). Integral floats are fixed by deleting their ".0" where the quote
# count says it is outside every string.
_ENCODER = msgspec.json.Encoder(order="sorted")


def _class_table() -> bytes:
    table = bytearray(b"x" * 256)
    for chars, cls in (
        (b"0123456789", b"0"),
        (b".", b"."),
        (b"-", b"-"),
        (b"eE", b"e"),
        (b":,[", b"p"),
        (b"]}", b"c"),
        (b'"', b"q"),
        (b"+", b"-"),
        (b"n", b"n"),
        (b"u", b"u"),
        (b"l", b"l"),
    ):
        for ch in chars:
            table[ch] = cls[0]
    return bytes(table)  # fmt: skip


_CLASSES = _class_table()
# In class space: "p" = , : [   "c" = ] }   "q" = "   "-" = - +   "0" = any digit. Suspect: a number
# in exponent form, null (None, NaN or Infinity), a time with a UTC offset ("...:05+01:00").
_SUSPECT = re.compile(rb"p(?:-?[0.]+e|null(?=[pc]))")
_OFFSET_HINT = b"-00p00q"  # the end of "+01:00" in class space; checked exactly on the raw bytes
_OFFSET_TIME = re.compile(rb"[0-9]:[0-9]{2}(?:\.[0-9]+)?[+-][0-9]{2}:[0-9]{2}\"")
_NEGATIVE_ZERO = re.compile(rb"[:,\[]-0\.0[,\]}]")
_INTEGRAL = re.compile(rb"p-?0+(\.0)(?=[pc])")
_ASTRAL = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


def fast_canonical_body(entry: Entry) -> bytes:
    """The RFC 8785 body of an entry: msgspec in C when provably identical, else the exact path."""
    try:
        out = _ENCODER.encode(entry)
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError):
        return _exact(entry)  # let the exact path raise its precise RecordInvalid
    ts = entry.ts
    if (
        ts.microsecond == 0
        or ts.utcoffset()
        or out.count(b'Z"') != 1  # another datetime-like string may be nested in the data
        or (not out.isascii() and any(lead in out for lead in _ASTRAL))
    ):
        return _exact(entry)
    classes = out.translate(_CLASSES)
    if (
        _SUSPECT.search(classes) is not None
        or (b"-0.0" in out and _NEGATIVE_ZERO.search(out) is not None)
        or (_OFFSET_HINT in classes and _OFFSET_TIME.search(out) is not None)
    ):
        return _exact(entry)
    # The class "0" is any digit: keep only the ".0" whose digit really is a zero.
    dots = [m.start(1) for m in _INTEGRAL.finditer(classes) if out[m.start(1) + 1] == 0x30]
    if dots:
        if b"\\" in out:  # escaped quotes would break the quote count below
            return _exact(entry)
        pieces, last = [], 0
        for dot in dots:
            if out.count(b'"', 0, dot) % 2 == 0:  # outside every string: a number
                pieces.append(out[last:dot])
                last = dot + 2
        pieces.append(out[last:])
        out = b"".join(pieces)
    return out


def _exact(entry: Entry) -> bytes:
    return canonicalize(msgspec.to_builtins(entry, builtin_types=(dt.datetime,)))
