"""``POST /v1/traces``: an OTLP/HTTP trace receiver; AI-operation spans become inference records.

Speaks OTLP/HTTP as exporters expect it: protobuf (``application/x-protobuf``) or JSON
(``application/json``) bodies, optionally gzip-compressed; the answer in the request's encoding; an
``ExportTraceServiceResponse`` whose ``partial_success`` counts the spans refused and says why (a bad
span never fails the others, and is never a 500); ``Status`` bodies for errors; 429 (too many
requests in flight) and 503 (the store is unavailable) with ``Retry-After``, which exporters retry.

The key comes in ``Authorization: Bearer`` (``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20ilog_...``)
and must have the ``ingest`` role. The system each record goes to: ``?system=`` or the
``x-inferlog-system`` header, else the key's only system, else the resource's ``service.name``.
"""

from __future__ import annotations

import dataclasses
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from inferlog.errors import (
    Forbidden,
    InferlogError,
    PayloadTooLarge,
    ProtobufMissing,
    RecordInvalid,
    StoreUnavailable,
    UnsupportedMediaType,
    UsageError,
)
from inferlog.ingest import otlp, otlp_map
from inferlog.record.model import Entry
from inferlog.server.auth import Principal
from inferlog.server.body import read_body
from inferlog.server.deps import State, get_principal
from inferlog.server.state import ServerState

router = APIRouter(prefix="/v1", tags=["ingest"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_MAX_IN_FLIGHT = 16
RETRY_AFTER_BUSY = 1  # seconds: requests in flight drain fast
RETRY_AFTER_STORE = 5  # seconds: a store that is down needs longer
MAX_REASONS = 5  # distinct reasons quoted in partial_success.error_message
SYSTEM_HEADER = "x-inferlog-system"

# google.rpc.Status codes that go with our HTTP statuses (OTLP puts a Status in every error body).
_RPC_CODE = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


class InFlight:
    """At most ``limit`` OTLP requests being decoded and written at once; the next one hears 429.

    Exporters retry a 429 after its ``Retry-After``, so a burst waits in the producers (which keep
    their spans) instead of in this server's memory.
    """

    def __init__(self, limit: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1

    @contextmanager
    def held(self) -> Iterator[None]:
        """Occupy one place (tests use this to fill the server up)."""
        if not self.enter():
            raise RuntimeError("no place left")
        try:
            yield
        finally:
            self.leave()


def in_flight(request: Request) -> InFlight:
    gate: InFlight | None = getattr(request.app.state, "otlp_in_flight", None)
    if gate is None:
        gate = request.app.state.otlp_in_flight = InFlight()
    return gate


@dataclasses.dataclass(frozen=True)
class _Status:
    """An OTLP error answer: HTTP status, message, and Retry-After seconds when the sender should retry."""

    status: int
    message: str
    retry_after: int | None = None


@router.post(
    "/traces",
    summary="OTLP/HTTP traces (protobuf or JSON, gzip): AI-operation spans become inference records",
    responses={
        200: {"description": "ExportTraceServiceResponse; partial_success counts refused spans"},
        400: {"description": "Not an OTLP trace request (google.rpc.Status)"},
        415: {"description": "Neither application/x-protobuf nor application/json"},
        429: {"description": "Too many requests in flight; retry after Retry-After seconds"},
        503: {"description": "The store is unavailable; retry after Retry-After seconds"},
    },
)
async def export_traces(request: Request, state: State) -> Response:
    encoding = _encoding(request.headers.get("content-type", ""))
    gate = in_flight(request)
    if not gate.enter():
        return _error(encoding, _Status(429, "too many OTLP requests in flight", RETRY_AFTER_BUSY))
    state.metrics.backlog.inc()
    try:
        who = await run_in_threadpool(get_principal, request, state)  # a key lookup in the store
        who.require("ingest")
        if encoding is None:
            raise UnsupportedMediaType(
                f"Content-Type must be {PROTOBUF} or {JSON}, got {request.headers.get('content-type')!r}"
            )
        body = _inflate(await read_body(request, state.max_body_bytes), request, state.max_body_bytes)
        decoded = otlp.decode_protobuf(body) if encoding == PROTOBUF else otlp.decode_json(body)
        explicit = request.query_params.get("system") or request.headers.get(SYSTEM_HEADER)
        if explicit:
            who.require_system(explicit)
        intake = await run_in_threadpool(_intake, state, who, explicit, decoded)
    except InferlogError as exc:
        return _error(encoding, _as_status(exc, state))
    finally:
        state.metrics.backlog.dec()
        gate.leave()
    return _answer(encoding or JSON, intake)


def _encoding(content_type: str) -> str | None:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    return None


def _inflate(body: bytes, request: Request, limit: int) -> bytes:
    """The body, inflated when ``Content-Encoding`` says gzip or deflate; never more than ``limit`` bytes out.

    A gzip body may hold several members one after another (RFC 1952), each inflated in turn within
    the one limit; any other bytes after the compressed stream are refused, not ignored (ignoring them
    would drop spans without a word).
    """
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported (use gzip)")
    wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise RecordInvalid(f"the body is not valid {coding}: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the body inflates to over the limit of {limit} bytes")
        if not inflater.eof:
            raise RecordInvalid(f"the {coding} body is truncated")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)
        if coding != "gzip" or not rest.startswith(b"\x1f\x8b"):
            raise RecordInvalid(f"{len(rest)} byte(s) follow the end of the {coding} stream")


@dataclasses.dataclass
class Intake:
    """What became of a request's spans."""

    records: int = 0
    skipped: int = 0  # not AI operations: left out by rule, not refused
    reasons: list[str] = dataclasses.field(default_factory=list)  # one per refused span

    @property
    def rejected(self) -> int:
        return len(self.reasons)


def _intake(state: ServerState, who: Principal, explicit: str | None, decoded: otlp.Decoded) -> Intake:
    """Map, check and append the spans of one request (in a worker thread)."""
    intake = Intake(reasons=list(decoded.rejected))
    records: list[Entry] = []
    for span in decoded.spans:
        if not otlp_map.is_ai(span):
            intake.skipped += 1
            continue
        try:
            system = explicit or _system(who, span)
            record = otlp_map.to_record(span, system=system)
            state.window.check_time(record.ts, field="startTimeUnixNano")
        except (RecordInvalid, Forbidden, UsageError) as exc:
            intake.reasons.append(f"span {span.span_id}: {exc}")
            continue
        records.append(record)
    results = state.ingestor.append_each(records) if records else []
    for result in results:
        if result.status in ("new", "duplicate"):
            intake.records += 1
        else:
            intake.reasons.append(f"span record {result.id}: {result.status}: {result.reason}")
    new = sum(r.status == "new" for r in results)
    state.metrics.accepted.inc(intake.records)
    state.metrics.written.inc(new)
    state.metrics.duplicates.inc(intake.records - new)
    if intake.rejected:
        state.metrics.rejected.labels("otlp").inc(intake.rejected)
    return intake


def _system(who: Principal, span: otlp.Span) -> str:
    if len(who.systems) == 1 and who.systems[0] != "*":
        return who.systems[0]
    service = span.resource.get("service.name")
    if not isinstance(service, str) or not service:
        raise UsageError(
            "no system: name it with ?system=, the x-inferlog-system header, or the resource's service.name"
        )
    who.require_system(service)
    return service


# -- answers --------------------------------------------------------------------------------------


def _answer(encoding: str, intake: Intake) -> Response:
    message = _summary(intake.reasons)
    if encoding == PROTOBUF:
        return Response(_response_proto(intake.rejected, message), media_type=PROTOBUF)
    body: dict[str, Any] = {}
    if intake.rejected:
        body["partialSuccess"] = {"rejectedSpans": str(intake.rejected), "errorMessage": message}
    return Response(msgspec.json.encode(body), media_type=JSON)


def _summary(reasons: list[str]) -> str:
    if not reasons:
        return ""
    shown = list(dict.fromkeys(reasons))[:MAX_REASONS]
    more = len(reasons) - len(shown)
    text = f"{len(reasons)} span(s) refused: " + "; ".join(reason[:300] for reason in shown)
    return text + (f"; and {more} more" if more else "")


def _response_proto(rejected: int, message: str) -> bytes:
    """``ExportTraceServiceResponse{partial_success{rejected_spans, error_message}}`` in protobuf."""
    if not rejected:
        return b""
    inner = b"\x08" + _varint(rejected) + _length_delimited(2, message.encode())
    return _length_delimited(1, inner)


def _as_status(exc: InferlogError, state: ServerState) -> _Status:
    """The error's own status (``inferlog.errors``), in OTLP's terms.

    OTLP/HTTP knows 400 for a request it cannot take, not 422; and a missing protobuf package means
    this server cannot read the body's encoding (415), whatever the body holds.
    """
    if isinstance(exc, StoreUnavailable):
        state.metrics.store_errors.inc()
        return _Status(503, str(exc), RETRY_AFTER_STORE)
    if isinstance(exc, ProtobufMissing):
        return _Status(415, str(exc))
    if 400 <= exc.http_status < 500:
        return _Status(400 if exc.http_status == 422 else exc.http_status, str(exc))
    raise exc


def _error(encoding: str | None, status: _Status) -> Response:
    headers = {"Retry-After": str(status.retry_after)} if status.retry_after is not None else {}
    if status.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    code = _RPC_CODE.get(status.status, 2)
    if encoding == PROTOBUF:
        body = b"\x08" + _varint(code) + _length_delimited(2, status.message.encode())
        return Response(body, status_code=status.status, media_type=PROTOBUF, headers=headers)
    payload = msgspec.json.encode({"code": code, "message": status.message})
    return Response(payload, status_code=status.status, media_type=JSON, headers=headers)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data
