"""Request bodies and the OpenAPI description of the records body (generated from the msgspec types)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inferlog.errors import RecordInvalid
from inferlog.record.model import InferenceRecord, Verification
from inferlog.record.validate import check_depth, check_finite


class FeedbackBody(BaseModel):
    """Ground truth, an outcome, or a human review or override of one inference.

    Held to what a record is held to: unknown fields and numbers no float can hold (``1e400``, which
    the JSON parser reads as infinity) are refused naming the field, never dropped or stored as null.
    """

    model_config = ConfigDict(extra="forbid")

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
    verification: Verification | None = None

    @field_validator("label", "outcome", "override", "attributes")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        try:
            check_depth({"value": value})
            check_finite(value)
        except RecordInvalid as exc:
            raise ValueError(exc.reason) from None
        return value


def feedback_body(data: Any) -> FeedbackBody:
    """A parsed JSON body as feedback, or a refusal naming the first bad field (as records are refused).

    The route parses the body itself (size-limited, through the same JSON reader as records), so a body
    nested past the limit is a 422 naming it rather than the framework's bare 400.
    """
    if not isinstance(data, dict):
        raise RecordInvalid(f"expected a JSON object, got {type(data).__name__}")
    try:
        return FeedbackBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise RecordInvalid(reason, field=field) from None


FEEDBACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": FeedbackBody.model_json_schema()}},
    }
}


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
