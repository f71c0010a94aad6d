"""Open Inference Protocol (REST, v2) request/response JSON -> record fields. Pure (the OIP REST v2 JSON, as docs/capture.md describes it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inferlog.record.model import ErrorInfo, Model

INFER_PATH = re.compile(r"^/?v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")


def parse_infer_path(path: str) -> tuple[str, str | None] | None:
    """(model name, version or None) for an OIP infer path, else None."""
    found = INFER_PATH.match(path)
    if found is None:
        return None
    return found["name"], found["version"]


@dataclass
class OipFields:
    """What one OIP inference contributes to an InferenceRecord."""

    model: Model
    input: Any
    output: Any
    status: str = "ok"
    error: ErrorInfo | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def to_fields(
    path: str,
    request: Any,
    response: Any,
    status_code: int,
    metadata: Mapping[str, Any] | None = None,
) -> OipFields:
    """The record fields of one infer call: tensors kept typed, model from the response or the URL."""
    url_name, url_version = parse_infer_path(path) or ("unknown", None)
    name, version = url_name, url_version
    if isinstance(response, Mapping):
        if isinstance(response.get("model_name"), str) and response["model_name"]:
            name = response["model_name"]
        if response.get("model_version") is not None:
            version = str(response["model_version"])
    attributes: dict[str, Any] = {"oip_path": "/" + path.lstrip("/"), "http_status": status_code}
    if metadata:
        for key in ("platform", "versions"):
            if key in metadata:
                attributes[f"model_{key}"] = metadata[key]
    if status_code >= 400:
        message = response.get("error") if isinstance(response, Mapping) else None
        return OipFields(
            Model(name, version or ""),
            request,
            response,
            "error",
            ErrorInfo(f"HTTP {status_code}", str(message if message is not None else response)),
            attributes,
        )
    return OipFields(Model(name, version or ""), request, response, attributes=attributes)
