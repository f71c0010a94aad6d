"""``POST /v1/ingest/seldon``: one Seldon Core 2 Kafka message per request, joined by ``x-request-id``.

Seldon Core 2 writes a model's requests to ``<prefix>.<ns>.model.<name>.inputs`` and its responses to
``….outputs`` (errors to ``<prefix>.<ns>.errors.errors``). A bridge that consumes those topics (Kafka
Connect's HTTP sink, a small consumer) POSTs each message here: the value as the body, the Kafka
headers as HTTP headers, and the envelope as ``x-kafka-topic`` (or ``?topic=``), ``x-kafka-key``,
``x-kafka-partition``, ``x-kafka-offset`` and ``x-kafka-timestamp`` (ms). The first half of an
inference is kept in the server's pending file (:mod:`inferlog.server.pending`) before the 202; the
second makes the record. The key goes in a header: a bridge can set one, so no key in the URL here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inferlog.errors import ProtobufMissing, RecordInvalid, UnsupportedMediaType
from inferlog.ingest import seldon
from inferlog.server.body import read_body
from inferlog.server.deps import State, Who
from inferlog.server.pending import PendingHalves, pending_of, sink_system, sweep_quietly

router = APIRouter(prefix="/v1", tags=["ingest"])

_ENVELOPE = ("x-kafka-topic", "x-kafka-key", "x-kafka-partition", "x-kafka-offset", "x-kafka-timestamp")


def _int(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise RecordInvalid(f"{name} must be an integer, got {value!r}", field=name) from None


def _half(message: seldon.Message) -> seldon.Half:
    try:
        return seldon.decode(message)
    except ProtobufMissing as exc:
        raise UnsupportedMediaType(
            f"{exc}; or set seldon-infer-type: json/... on the producer, or have the bridge send the "
            "OIP message in its REST JSON form"
        ) from None


@router.post(
    "/ingest/seldon",
    summary="One Seldon Core 2 Kafka message (inputs, outputs or errors topic); joins by x-request-id",
    status_code=202,
    responses={
        202: {"description": "Kept durably"},
        415: {"description": "A protobuf value, and the protobuf package is not installed"},
        422: {"description": "Not a Seldon topic, or no x-request-id"},
    },
)
async def ingest_seldon(
    request: Request, state: State, who: Who, system: str | None = None, topic: str | None = None
) -> JSONResponse:
    who.require("ingest")
    body = await read_body(request, state.max_body_bytes)
    topic = request.headers.get("x-kafka-topic") or topic
    if not topic:
        raise RecordInvalid("name the Kafka topic: the x-kafka-topic header or ?topic=", field="topic")
    headers = {k: v for k, v in request.headers.items() if k not in _ENVELOPE and k != "x-api-key"}
    message = seldon.parse(
        topic,
        headers,
        body,
        key=request.headers.get("x-kafka-key"),
        partition=_int(request, "x-kafka-partition"),
        offset=_int(request, "x-kafka-offset"),
        timestamp_ms=_int(request, "x-kafka-timestamp"),
    )
    state.window.check_epoch_ms(message.timestamp_ms, field="x-kafka-timestamp")
    system = sink_system(who, system)
    half = _half(message)
    keeper = pending_of(request)
    status = await run_in_threadpool(_add_and_sweep, keeper, half, system)
    return JSONResponse({"id": seldon.message_record_id(message), "status": status}, status_code=202)


def _add_and_sweep(keeper: PendingHalves, half: seldon.Half, system: str) -> str:
    message = half.message
    status = keeper.add("seldon", seldon.message_record_id(message), message.half, half, system)
    sweep_quietly(keeper)
    return status
