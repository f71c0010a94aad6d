"""Canonical bytes for entries: RFC 8785 JSON Canonicalization Scheme (JCS).

The ledger hashes exactly the bytes stored, and the store keeps them verbatim, so these bytes are
produced once, at ingest, and never again. Determinism is what matters; RFC 8785 is the standard
way to get it: object keys sorted by UTF-16 code units, no whitespace, strings with minimal escaping,
numbers in the ECMAScript ``Number.prototype.toString`` form.

Two documented extensions, so that no record is ever refused for a value ML code produces routinely:
integers outside the IEEE-754 safe range (±2**53) are written with all their digits (a 64-bit id in
``attributes`` survives exactly), and the non-finite floats JSON cannot carry (a missing feature is
often NaN) are written as ``null``, as ECMAScript's ``JSON.stringify`` does. For every other value the
output is byte-identical to the reference implementation (tests check it with hypothesis).

Speed: :func:`canonical_json` encodes with msgspec (C, keys sorted) and repairs, in the few places
they differ, msgspec's spelling of numbers to ECMAScript's; values it cannot vouch for (a character
outside the BMP anywhere, which could change key order) take the exact pure-Python path.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from typing import Any

import msgspec

from inferlog.errors import RecordInvalid

_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible value.

    Datetimes are written as UTC RFC 3339 strings with microseconds (``2026-01-02T03:04:05.000006Z``).
    Raises :class:`RecordInvalid` for values JSON cannot carry (lone surrogates, non-string keys,
    other types); NaN and infinities become strings (see above).
    """
    parts: list[str] = []
    _write(value, parts.append)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordInvalid("string contains a lone surrogate, which JSON cannot carry") from exc


def format_timestamp(value: dt.datetime) -> str:
    """UTC, ``Z`` suffix, microseconds when not zero: one spelling per instant, so bytes are stable."""
    if value.tzinfo is None:
        raise RecordInvalid("timestamp has no timezone; inferlog keeps UTC, timezone-aware times")
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:
        raise RecordInvalid("timestamp is out of range once converted to UTC") from None
    # Not strftime: glibc writes year 999 as "999", which is not RFC 3339. The spelling is msgspec's
    # (fraction only when there is one), so the fast and the exact encoders agree.
    fraction = f".{value.microsecond:06d}" if value.microsecond else ""
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{fraction}Z"
    )


def format_number(value: float) -> str:
    """ECMAScript ``Number.prototype.toString`` for a finite float."""
    if not math.isfinite(value):
        raise RecordInvalid(f"number {value!r} is not allowed in JSON")
    if value == 0:
        return "0"  # also -0.0, as ECMAScript does
    # Both Python's repr and ECMAScript pick the shortest digits that round-trip; they differ only
    # in where they switch to exponent form and how they spell the exponent.
    text = repr(value)
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text)
    if exponent >= 21 or exponent < -6:
        return f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "")
    if exponent > 0:  # 1e16 <= |x| < 1e21: digits, then zeros
        return f"{sign}{digits}{'0' * (exponent - len(digits) + 1)}"
    return f"{sign}0.{'0' * (-exponent - 1)}{digits}"  # 1e-7 <= |x| < 1e-4


def _sort_key_utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: Callable[[str], None]) -> None:
    kind = type(value)
    if kind is str:
        out(_encode_string(value))
    elif kind is float:
        out(format_number(value) if value - value == 0 else "null")
    elif kind is dict:
        keys = list(value)
        try:
            ascii_keys = all(key.isascii() for key in keys)
        except AttributeError:
            bad = next(key for key in keys if type(key) is not str)
            raise RecordInvalid(f"object key {bad!r} is not a string") from None
        if ascii_keys:
            keys.sort()
        else:
            keys.sort(key=_sort_key_utf16)
        out("{")
        first = True
        for key in keys:
            if type(key) is not str:
                raise RecordInvalid(f"object key {key!r} is not a string")
            if not first:
                out(",")
            first = False
            out(_encode_string(key))
            out(":")
            try:
                _write(value[key], out)
            except RecordInvalid as exc:
                raise _nested(exc, key) from None
        out("}")
    elif kind is list or kind is tuple:
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            try:
                _write(item, out)
            except RecordInvalid as exc:
                raise _nested(exc, f"[{index}]") from None
        out("]")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif value is None:
        out("null")
    elif kind is int:
        out(str(value))
    elif isinstance(value, dt.datetime):
        # Aware: UTC with "Z". Naive (user data only; entry times are always aware): as msgspec writes it.
        text = format_timestamp(value) if value.tzinfo is not None else value.isoformat()
        out(_encode_string(text))
    elif isinstance(value, bool | int | float | str | dict | list | tuple):
        # Subclasses (IntEnum, OrderedDict, numpy float64 ...) are written as their plain base type.
        _write(_plain(value), out)
    else:
        raise RecordInvalid(f"value of type {kind.__name__} is not JSON")


def _nested(exc: RecordInvalid, step: str) -> RecordInvalid:
    """Prefix the JSON path of a nested error, so the message names where the bad value is."""
    inner = exc.field or ""
    field = step + ("." + inner if inner and not inner.startswith("[") else inner)
    return RecordInvalid(exc.reason, field=field)


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return dict(value)
    return list(value)


_encoder = msgspec.json.Encoder(order="sorted")
# Where msgspec's output may differ from RFC 8785: integral floats ("52000.0", "-0.0"), exponent
# forms (msgspec's thresholds differ: it writes "1e16" and "4.1e-6" where ECMAScript writes plain
# digits, and "1e21" where ECMAScript writes "1e+21"), and characters outside the BMP
# (4-byte UTF-8), which sort differently in UTF-16. Everything else it writes exactly as RFC 8785 does
# (strings, escapes, ints, key order). The checks are literal-led regexes (fast scans); text inside a
# string that happens to match only sends the value down the repair path, which leaves strings alone.
# A number always ends at ',', ']', '}' or the end of the text, hence the lookaheads.
_INTEGRAL = re.compile(rb"\.0(?![^,\]}])")  # "52000.0" -> "52000": ECMAScript has the same digits
_NEGATIVE_ZERO = re.compile(rb"-0\.0(?![^,\]}])")  # "-0.0" -> "0"
# An exponent that ECMAScript spells otherwise: a positive one (1e16 <= |x| < 1e21 is written in
# plain digits, above with "e+") or -1 to -6 (plain digits). Below 1e-6 both write "d.ddde-N" with
# the same shortest digits, so a float tensor of tiny probabilities needs no repair.
_EXPONENT = re.compile(rb"e(?:\+?\d+|-0*[0-6])(?![^,\]}])")
_ASTRAL = re.compile(rb"[\xf0-\xf4]")
# msgspec keeps a datetime's own UTC offset ("...:05+02:00"); RFC 3339 in UTC ("Z") is our spelling.
_OFFSET = re.compile(rb':\d\d(?:\.\d+)?[+-]\d\d:\d\d"')
_STRINGS = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")')  # unrolled: ~3x faster than (?:[^"\\]|\\.)*
_MANTISSA_CHARS = frozenset(b"0123456789.-")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of anything msgspec can encode (Structs included), fast; same bytes as
    ``canonicalize(msgspec.to_builtins(value))``."""
    try:
        out = _encoder.encode(value)
    except (TypeError, OverflowError, ValueError, UnicodeEncodeError):
        return canonicalize(msgspec.to_builtins(value, builtin_types=(dt.datetime,)))
    if not out.isascii() and _ASTRAL.search(out) is not None:
        return canonicalize(msgspec.to_builtins(value, builtin_types=(dt.datetime,)))
    # _OFFSET is led by ":", which every key is followed by; the two literal-led scans for the end
    # of an offset ("+02:00\"") are several times cheaper and rule it out in the common case.
    if (_PLUS_OFFSET.search(out) is not None or _MINUS_OFFSET.search(out) is not None) and _OFFSET.search(
        out
    ) is not None:
        return canonicalize(msgspec.to_builtins(value, builtin_types=(dt.datetime,)))
    if _INTEGRAL.search(out) is not None or _EXPONENT.search(out) is not None:
        return _repair_numbers(out)
    return out


def canonical_json_without_floats(value: Any, ts: dt.datetime) -> bytes:
    """:func:`canonical_json` of a value that holds no float and no datetime but ``ts`` (a leaf).

    msgspec writes such a value exactly as RFC 8785 does when ``ts`` is in UTC and no character lies
    outside the BMP (all ASCII): no number to respell, no offset; matches of the number patterns
    could only lie inside strings, which a repair leaves alone. Else the general path decides.
    """
    if ts.tzinfo is dt.UTC:
        out = _encoder.encode(value)
        if out.isascii():
            return out
    return canonical_json(value)


_PLUS_OFFSET = re.compile(rb'\+\d\d:\d\d"')
_MINUS_OFFSET = re.compile(rb'-\d\d:\d\d"')


def _repair_numbers(out: bytes) -> bytes:
    """Respell msgspec's numbers the ECMAScript way, outside strings only, with no per-number Python
    work for integral floats.

    Why this shape: a tensor of integral floats (iris data: ``5.0``, ``3.0``) has hundreds of numbers
    to repair, and per-number Python work (a callback, or locating each match relative to the string
    literals) cost microseconds each and dominated ingest. So the text is split once into its string
    literals (odd parts, kept verbatim: ``"a:3.0,"`` or ``"\\"1.0]"`` is never touched) and the rest
    (even parts, which hold no quote at all). With no backslash in the text every quote delimits a
    string, and a plain ``bytes.split`` on quotes does this ~4x faster than the regex.

    The even parts, joined with ``""``, make a skeleton: the JSON text with every string emptied,
    where each ``.`` and each ``e`` followed by digits belongs to a number. It is repaired whole by
    literal-replacement ``re.sub`` calls, which run entirely in C, then split back at the ``""`` it
    still holds (the repairs neither add nor remove a quote). Only the exponent forms that differ,
    rare in ML data, are respelled one at a time by :func:`format_number`.
    """
    if b"\\" in out:  # an escape, maybe of a quote: the regex finds the string literals
        parts, glue = _STRINGS.split(out), b""
    else:  # every quote opens or closes a string; odd parts are the strings' contents
        parts, glue = out.split(b'"'), b'"'
    skeleton = b'""'.join(parts[0::2])
    skeleton = _INTEGRAL.sub(b"", _NEGATIVE_ZERO.sub(b"0", skeleton))
    if _EXPONENT.search(skeleton) is not None:
        skeleton = _respell_exponents(skeleton)
    parts[0::2] = skeleton.split(b'""')
    return glue.join(parts)


def _respell_exponents(skeleton: bytes) -> bytes:
    """Each number written with an exponent ECMAScript would spell otherwise, respelled.

    The regex finds the exponent (a literal-led scan); the mantissa is found by stepping back from it,
    which a regex could only do by trying every position of the text.
    """
    pieces: list[bytes] = []
    last = 0
    for match in _EXPONENT.finditer(skeleton):
        start = match.start()
        while start > 0 and skeleton[start - 1] in _MANTISSA_CHARS:
            start -= 1
        pieces.append(skeleton[last:start])
        pieces.append(format_number(float(skeleton[start : match.end()])).encode("ascii"))
        last = match.end()
    pieces.append(skeleton[last:])
    return b"".join(pieces)
