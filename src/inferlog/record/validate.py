"""Turning untrusted input (JSON bytes, dicts from HTTP, import files) into entries, or refusing it.

Every refusal is a :class:`RecordInvalid` whose message names the field and the reason, e.g.
``field `model.name`: Expected `str`, got `int```.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry

_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")

_json_decoder = msgspec.json.Decoder(Entry)


def _invalid(exc: msgspec.ValidationError, index: int | None = None) -> RecordInvalid:
    match = _AT_PATH.match(str(exc))
    reason = match.group("reason") if match else str(exc)
    path = (match.group("path") if match else None) or "$"
    field = path[2:] if path.startswith("$.") else ("" if path == "$" else path[1:])
    missing = _MISSING.match(reason)
    if missing:
        name = missing.group("name")
        field = f"{field}.{name}" if field else name
        reason = "is required"
    return RecordInvalid(reason, field=field or None, index=index)


def decode_entry(data: bytes) -> Entry:
    """Decode and validate one entry from JSON bytes (the spool, NDJSON bodies)."""
    try:
        entry: Entry = _json_decoder.decode(data)
        return entry
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except msgspec.DecodeError as exc:
        raise RecordInvalid(f"not valid JSON ({exc})") from None


def checked(entry: Entry) -> Entry:
    """An entry built in code from request values, validated exactly as any later read will decode it.

    Structs are not validated when built: an over-long system or purpose stored in an access or admin
    entry would make every later read of the trail fail. Refused here, it fails the one request (422).
    """
    try:
        checked_entry: Entry = _json_decoder.decode(msgspec.json.encode(entry))
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    return checked_entry


def to_entry(
    data: Mapping[str, Any],
    *,
    system: str | None = None,
    source: str | None = None,
    index: int | None = None,
) -> Entry:
    """Validate a mapping as an entry, filling what a producer may leave out.

    ``kind`` defaults to ``inference``; ``id`` to a fresh UUIDv7 (send your own to make retries
    idempotent); ``ts`` to now; ``system`` and ``source`` to the given defaults.
    """
    if not isinstance(data, Mapping):
        raise RecordInvalid(f"expected a JSON object, got {type(data).__name__}", index=index)
    obj = dict(data)
    obj.setdefault("kind", "inference")
    obj.setdefault("id", uuid7())
    obj.setdefault("ts", dt.datetime.now(dt.UTC))
    if system is not None:
        obj.setdefault("system", system)
    if source is not None and obj["kind"] == "inference":
        obj.setdefault("source", source)
    for drop in ("seq", "logged_at"):  # assigned by the store; present in exports we re-import
        obj.pop(drop, None)
    try:
        entry: Entry = msgspec.convert(obj, Entry)
    except msgspec.ValidationError as exc:
        raise _invalid(exc, index) from None
    return entry
