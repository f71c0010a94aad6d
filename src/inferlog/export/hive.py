"""Hive-style partition folders (``system=credit/date=2026-03-04``): names every lake engine reads.

A value is escaped the way Hive and Spark escape it (``%`` and two upper-case hex digits for ``/``,
``=``, ``%``, ``:``, quotes, ``#``, ``*``, ``?``, ``\\``, ``{``, ``[``, ``]``, ``^`` and control
characters; everything else, non-ASCII letters included, kept as it is), because that is the one
escaping Spark, DuckDB and ``pyarrow.dataset`` all undo. A missing value is Hive's
``__HIVE_DEFAULT_PARTITION__``, which all three read back as null.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from inferlog.errors import UsageError

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
    """``key=value`` for one partition level; a name too long for a folder is a :class:`UsageError`."""
    text = f"{key}={NULL_VALUE if value is None else escape(value)}"
    size = len(text.encode("utf-8"))
    if size > NAME_MAX:
        raise UsageError(
            f"the {key} {value!r} makes a partition folder name of {size} bytes ({NAME_MAX} is the most a "
            f"file system takes): partition by fewer keys, without {key}"
        )
    return text


def partition_path(keys: Sequence[str], values: Sequence[str | None]) -> str:
    """The relative folder of one partition, ``system=S/date=D``, in the order the keys were given."""
    return "/".join(segment(key, value) for key, value in zip(keys, values, strict=True))


def date_of(ts: dt.datetime) -> str:
    """The ``date`` partition of an entry: the UTC calendar day of its ``ts``, ``YYYY-MM-DD``."""
    return ts.astimezone(dt.UTC).date().isoformat()
