"""OTLP trace requests, protobuf or JSON, read into plain :class:`Span` objects (no I/O, no framework).

Both encodings of an ``ExportTraceServiceRequest`` give the same spans: ids as lowercase hex, times
in nanoseconds since 1970, attribute values as plain JSON values (``AnyValue`` unwrapped; bytes as
base64, non-finite doubles as ``None``). Protobuf is parsed by the official ``opentelemetry-proto``
package (``pip install 'inferlog[otlp]'``); JSON follows the OTLP JSON mapping (hex ids, lowerCamelCase
names, 64-bit integers as strings; snake_case names are read too).

A body that is not such a request at all raises :class:`RecordInvalid` (the route answers 400). One
span that cannot be read — an id of the wrong length or all zeros, a value nested too deep — is set
aside with its reason in :attr:`Decoded.rejected`, and the other spans of the request go on: OTLP's
partial success.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec

from inferlog.errors import ProtobufMissing, RecordInvalid, SpanInvalid

MAX_VALUE_DEPTH = 48
"""How deep an attribute value may nest (arrays / key-value lists): well inside a record's 64 levels."""

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
_KIND_NAMES = {f"SPAN_KIND_{name.upper()}": name for name in SPAN_KINDS}
_STATUS_NAMES = {f"STATUS_CODE_{name.upper()}": name for name in STATUS_CODES}


@dataclass(frozen=True, slots=True)
class Event:
    """A span event: a name, a time, attributes (GenAI messages, exceptions, stream markers ...)."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Span:
    """One span as the mapping reads it, whatever encoding it came in."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_id: str | None  # None for a root span
    name: str
    kind: str  # one of SPAN_KINDS
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: tuple[Event, ...] = ()
    status: str = "unset"  # one of STATUS_CODES
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    scope_version: str = ""


@dataclass
class Decoded:
    """The spans of a request, and one reason per span that could not be read."""

    spans: list[Span] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


# -- ids ----------------------------------------------------------------------------------------


def hex_id(raw: str | bytes, size: int, what: str) -> str:
    """An id as lowercase hex of ``size`` bytes; SpanInvalid if it is not one (or is all zeros)."""
    text = _hex(raw, what)
    if len(text) != 2 * size:
        raise SpanInvalid(f"{what} must be {size} bytes ({2 * size} hex digits), got {len(text) / 2:g}")
    if text == "0" * (2 * size):
        raise SpanInvalid(f"{what} is all zeros, which OTLP forbids")
    return text


def parent_hex_id(raw: str | bytes) -> str | None:
    """A parent span id, or None for a root span (empty, or all zeros as some exporters send)."""
    text = _hex(raw, "parentSpanId")
    if not text or text == "0" * 16:
        return None
    return hex_id(text, 8, "parentSpanId")


def _hex(raw: str | bytes, what: str) -> str:
    if isinstance(raw, bytes):
        return raw.hex()
    text = raw.lower()
    if len(text) % 2 or any(c not in "0123456789abcdef" for c in text):
        raise SpanInvalid(f"{what} {raw[:64]!r} is not hex")
    return text


# -- protobuf -----------------------------------------------------------------------------------


@cache
def _request_class() -> Any:
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        raise ProtobufMissing(
            "reading OTLP protobuf needs the opentelemetry-proto package: pip install 'inferlog[otlp]' "
            "(or send OTLP JSON: Content-Type: application/json)"
        ) from None
    return ExportTraceServiceRequest


def decode_protobuf(body: bytes) -> Decoded:
    """An ``ExportTraceServiceRequest`` in protobuf; RecordInvalid if the bytes are not one."""
    request = _request_class()()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, and RecursionError/ValueError on some inputs
        raise RecordInvalid(f"not an OTLP ExportTraceServiceRequest in protobuf: {exc}") from None
    out = Decoded()
    for resource_spans in request.resource_spans:
        try:
            resource = _pb_attributes(resource_spans.resource.attributes)
        except SpanInvalid as exc:
            out.rejected += [f"resource: {exc}"] * sum(len(s.spans) for s in resource_spans.scope_spans)
            continue
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                try:
                    out.spans.append(_pb_span(span, resource, scope.name, scope.version))
                except SpanInvalid as exc:
                    out.rejected.append(f"span {span.name[:100]!r}: {exc}")
    return out


def _pb_span(span: Any, resource: dict[str, Any], scope: str, scope_version: str) -> Span:
    return Span(
        trace_id=hex_id(span.trace_id, 16, "traceId"),
        span_id=hex_id(span.span_id, 8, "spanId"),
        parent_id=parent_hex_id(span.parent_span_id),
        name=span.name,
        kind=SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "unspecified",
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=_pb_attributes(span.attributes),
        events=tuple(
            Event(event.name, event.time_unix_nano, _pb_attributes(event.attributes)) for event in span.events
        ),
        status=STATUS_CODES[span.status.code] if 0 <= span.status.code < len(STATUS_CODES) else "unset",
        status_message=span.status.message,
        resource=resource,
        scope=scope,
        scope_version=scope_version,
    )


def _pb_attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _pb_value(pair.value, MAX_VALUE_DEPTH) for pair in pairs}


def _pb_value(value: Any, budget: int) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value" or which == "kvlist_value":
        if budget <= 0:
            raise SpanInvalid(f"an attribute value nests deeper than {MAX_VALUE_DEPTH} levels")
        if which == "array_value":
            return [_pb_value(item, budget - 1) for item in value.array_value.values]
        return {pair.key: _pb_value(pair.value, budget - 1) for pair in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which == "double_value":
        return _finite(value.double_value)
    return getattr(value, which)


def _finite(number: float) -> float | None:
    return number if math.isfinite(number) else None


# -- JSON ---------------------------------------------------------------------------------------


def decode_json(body: bytes) -> Decoded:
    """An ``ExportTraceServiceRequest`` in OTLP JSON; RecordInvalid if the bytes are not one."""
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise RecordInvalid(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RecordInvalid("an OTLP JSON request is an object with resourceSpans")
    out = Decoded()
    for resource_spans in _list(data, "resourceSpans", "resource_spans"):
        resource_obj = _get(_obj(resource_spans), "resource") or {}
        scopes = [
            _obj(scope_spans)
            for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans")
            or _list(resource_spans, "instrumentationLibrarySpans", "instrumentation_library_spans")
        ]
        try:
            resource = _json_attributes(_obj(resource_obj))
        except SpanInvalid as exc:
            out.rejected += [f"resource: {exc}"] * sum(len(_list(s, "spans")) for s in scopes)
            continue
        for scope_spans in scopes:
            scope = _obj(
                _get(scope_spans, "scope", "instrumentationLibrary", "instrumentation_library") or {}
            )
            for span in _list(scope_spans, "spans"):
                try:
                    out.spans.append(_json_span(span, resource, _str(scope, "name"), _str(scope, "version")))
                except SpanInvalid as exc:
                    name = span.get("name") if isinstance(span, dict) else None
                    label = f"span {name[:100]!r}" if isinstance(name, str) else "a span"
                    out.rejected.append(f"{label}: {exc}")
    return out


def _get(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordInvalid(f"expected a JSON object, got {type(value).__name__}")
    return value


def _list(obj: Any, *names: str) -> list[Any]:
    value = _get(_obj(obj), *names)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordInvalid(f"{names[0]} must be a JSON array, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], *names: str) -> str:
    value = _get(obj, *names)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SpanInvalid(f"{names[0]} must be a string, got {type(value).__name__}")
    return value


def _int(obj: Mapping[str, Any], *names: str) -> int:
    value = _get(obj, *names)
    if value is None:
        return 0
    number = _integer(value, names[0])
    if not 0 <= number < 2**64:
        raise SpanInvalid(f"{names[0]} is out of the range of a fixed64")
    return number


_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def _integer(value: Any, what: str) -> int:
    """A JSON integer, or its decimal string in ASCII digits only (not "1_000", " 7" or other scripts' digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    raise SpanInvalid(f"{what} must be an integer (or its decimal string), got {str(value)[:40]!r}")


def _enum(obj: Mapping[str, Any], name: str, values: tuple[str, ...], names: dict[str, str]) -> str:
    raw = obj.get(name)
    if raw is None:
        return values[0]
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(values):
        return values[raw]
    if isinstance(raw, str) and raw in names:
        return names[raw]
    raise SpanInvalid(f"{name} {raw!r} is not a known value"[:200])


def _json_span(raw: Any, resource: dict[str, Any], scope: str, scope_version: str) -> Span:
    if not isinstance(raw, dict):
        raise SpanInvalid(f"a span must be a JSON object, got {type(raw).__name__}")
    trace_id = hex_id(_str(raw, "traceId", "trace_id"), 16, "traceId")
    span_id = hex_id(_str(raw, "spanId", "span_id"), 8, "spanId")
    status = _get(raw, "status") or {}
    if not isinstance(status, dict):
        raise SpanInvalid("status must be an object")
    events = []
    for event in _json_items(raw, "events"):
        events.append(
            Event(_str(event, "name"), _int(event, "timeUnixNano", "time_unix_nano"), _json_attributes(event))
        )
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_hex_id(_str(raw, "parentSpanId", "parent_span_id")),
        name=_str(raw, "name"),
        kind=_enum(raw, "kind", SPAN_KINDS, _KIND_NAMES),
        start_ns=_int(raw, "startTimeUnixNano", "start_time_unix_nano"),
        end_ns=_int(raw, "endTimeUnixNano", "end_time_unix_nano"),
        attributes=_json_attributes(raw),
        events=tuple(events),
        status=_enum(status, "code", STATUS_CODES, _STATUS_NAMES),
        status_message=_str(status, "message"),
        resource=resource,
        scope=scope,
        scope_version=scope_version,
    )


def _json_items(obj: Mapping[str, Any], name: str) -> Iterator[dict[str, Any]]:
    value = obj.get(name)
    if value is None:
        return
    if not isinstance(value, list):
        raise SpanInvalid(f"{name} must be an array")
    for item in value:
        if not isinstance(item, dict):
            raise SpanInvalid(f"each of {name} must be an object")
        yield item


def _json_attributes(obj: Mapping[str, Any]) -> dict[str, Any]:
    return _json_pairs(obj.get("attributes"), MAX_VALUE_DEPTH)


def _json_pairs(pairs: Any, budget: int) -> dict[str, Any]:
    if pairs is None:
        return {}
    if not isinstance(pairs, list):
        raise SpanInvalid("attributes must be an array of {key, value}")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise SpanInvalid("each attribute must be an object with a string key")
        out[pair["key"]] = _json_value(pair.get("value"), budget)
    return out


_SCALAR_KEYS = {
    "stringValue": str,
    "string_value": str,
    "boolValue": bool,
    "bool_value": bool,
}


def _json_value(value: Any, budget: int) -> Any:
    """An OTLP JSON ``AnyValue`` as a plain value."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise SpanInvalid("an attribute value must be an AnyValue object with exactly one field")
    ((key, inner),) = value.items()
    expected = _SCALAR_KEYS.get(key)
    if expected is not None:
        if type(inner) is not expected:
            raise SpanInvalid(f"{key} must be a {expected.__name__}")
        return inner
    if key in ("intValue", "int_value"):
        return _json_int64(inner)
    if key in ("doubleValue", "double_value"):
        return _json_double(inner)
    if key in ("bytesValue", "bytes_value"):
        if not isinstance(inner, str):
            raise SpanInvalid("bytesValue must be a base64 string")
        try:
            base64.b64decode(inner, validate=True)
        except (binascii.Error, ValueError):
            raise SpanInvalid("bytesValue is not base64") from None
        return inner
    if budget <= 0:
        raise SpanInvalid(f"an attribute value nests deeper than {MAX_VALUE_DEPTH} levels")
    if key in ("arrayValue", "array_value"):
        items = _obj_or_invalid(inner, key).get("values") or []
        if not isinstance(items, list):
            raise SpanInvalid("arrayValue.values must be an array")
        return [_json_value(item, budget - 1) for item in items]
    if key in ("kvlistValue", "kvlist_value"):
        return _json_pairs(_obj_or_invalid(inner, key).get("values") or [], budget - 1)
    raise SpanInvalid(f"{key!r} is not an AnyValue field"[:200])


def _obj_or_invalid(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpanInvalid(f"{what} must be an object")
    return value


def _json_int64(inner: Any) -> int:
    number = _integer(inner, "intValue")
    if not -(2**63) <= number < 2**63:
        raise SpanInvalid("intValue is out of the range of an int64")
    return number


def _json_double(inner: Any) -> float | None:
    if isinstance(inner, bool):
        raise SpanInvalid("doubleValue must be a number")
    if isinstance(inner, int | float):
        return _finite(float(inner))
    if inner in ("NaN", "Infinity", "-Infinity"):  # the proto3 JSON spelling of non-finite doubles
        return None
    if isinstance(inner, str):
        try:
            return _finite(float(inner))
        except ValueError:
            pass
    raise SpanInvalid("doubleValue must be a number")
