"""Turning what a person types (``--since 1h``, ``--attr region=eu``) into a :class:`Query`."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from inferlog.errors import BadParameter, UsageError
from inferlog.store.base import Query

_AGO = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Options a face may pass that are copied onto the Query unchanged.
_PLAIN = (
    "system", "kind", "model", "version", "status", "request_id", "trace_id", "session_id",
    "subject", "inference_id",
)  # fmt: skip


def parse_since(text: str, *, now: dt.datetime | None = None, name: str = "since") -> dt.datetime:
    """A point in time from ``"90s"``, ``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` (that long ago) or ISO-8601.

    ISO times without a zone are taken as UTC, the only zone inferlog keeps; a bare date is its
    midnight. Anything else, and any time that is not between 0001-01-01 and 9999-12-31 in UTC, is a
    :class:`BadParameter` naming ``name`` that shows the accepted forms.
    """
    ago = _AGO.match(text)
    if ago:
        try:
            delta = dt.timedelta(**{_UNITS[ago.group("unit")]: float(ago.group("amount"))})
            return (now or dt.datetime.now(dt.UTC)) - delta
        except OverflowError:
            raise BadParameter(f"{text!r} reaches back before the year 1", field=name) from None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadParameter(
            f"cannot read {text!r} as a time: write a duration ago like 30m, 1h, 7d "
            "or an ISO-8601 time like 2026-01-31T12:00:00Z",
            field=name,
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise BadParameter(f"{text!r} is outside the years 1 to 9999 in UTC", field=name) from None


def parse_attribute(text: str) -> tuple[str, str | int | float | bool]:
    """``key=value`` to a filter pair. Numbers and true/false match JSON numbers and booleans;
    ``key='"3"'`` (a JSON string) matches the string ``"3"``; anything else is a plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise BadParameter(f"attribute filter {text!r} must look like key=value", field="attr")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    if isinstance(value, bool | int | float | str):
        return key, value
    return key, raw


def parse_attributes(items: Iterable[str]) -> dict[str, str | int | float | bool]:
    """Several ``key=value`` filters; a key given twice is a :class:`BadParameter`."""
    out: dict[str, str | int | float | bool] = {}
    for item in items:
        key, value = parse_attribute(item)
        if key in out:
            raise BadParameter(f"attribute {key!r} is filtered twice", field="attr")
        out[key] = value
    return out


def build_query(
    *,
    since: str | dt.datetime | None = None,
    until: str | dt.datetime | None = None,
    attr: Iterable[str] = (),
    cursor: int | None = None,
    limit: int | None = None,
    order: str | None = None,
    now: dt.datetime | None = None,
    **options: Any,
) -> Query:
    """A :class:`Query` from command-line style options; ``None`` means "not filtered".

    ``since``/``until`` take what :func:`parse_since` reads, ``attr`` ``key=value`` strings,
    ``cursor`` is the seq to continue after. Unknown options are a :class:`UsageError`.
    """
    unknown = sorted(set(options) - set(_PLAIN))
    if unknown:
        raise UsageError(f"unknown query option(s): {', '.join(unknown)}")
    fields: dict[str, Any] = {name: options[name] for name in _PLAIN if options.get(name) is not None}
    for name, value in (("since", since), ("until", until)):
        if isinstance(value, str):
            fields[name] = parse_since(value, now=now, name=name)
        elif value is not None:
            fields[name] = value
    if "since" in fields and "until" in fields and fields["since"] >= fields["until"]:
        raise UsageError("--since must be before --until")
    fields["attributes"] = parse_attributes(attr)
    if cursor is not None:
        fields["after"] = cursor
    if limit is not None:
        fields["limit"] = limit
    if order is not None:
        fields["order"] = order
    return Query(**fields)
