"""Request bodies and the OpenAPI description of the records body (generated from the msgspec types)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from pydantic import BaseModel, Field

from inferlog.record.model import InferenceRecord


class FeedbackBody(BaseModel):
    """Ground truth, an outcome, or a human review or override of one inference."""

    id: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )
    label: Any = None
    outcome: Any = None
    override: Any = None
    comment: str | None = Field(default=None, max_length=10_000)
    actor: str | None = Field(default=None, max_length=256)
    attributes: dict[str, Any] | None = None
    ts: dt.datetime | None = None


def _records_schema() -> dict[str, Any]:
    (schema,), components = msgspec.json.schema_components(
        [list[InferenceRecord]], ref_template="#/components/schemas/{name}"
    )
    return {"schema": schema, "components": components}


_RECORDS = _records_schema()
RECORDS_COMPONENTS: dict[str, Any] = _RECORDS["components"]
RECORDS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _RECORDS["schema"]},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}
