"""Hive-style partition folders (``system=credit/date=2026-03-04``): names every lake engine reads.

A value is escaped the way Hive and Spark escape it (``%`` and two upper-case hex digits for ``/``,
``=``, ``%``, ``:``, quotes, ``#``, ``*``, ``?``, ``\\``, ``{``, ``[``, ``]``, ``^`` and control
characters; everything else, non-ASCII letters included, kept as it is), because that is the one
escaping Spark, DuckDB and ``pyarrow.dataset`` all undo. A missing value is Hive's
``__HIVE_DEFAULT_PARTITION__``, which all three read back as null.

Two values cannot be written as they are, and are *marked* instead: one whose folder name would pass
:data:`NAME_MAX` bytes (a file system refuses it, and the lake would be stuck at that entry), and the
text ``__HIVE_DEFAULT_PARTITION__`` itself (no escaping of it reads back as text in every engine:
``pyarrow`` unescapes before it compares, and would read null). A marked value is the longest prefix
that fits, ``~``, and the first 16 hex digits of the SHA-256 of the whole value (UTF-8): distinct
values stay in distinct folders, and the mark says which value it stands for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence

NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"
"""The folder name of a missing value (a feedback entry has no model)."""

NAME_MAX = 255
"""The longest file or folder name, in bytes, on the file systems a lake lives on (ext4, xfs, APFS)."""

_ESCAPED = frozenset("\"#%'*/:=?\\{[]^\x7f") | frozenset(chr(code) for code in range(0x20))
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def escape(value: str) -> str:
    """``value`` as one path segment: the characters Hive escapes as ``%XX``, the rest unchanged."""
    return "".join(f"%{ord(char):02X}" if char in _ESCAPED else char for char in value)


def unescape(segment: str) -> str:
    """The value an escaped segment stands for (what the engines read back)."""
    return _ESCAPE.sub(lambda found: chr(int(found.group(1), 16)), segment)


def segment(key: str, value: str | None) -> str:
    """``key=value`` for one partition level, the value escaped, or marked (see above) when it must be."""
    if value is None:
        return f"{key}={NULL_VALUE}"
    text = f"{key}={escape(value)}"
    if value != NULL_VALUE and len(text.encode("utf-8")) <= NAME_MAX:
        return text
    return f"{key}={escape(marked(key, value))}"


MARK_DIGITS = 16


def marked(key: str, value: str) -> str:
    """The value a partition folder holds for a ``value`` too long for one, or equal to Hive's null marker."""
    suffix = "~" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:MARK_DIGITS]
    room = NAME_MAX - len(f"{key}=".encode()) - len(suffix)
    prefix = ""
    used = 0
    for char in value[:NAME_MAX]:
        size = len(escape(char).encode("utf-8", "surrogatepass"))
        if used + size > room:
            break
        prefix += char
        used += size
    return prefix + suffix


def partition_path(keys: Sequence[str], values: Sequence[str | None]) -> str:
    """The relative folder of one partition, ``system=S/date=D``, in the order the keys were given."""
    return "/".join(segment(key, value) for key, value in zip(keys, values, strict=True))


def date_of(ts: dt.datetime) -> str:
    """The ``date`` partition of an entry: the UTC calendar day of its ``ts``, ``YYYY-MM-DD``."""
    return ts.astimezone(dt.UTC).date().isoformat()
