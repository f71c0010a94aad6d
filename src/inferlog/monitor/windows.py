"""Time buckets: which rollups cover a window, and the bucket names the faces use. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from inferlog.errors import BadParameter

Bucket = Literal["minute", "hour", "day"]
WIDTHS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}
LEVELS = (86400, 3600, 60)  # coarsest first
FIRST = 0  # 1970-01-01
LAST = 7_258_118_400  # 2200-01-01


def seconds(t: dt.datetime) -> int:
    """Whole seconds since the epoch (a window's ends are taken to the minute: see :func:`cover`)."""
    if t.tzinfo is None:
        raise BadParameter("must be timezone-aware (UTC)", field="since/until")
    return int(t.timestamp())


def at(seconds_: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds_, dt.UTC)


def floor(value: int, width: int) -> int:
    return value - value % width


def ceil(value: int, width: int) -> int:
    return -(-value // width) * width


def cover(since: int, until: int) -> list[tuple[int, int]]:
    """``(level, bucket)`` pieces that tile the minutes of ``[since, until)``, coarsest possible.

    A window holds the minute buckets whose start lies in it: ``since`` is rounded up and ``until``
    up to whole minutes (so "the last 15 minutes" at 12:07:30 is 11:53 to 12:08, the current minute
    included). Days and hours are used where they fit whole, so a month is ~30 rows, not 43,200.
    """
    # Nothing is logged before 1970 or after 2200 (a day piece each would make a huge list of them).
    t, end = ceil(max(since, FIRST), 60), ceil(min(until, LAST), 60)
    pieces: list[tuple[int, int]] = []
    while t < end:
        for width in LEVELS:
            if t % width == 0 and t + width <= end:
                pieces.append((width, t))
                t += width
                break
    return pieces


def runs(pieces: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """``(level, first, end)``: the pieces of :func:`cover` as contiguous runs of one level each.

    One range query per run, so the minutes at the two edges of a month are two small reads, not one
    read of every minute in between.
    """
    found: list[tuple[int, int, int]] = []
    for level, bucket in pieces:
        if found and found[-1][0] == level and found[-1][2] == bucket:
            found[-1] = (level, found[-1][1], bucket + level)
        else:
            found.append((level, bucket, bucket + level))
    return found


def width_of(bucket: str) -> int:
    try:
        return WIDTHS[bucket]
    except KeyError:
        raise BadParameter(f"must be one of {', '.join(WIDTHS)}, got {bucket!r}", field="bucket") from None
