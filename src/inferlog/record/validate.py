"""Turning untrusted input (JSON bytes, dicts from HTTP, import files) into entries, or refusing it.

Every refusal is a :class:`RecordInvalid` whose message names the field and the reason, e.g.
``field `model.name`: Expected `str`, got `int```.

Values nest at most :data:`MAX_DEPTH` arrays/objects deep (see docs/data-dictionary.md). The limit is
checked where a value enters (``record()``, every HTTP route and sink, imports) and again by the
pipeline, so a record that could never be decoded, canonicalized or stored is refused at the door
instead of poisoning the spool or a sink's pending file behind it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.record.canonical import format_timestamp
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry, Model
from inferlog.record.periods import check_period
from inferlog.record.schema import stamped

MAX_DEPTH = 64
"""How many arrays/objects a field's value may nest (the field's own object or array counts)."""

# The fields whose values are free-form JSON, per entry type (everything else is typed and shallow).
_FREE_FORM = (
    "input",
    "output",
    "parameters",
    "attributes",
    "label",
    "outcome",
    "override",
    "query",
    "details",
)
SCALAR_TYPES = _SCALARS = frozenset({str, int, float, bool, type(None)})
_chain = chain.from_iterable
# Produced by the pipeline or an export, never by a producer; dropped from what a client sends.
_ASSIGNED = ("seq", "logged_at", "purged")

_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>[^`]+)`")

_json_decoder = msgspec.json.Decoder(Entry)


def _invalid(
    exc: msgspec.ValidationError, index: int | None = None, under: str | None = None
) -> RecordInvalid:
    """msgspec's refusal as a RecordInvalid naming the field (``under.`` the path when given)."""
    match = _AT_PATH.match(str(exc))
    reason = match.group("reason") if match else str(exc)
    path = (match.group("path") if match else None) or "$"
    field = path[2:] if path.startswith("$.") else ("" if path == "$" else path[1:])
    for pattern, says in ((_MISSING, "is required"), (_UNKNOWN, "is not a field of this entry kind")):
        named = pattern.match(reason)
        if named:
            name = named.group("name")
            field = f"{field}.{name}" if field else name
            reason = says
    if under is not None:
        field = f"{under}.{field}" if field else under
    return RecordInvalid(reason, field=field or None, index=index)


def check_model(name: Any, version: Any) -> None:
    """A (name, version) as a record's model holds it, and as PostgreSQL can keep it: the one check
    of a model that a registration or a schema names (records will carry it)."""
    try:
        msgspec.convert({"name": name, "version": version}, Model)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    for field, value in (("name", name), ("version", version)):
        if not value:
            raise RecordInvalid("must not be empty", field=field)
        if "\x00" in value:
            raise RecordInvalid("must not contain U+0000 (NUL)", field=field)


def too_deep(value: Any, budget: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``budget`` arrays/objects (a scalar nests none).

    Cheap on the common shapes: a container of scalars is checked by one C-level pass over the types
    of its items; only containers holding containers are descended into, never past ``budget``
    (so a cycle, or a list nested a million deep, costs at most ``budget`` levels).
    """
    kind = type(value)
    if kind in _SCALARS:
        return False
    children: Iterable[Any]
    if kind is dict:
        children = value.values()
    elif kind is list or kind is tuple:
        children = value
    elif isinstance(value, Mapping):
        children = value.values()
    elif isinstance(value, list | tuple):
        children = value
    else:  # an array-like (numpy) nests its dimensions; anything else is the encoder's business
        ndim = getattr(value, "ndim", None)
        return type(ndim) is int and ndim > budget
    if budget <= 0:
        return True
    if _SCALARS.issuperset(map(type, children)):
        return False
    return any(too_deep(child, budget - 1) for child in children)


def shallow(*values: Any) -> bool:
    """Whether every value is a scalar, or a dict (with string keys) or list of scalars only: the common
    case, checked in one C-level pass over the types of all their items and keys (``record()``'s fast
    path before :func:`too_deep` and :func:`non_string_key`)."""
    items: list[Iterable[Any]] = []
    keys: list[Iterable[Any]] = []
    for value in values:
        kind = type(value)
        if kind is dict:
            items.append(value.values())
            keys.append(value.keys())
        elif kind is list:
            items.append(value)
        elif kind not in _SCALARS:
            return False
    return _SCALARS.issuperset(map(type, _chain(items))) and _STRINGS.issuperset(map(type, _chain(keys)))


_STRINGS = frozenset({str})


def non_string_key(value: Any) -> RecordInvalid | None:
    """The refusal of the first object key in ``value`` that is not a string (JSON keys are strings).

    An encoder for the spool takes ``{0: 0.1, 1: 0.9}``; no store can keep it as JSON, so it is refused
    where it enters rather than acknowledged and dead-lettered later. Call after :func:`too_deep`
    (the walk is not bounded by itself).
    """
    if isinstance(value, Mapping):
        for key, child in value.items():
            if not isinstance(key, str):  # a str subclass (numpy's str_) encodes as a string
                return RecordInvalid(
                    f"has an object key of type {type(key).__name__}; JSON object keys are strings"
                )
            if type(child) not in _SCALARS and (found := non_string_key(child)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for child in value:
            if type(child) not in _SCALARS and (found := non_string_key(child)) is not None:
                return found
    return None


def check_storable(values: Mapping[str, Any], index: int | None = None) -> None:
    """Refuse the first of ``values`` (field name -> value) nested past the limit or with a non-string key."""
    check_depth(values, index)
    for field, value in values.items():
        if type(value) not in _SCALARS and (found := non_string_key(value)) is not None:
            raise RecordInvalid(found.reason, field=field, index=index)


def deeper_than_allowed(field: str, index: int | None = None) -> RecordInvalid:
    """The one refusal for a value nested past :data:`MAX_DEPTH`."""
    return RecordInvalid(
        f"is nested deeper than {MAX_DEPTH} arrays/objects, the limit", field=field, index=index
    )


def check_depth(values: Mapping[str, Any], index: int | None = None) -> None:
    """Refuse the first of ``values`` (field name -> value) nested past :data:`MAX_DEPTH`."""
    for field, value in values.items():
        if type(value) not in _SCALARS and too_deep(value):
            raise deeper_than_allowed(field, index)


def check_finite(value: Any) -> None:
    """Refuse a number JSON cannot carry (infinity, NaN), where a parser made one from ``1e400``.

    Only for values parsed from JSON text: the SDK's NaN (a missing feature) is kept as ``null`` by
    the canonical form, as documented; JSON text has no NaN, so one found here came from overflow.
    """
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise RecordInvalid("is a number out of range (JSON numbers must fit a 64-bit float)")
    elif kind is dict or kind is list:
        for child in value.values() if kind is dict else value:
            if type(child) in (float, dict, list):
                check_finite(child)


def check_entry(entry: Entry, index: int | None = None) -> Entry:
    """What a typed entry can still hold that no store could keep: values nested too deep, a time
    that is not a time once in UTC. Refused here, by field, rather than found by the store later."""
    check_depth({name: getattr(entry, name, None) for name in _FREE_FORM}, index)
    biometric = getattr(entry, "biometric", None)
    if (
        biometric is not None and type(biometric.match) not in _SCALARS
    ):  # the one free-form value nested in a typed one
        check_storable({"biometric.match": biometric.match}, index)
    try:
        format_timestamp(entry.ts)
    except RecordInvalid as exc:
        raise RecordInvalid(exc.reason, field="ts", index=index) from None
    check_period(entry, index)
    return stamped(entry, index)


def decode_json(data: bytes | str, what: str = "body", index: int | None = None) -> Any:
    """JSON text as Python values; too deep for the parser is a refusal naming the limit, not a crash."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        if str(exc).startswith("Number out of range"):
            raise _out_of_range(data, index) from None
        raise RecordInvalid(f"{what} is not valid JSON ({exc})", index=index) from None
    except RecursionError:
        raise RecordInvalid(
            f"{what} is nested deeper than {MAX_DEPTH} arrays/objects, the limit", index=index
        ) from None


class _OutOfRange:
    """Stands in for a number literal too large for a float, so its path can be found."""


def _keep_out_of_range(text: str) -> Any:
    number = float(text)
    return number if math.isfinite(number) else _OutOfRange()


_marking_decoder = msgspec.json.Decoder(float_hook=_keep_out_of_range)


def _out_of_range(data: bytes | str, index: int | None) -> RecordInvalid:
    """The refusal of a number no float can hold (``1e400``), naming where it is (error path only)."""
    try:
        steps = _path_to(_marking_decoder.decode(data), _OutOfRange) or []
    except (msgspec.DecodeError, RecursionError):  # too deep to locate: refused all the same
        steps = []
    if index is None and steps and isinstance(steps[0], int):
        index = int(steps.pop(0))
    field = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps).lstrip(".")
    return RecordInvalid(
        "is a number out of range (JSON numbers must fit a 64-bit float)", field=field or None, index=index
    )


def _path_to(value: Any, kind: type) -> list[str | int] | None:
    if isinstance(value, kind):
        return []
    items: Iterable[tuple[str | int, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for step, child in items:
        found = _path_to(child, kind)
        if found is not None:
            return [step, *found]
    return None


def decode_entry(data: bytes) -> Entry:
    """Decode and validate one entry from JSON bytes (the spool, NDJSON bodies)."""
    try:
        entry: Entry = _json_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except msgspec.DecodeError as exc:
        raise RecordInvalid(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise RecordInvalid(f"is nested deeper than {MAX_DEPTH} arrays/objects, the limit") from None
    return check_entry(entry)


LONE_SURROGATE = (
    "holds a lone surrogate (U+D800..U+DFFF), which is not valid Unicode and JSON cannot carry; "
    "decode bytes with errors='replace'"
)


def encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate), i.e. can be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checked(entry: Entry) -> Entry:
    """An entry built in code from request values, validated exactly as any later read will decode it.

    Structs are not validated when built: an over-long system or purpose stored in an access or admin
    entry would make every later read of the trail fail. Refused here, it fails the one request (422).
    """
    try:
        checked_entry: Entry = _json_decoder.decode(msgspec.json.encode(entry))
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except UnicodeEncodeError:  # e.g. a purpose typed on a terminal whose bytes are not UTF-8
        raise RecordInvalid(LONE_SURROGATE, field=_first_unencodable(entry)) from None
    return checked_entry


def _first_unencodable(entry: Entry) -> str | None:
    for name in entry.__struct_fields__:
        try:
            msgspec.json.encode(getattr(entry, name))
        except UnicodeEncodeError:
            return name
    return None


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
    for drop in _ASSIGNED:  # assigned by the store; present in exports we re-import
        obj.pop(drop, None)
    try:
        entry: Entry = msgspec.convert(obj, Entry)
    except msgspec.ValidationError as exc:
        raise _invalid(exc, index) from None
    except RecursionError:
        raise RecordInvalid(
            f"is nested deeper than {MAX_DEPTH} arrays/objects, the limit", index=index
        ) from None
    return check_entry(entry, index)
