"""KServe InferenceLogger CloudEvents: parse one delivery, and join a request and response into a record.

Pure functions (no I/O): the HTTP sink in :mod:`inferlog.server.routes.kserve` keeps pending halves
and calls these. See docs/capture.md.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.ingest._halves import first_half, lone_half, timing
from inferlog.record.ids import uuid8
from inferlog.record.model import ErrorInfo, InferenceRecord, Model
from inferlog.record.validate import deeper_than_allowed

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
HALVES = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
_CORE = ("specversion", "id", "type", "source", "time", "datacontenttype", "data", "data_base64")


class Event(msgspec.Struct, kw_only=True):
    """One CloudEvent from the logger: its core attributes, extensions and raw body."""

    id: str
    source: str
    half: str  # "request" | "response"
    time: str | None = None
    content_type: str | None = None
    data: bytes = b""
    extensions: dict[str, str] = {}


def _half(ce_type: str | None) -> str:
    if ce_type not in HALVES:
        raise RecordInvalid(f"not a KServe inference event type: {ce_type!r}", field="ce-type")
    return HALVES[ce_type]


def parse_binary(headers: Mapping[str, str], body: bytes) -> Event:
    """A binary-mode event: ``ce-*`` headers (any case) and the body as data."""
    lower = {k.lower(): v for k, v in headers.items()}
    ce = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
    if not ce.get("id"):
        raise RecordInvalid("the ce-id header is missing", field="ce-id")
    return Event(
        id=ce.pop("id"),
        source=ce.pop("source", ""),
        half=_half(ce.pop("type", None)),
        time=ce.pop("time", None),
        content_type=lower.get("content-type"),
        data=body,
        extensions={k: v for k, v in ce.items() if k != "specversion"},
    )


def parse_structured(body: bytes) -> Event:
    """A structured-mode event (``application/cloudevents+json``)."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise RecordInvalid(f"the CloudEvent is not valid JSON ({exc})") from None
    except RecursionError:
        raise deeper_than_allowed("data") from None
    if not isinstance(doc, dict) or not doc.get("id"):
        raise RecordInvalid("a structured CloudEvent needs an object with an id", field="id")
    if "data_base64" in doc:
        try:
            data = base64.b64decode(str(doc["data_base64"]), validate=True)
        except binascii.Error:
            raise RecordInvalid("data_base64 is not base64", field="data_base64") from None
    elif "data" in doc:
        raw = doc["data"]
        data = raw.encode() if isinstance(raw, str) else msgspec.json.encode(raw)
    else:
        data = b""
    return Event(
        id=str(doc["id"]),
        source=str(doc.get("source", "")),
        half=_half(doc.get("type")),
        time=doc.get("time"),
        content_type=doc.get("datacontenttype"),
        data=data,
        extensions={
            k: v if isinstance(v, str) else msgspec.json.encode(v).decode()
            for k, v in doc.items()
            if k not in _CORE
        },
    )


def record_id(source: str, event_id: str) -> str:
    """A deterministic UUIDv8 (sha256 of source and id) so a redelivery has the same record id."""
    return uuid8("kserve", source, event_id)


def body_value(data: bytes, content_type: str | None) -> Any:
    """The body as JSON when it is JSON (OIP tensors kept as they are), else its bytes in base64."""
    if data:
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError:
            pass
        except RecursionError:
            raise deeper_than_allowed("data") from None
    return {"content_type": content_type, "body_base64": base64.b64encode(data).decode()}


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _json_ext(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return msgspec.json.decode(value)
    except msgspec.DecodeError:
        return value


def join(
    request: Event | None,
    response: Event | None,
    *,
    system: str,
    now: dt.datetime | None = None,
) -> InferenceRecord:
    """One record from the request and/or response of one inference (a lone half is marked)."""
    first = first_half(request, response)
    ext = {k: v for half in (request, response) if half is not None for k, v in half.extensions.items()}
    input_ = body_value(request.data, request.content_type) if request else None
    output = body_value(response.data, response.content_type) if response else None
    ts, latency = timing(
        _time(request.time) if request else None, _time(response.time) if response else None, now
    )
    attributes = _attributes(request, response, first, ext)
    if (lone := lone_half(request, response)) is not None:
        attributes["kserve_half"] = lone
    status_code = ext.get("statuscode")
    failed = status_code is not None and status_code.isdigit() and int(status_code) >= 400
    return InferenceRecord(
        id=record_id(first.source, first.id),
        system=system,
        ts=ts,
        model=_model(output, input_, ext),
        input=input_,
        output=output,
        latency_ms=latency,
        status="error" if failed else "ok",
        error=ErrorInfo("HTTPError", f"the model answered HTTP {status_code}") if failed else None,
        request_id=first.id,
        attributes=attributes,
        source="kserve",
    )


def _model(output: Any, input_: Any, ext: Mapping[str, str]) -> Model:
    """The model an OIP body names (the response's first), else the InferenceService, else unknown."""
    name = version = None
    for body in (output, input_):
        if isinstance(body, dict) and isinstance(body.get("model_name"), str) and name is None:
            name = body["model_name"]
            mv = body.get("model_version")
            version = str(mv) if mv is not None else None
    name = name or ext.get("inferenceservicename") or "unknown"
    return Model(name[:256], (version or "")[:256])


_NAMED_EXTENSIONS = ("inferenceservicename", "namespace", "component", "endpoint", "metadata", "annotations")


def _attributes(
    request: Event | None, response: Event | None, first: Event, ext: Mapping[str, str]
) -> dict[str, Any]:
    """Where the inference came from: the logger's extensions by name, the others kept as they are."""
    attributes: dict[str, Any] = {
        "inference_service": ext.get("inferenceservicename"),
        "namespace": ext.get("namespace"),
        "component": ext.get("component"),
        "endpoint": ext.get("endpoint"),
        "ce_source": first.source,
        "ce_id": first.id,
        "metadata": _json_ext(ext.get("metadata")),
        "annotations": _json_ext(ext.get("annotations")),
        "times": {
            k: v
            for k, v in (("request", request and request.time), ("response", response and response.time))
            if v
        },
    }
    others = {k: v for k, v in ext.items() if k not in _NAMED_EXTENSIONS}
    if others:
        attributes["extensions"] = others
    return {k: v for k, v in attributes.items() if v is not None}


def to_json(event: Event) -> bytes:
    """The pending form of an event (kept by the sink until its other half arrives)."""
    return msgspec.json.encode(event)


def from_json(data: bytes) -> Event:
    return msgspec.json.decode(data, type=Event)
