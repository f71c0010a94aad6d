"""Seldon Core 2 dataflow (Kafka) messages: parse one, and join a model's inputs and outputs into a record.

Pure functions (no I/O), like :mod:`inferlog.ingest.kserve`: the HTTP endpoint in
:mod:`inferlog.server.routes.seldon` takes one Kafka message per POST (a bridge maps the Kafka topic,
key, partition, offset, timestamp and headers to HTTP headers), keeps the first half durably and
calls :func:`join` when the other arrives. See docs/capture.md.

Topics are ``<prefix>.<namespace>.model|pipeline.<name>.inputs|outputs`` and
``<prefix>.<namespace>.errors.errors``. The two halves of one inference share the ``x-request-id``
Kafka header; the join is scoped to the resource named by the topic. Values are OIP messages: REST
JSON (``seldon-infer-type: json/...``, or a JSON value with no header) or protobuf (Seldon's default),
which :mod:`inferlog.ingest.oip_proto` turns into the same REST JSON when ``protobuf`` is installed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.ingest import oip_proto
from inferlog.ingest._halves import first_half, lone_half, timing
from inferlog.record.ids import uuid8
from inferlog.record.model import ErrorInfo, InferenceRecord, Model
from inferlog.record.validate import deeper_than_allowed

_RESOURCE_TOPIC = re.compile(
    r"^(?P<prefix>[A-Za-z0-9._-]+?)\.(?P<namespace>[a-z0-9-]+)\."
    r"(?P<kind>model|pipeline)\.(?P<name>[^/\s]+)\.(?P<stream>inputs|outputs)$"
)
_ERRORS_TOPIC = re.compile(r"^(?P<prefix>[A-Za-z0-9._-]+?)\.(?P<namespace>[a-z0-9-]+)\.errors\.errors$")
HALF_OF_STREAM = {"inputs": "request", "outputs": "response", "errors": "response"}
INFER_TYPES = {
    "json/infermodelrequest": "json",
    "json/infermodelresponse": "json",
    "proto/infermodelrequest": "proto",
    "proto/infermodelresponse": "proto",
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Kafka headers worth keeping besides the x-* ones Seldon propagates.
_KEPT_HEADERS = ("pipeline", "seldon-infer-type", "seldon-pipeline-errors", "traceparent", "tracestate")


class Topic(msgspec.Struct, frozen=True, kw_only=True):
    """Where a message was read: the resource (model or pipeline) and which stream of it."""

    prefix: str
    namespace: str
    kind: str  # "model" | "pipeline" | "errors"
    name: str  # the model or pipeline; for the errors topic, from the seldon-pipeline-errors header
    stream: str  # "inputs" | "outputs" | "errors"


class Message(msgspec.Struct, kw_only=True):
    """One Kafka message from a Seldon topic: its place, its headers and its value as received."""

    topic: str
    resource: Topic
    request_id: str
    half: str  # "request" | "response"
    value: bytes
    headers: dict[str, str] = {}
    key: str | None = None
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None


def parse_topic(topic: str, headers: Mapping[str, str] | None = None) -> Topic:
    """The resource and stream a topic name stands for (the errors topic names its model in a header)."""
    found = _RESOURCE_TOPIC.match(topic)
    if found is not None:
        return Topic(**found.groupdict())
    found = _ERRORS_TOPIC.match(topic)
    if found is not None:
        lower = {k.lower(): v for k, v in (headers or {}).items()}
        name = lower.get("seldon-pipeline-errors")
        if not name:
            raise RecordInvalid(
                "a message on the errors topic needs the seldon-pipeline-errors header",
                field="seldon-pipeline-errors",
            )
        return Topic(
            prefix=found["prefix"], namespace=found["namespace"], kind="model", name=name, stream="errors"
        )
    raise RecordInvalid(
        f"not a Seldon topic: {topic!r} (want <prefix>.<namespace>.model|pipeline.<name>.inputs|outputs "
        "or <prefix>.<namespace>.errors.errors)",
        field="topic",
    )


def parse(
    topic: str,
    headers: Mapping[str, str],
    value: bytes,
    *,
    key: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    timestamp_ms: int | None = None,
) -> Message:
    """One message: its topic parsed, its ``x-request-id`` required, the headers worth keeping kept."""
    lower = {k.lower(): v for k, v in headers.items()}
    resource = parse_topic(topic, lower)
    request_id = lower.get("x-request-id")
    if not request_id:
        raise RecordInvalid("the x-request-id header is missing", field="x-request-id")
    kept = {k: v for k, v in lower.items() if k.startswith("x-") or k in _KEPT_HEADERS}
    if timestamp_ms is not None and _time(timestamp_ms) is None:
        raise RecordInvalid(
            f"is out of range: {timestamp_ms} ms is not a time (years 1 to 9999)", field="x-kafka-timestamp"
        )
    return Message(
        topic=topic,
        resource=resource,
        request_id=request_id,
        half=HALF_OF_STREAM[resource.stream],
        value=value,
        headers=kept,
        key=key,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
    )


def value_format(message: Message) -> str:
    """``json``, ``proto`` or ``text`` (errors): from ``seldon-infer-type``, else by looking at the bytes."""
    if message.resource.stream == "errors":
        return "text"
    hint = message.headers.get("seldon-infer-type", "").lower()
    if hint in INFER_TYPES:
        return INFER_TYPES[hint]
    if hint:
        raise RecordInvalid(f"unknown seldon-infer-type {hint!r}", field="seldon-infer-type")
    try:
        msgspec.json.decode(message.value)
    except msgspec.DecodeError:
        return "proto"  # Seldon's default encoding; what does not parse as JSON is taken for protobuf
    except RecursionError:
        return "json"  # JSON nested too deep: decode_json refuses it, naming the limit
    return "json"


def decode_json(message: Message) -> Any:
    """A JSON value, as it is (OIP REST tensors kept typed)."""
    try:
        return msgspec.json.decode(message.value)
    except msgspec.DecodeError as exc:
        raise RecordInvalid(f"the value is not valid JSON ({exc})", field="value") from None
    except RecursionError:
        raise deeper_than_allowed("value") from None


class Half(msgspec.Struct, kw_only=True):
    """A message reduced to what the record needs: the pending form kept until its partner arrives."""

    message: Message
    body: Any = None  # the decoded value (JSON or OIP REST form), or None for an error
    error: str | None = None  # the errors topic's text


def decode(message: Message) -> Half:
    """The message as a half of an inference: its value as OIP REST JSON, or the errors topic's text.

    Protobuf values (optionally in Confluent Schema Registry framing) need the ``protobuf`` package:
    without it :class:`~inferlog.errors.ProtobufMissing` is raised.
    """
    kind = value_format(message)
    if kind == "text":
        return Half(message=message, error=message.value.decode("utf-8", "replace"))
    if kind == "json":
        return Half(message=message, body=decode_json(message))
    value = oip_proto.strip_confluent(message.value)
    read = oip_proto.request_json if message.half == "request" else oip_proto.response_json
    return Half(message=message, body=read(value))


def record_id(namespace: str, kind: str, name: str, request_id: str) -> str:
    """A deterministic UUIDv8 (sha256 of the resource and request id): a redelivery has the same id."""
    return uuid8("seldon", namespace, kind, name, request_id)


def message_record_id(message: Message) -> str:
    r = message.resource
    return record_id(r.namespace, r.kind, r.name, message.request_id)


def _time(ms: int | None) -> dt.datetime | None:
    """A Kafka timestamp (ms since the epoch) as a time; ``None`` when absent or no time at all."""
    if ms is None:
        return None
    try:
        return _EPOCH + dt.timedelta(milliseconds=ms)
    except OverflowError:
        return None


def _where(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"topic": message.topic}
    for name in ("partition", "offset", "timestamp_ms", "key"):
        value = getattr(message, name)
        if value is not None:
            out[name] = value
    return out


def join(
    request: Half | None,
    response: Half | None,
    *,
    system: str,
    now: dt.datetime | None = None,
) -> InferenceRecord:
    """One record from the inputs and/or outputs (or error) message of one inference."""
    first = first_half(request, response)
    r = first.message.resource
    headers = {
        k: v for half in (request, response) if half is not None for k, v in half.message.headers.items()
    }
    output = response.body if response is not None else None
    version = ""
    for body in (output, request.body if request else None):
        if isinstance(body, dict) and body.get("model_version") not in (None, ""):
            version = str(body["model_version"])
            break
    ts, latency = timing(
        _time(request.message.timestamp_ms) if request else None,
        _time(response.message.timestamp_ms) if response else None,
        now,
    )
    attributes: dict[str, Any] = {
        "namespace": r.namespace,
        "resource_kind": r.kind,
        "topic_prefix": r.prefix,
        "kafka": {
            k: _where(h.message) for k, h in (("inputs", request), ("outputs", response)) if h is not None
        },
        "headers": headers,
    }
    if (lone := lone_half(request, response)) is not None:
        attributes["seldon_half"] = lone
    failed = response is not None and response.error is not None
    return InferenceRecord(
        id=message_record_id(first.message),
        system=system,
        ts=ts,
        model=Model(r.name[:256], version[:256]),
        input=request.body if request else None,
        output=None if failed else output,
        latency_ms=latency,
        status="error" if failed else "ok",
        error=ErrorInfo("SeldonError", response.error or "") if failed and response else None,
        request_id=first.message.request_id,
        attributes=attributes,
        source="seldon",
    )


def to_json(half: Half) -> bytes:
    """The pending form of a half (kept by the sink until its partner arrives)."""
    return msgspec.json.encode(half)


def from_json(data: bytes) -> Half:
    return msgspec.json.decode(data, type=Half)
