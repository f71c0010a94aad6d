"""Validation at the edge: bad records are refused with the field and the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from inferlog.errors import RecordInvalid
from inferlog.record import FeedbackEntry, InferenceRecord, Model, decode_entry, to_entry, uuid7

GOOD: dict[str, Any] = {
    "system": "credit",
    "model": {"name": "credit-risk", "version": "3.2.1"},
    "input": {"income": 52000.0},
    "output": {"score": 0.81},
}


def test_minimal_record_gets_defaults() -> None:
    """A record with only system and model gets kind, id, ts and the given source."""
    entry = to_entry({"system": "s", "model": {"name": "m", "version": "1"}}, source="http")
    assert isinstance(entry, InferenceRecord)
    assert entry.source == "http"
    assert entry.ts.tzinfo is not None
    assert len(entry.id) == 36


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"model": {"name": 5, "version": "1"}}, "model.name", "Expected `str`, got `int`"),
        ({"model": None}, "model", "Expected `object`, got `null`"),
        ({"latency_ms": -1}, "latency_ms", ">= 0"),
        ({"status": "maybe"}, "status", "Invalid enum value 'maybe'"),
        ({"id": "not-a-uuid"}, "id", "matching regex"),
        ({"ts": "2026-01-01T00:00:00"}, "ts", "timezone"),
        ({"system": ""}, "system", "length >= 1"),
        ({"kind": "gossip"}, "kind", "Invalid value 'gossip'"),
    ],
)
def test_refusal_names_field_and_reason(change: dict[str, Any], field: str, reason: str) -> None:
    """Each kind of bad value is refused with a message naming the field and saying why."""
    with pytest.raises(RecordInvalid) as info:
        to_entry(GOOD | change, index=3)
    assert info.value.field == field
    assert reason.lower() in info.value.reason.lower()
    assert str(info.value).startswith(f"record 3, field `{field}`: ")


def test_missing_required_field_is_named() -> None:
    """A record without a model is refused naming `model` as required."""
    bad = {k: v for k, v in GOOD.items() if k != "model"}
    with pytest.raises(RecordInvalid) as info:
        to_entry(bad)
    assert info.value.field == "model"
    assert info.value.reason == "is required"


def test_non_object_is_refused() -> None:
    """A JSON array where an object belongs is refused clearly."""
    with pytest.raises(RecordInvalid, match="expected a JSON object"):
        to_entry([1, 2])  # type: ignore[arg-type]


def test_feedback_kind_is_recognised() -> None:
    """The kind tag selects the entry type; feedback must link an inference id."""
    entry = to_entry({"kind": "feedback", "system": "s", "inference_id": uuid7(), "label": 1})
    assert isinstance(entry, FeedbackEntry)
    with pytest.raises(RecordInvalid) as info:
        to_entry({"kind": "feedback", "system": "s", "label": 1})
    assert info.value.field == "inference_id"


def test_exported_fields_are_dropped_on_reimport() -> None:
    """seq and logged_at from an export are ignored, since the store assigns them."""
    entry = to_entry(GOOD | {"seq": 7, "logged_at": "2026-01-01T00:00:00Z"})
    assert isinstance(entry, InferenceRecord)


def test_decode_entry_round_trip() -> None:
    """An entry encoded as JSON decodes back to an equal entry, and garbage is refused."""
    entry = InferenceRecord(
        id=uuid7(), system="s", ts=dt.datetime.now(dt.UTC), model=Model("m", "1"), output=[1, 2]
    )
    assert decode_entry(msgspec.json.encode(entry)) == entry
    with pytest.raises(RecordInvalid, match="not valid JSON"):
        decode_entry(b"{nope")


def test_schema_version_from_the_future_is_refused() -> None:
    """A record claiming a schema version this code does not know is refused, not misread."""
    with pytest.raises(RecordInvalid) as info:
        to_entry(GOOD | {"schema_version": 99})
    assert info.value.field == "schema_version"
