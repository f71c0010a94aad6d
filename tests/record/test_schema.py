"""Schema evolution: v1 entries keep their bytes and leaf hashes; v2 fields are validated and stamped."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from inferlog.errors import RecordInvalid
from inferlog.ledger.hashing import leaf_hash
from inferlog.pipeline import body_of, commitment, leaf_of
from inferlog.record.canonical import canonical_json
from inferlog.record.model import (
    SCHEMA_VERSION,
    Biometric,
    FeedbackEntry,
    InferenceRecord,
    Model,
    ReferenceDatabase,
    UsePeriod,
)
from inferlog.record.schema import checked_biometric, stamped, version_used
from inferlog.record.validate import decode_entry, to_entry

TS = dt.datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=dt.UTC)
SALT = bytes(range(16))

# Written by inferlog before schema v2 existed (commit c1c2c91), with the leaf hashes it made from them.
V1_INFERENCE = (
    b'{"actor":"svc-gate","attributes":{"gate":"A3"},"id":"01890a5d-ac96-774b-bcce-b302099a8057",'
    b'"input":{"image":"sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"},'
    b'"kind":"inference","latency_ms":12.5,"model":{"digest":"sha256:'
    b'abababababababababababababababababababababababababababababababab","name":"face-match",'
    b'"version":"3.1"},"output":{"match":true,"score":0.97},"parameters":{"threshold":0.9},'
    b'"subject":"p-77","system":"border-gate","ts":"2026-05-01T09:30:00.123456Z"}'
)
V1_INFERENCE_LEAF_HASH = "ff1c473bc7431ddfec9b725f3d3aee89e76d50d0492b95be7a157e2b8a0f138d"
V1_FEEDBACK = (
    b'{"actor":"officer-1","id":"01890a5d-ac96-774b-bcce-b302099a8058",'
    b'"inference_id":"01890a5d-ac96-774b-bcce-b302099a8057","kind":"feedback","label":true,'
    b'"system":"border-gate","ts":"2026-05-01T09:30:00.123456Z"}'
)
V1_FEEDBACK_LEAF_HASH = "4bcd8301a74b81a37fdc74700c26b7283e62e5af32b312d275d75a53ba771cd2"


def biometric(**overrides: Any) -> dict[str, Any]:
    """A valid ``biometric`` value as a producer sends it."""
    value: dict[str, Any] = {
        "period": {"start": "2026-05-01T09:30:00Z", "end": "2026-05-01T09:30:02Z"},
        "reference_database": {"name": "watchlist", "version": "2026-04-30", "digest": "sha256:" + "ef" * 32},
        "match": {"candidate": "w-1017", "probe": "sha256:" + "cd" * 32},
    }
    value.update(overrides)
    return value


def _leaf_hash_hex(body: bytes) -> str:
    entry = decode_entry(body)
    return leaf_hash(canonical_json(leaf_of(entry, commitment(SALT, body)))).hex()


@pytest.mark.parametrize(
    ("body", "expected"),
    [(V1_INFERENCE, V1_INFERENCE_LEAF_HASH), (V1_FEEDBACK, V1_FEEDBACK_LEAF_HASH)],
    ids=["inference", "feedback"],
)
def test_a_v1_entry_keeps_its_bytes_and_leaf_hash(body: bytes, expected: str) -> None:
    """A body written before v2 decodes as version 1, re-encodes to the same bytes, and hashes to the same leaf."""
    entry = decode_entry(body)
    assert entry.schema_version == 1
    assert body_of(entry) == body
    assert _leaf_hash_hex(body) == expected


def test_schema_version_is_the_newest_field_set_used() -> None:
    """An entry with no v2 field stays v1 (omitted); one with a v2 field is stamped 2 by the log."""
    plain = to_entry({"system": "s", "model": {"name": "m", "version": "1"}})
    assert plain.schema_version == 1
    assert b"schema_version" not in body_of(plain)
    bio = to_entry({"system": "s", "model": {"name": "m", "version": "1"}, "biometric": biometric()})
    assert bio.schema_version == 2 == SCHEMA_VERSION
    assert b'"schema_version":2' in body_of(bio)
    assert decode_entry(body_of(bio)) == bio


def test_a_producer_that_says_v2_for_a_v1_entry_is_left_as_it_said() -> None:
    """Stamping only raises the version: an explicit 2 without v2 fields stays 2."""
    entry = to_entry({"system": "s", "model": {"name": "m", "version": "1"}, "schema_version": 2})
    assert entry.schema_version == 2
    assert version_used(entry) == 1


def test_a_version_from_the_future_is_refused_naming_the_field() -> None:
    """A reader refuses an entry of a version it does not know (what an old reader does with v2)."""
    with pytest.raises(RecordInvalid) as info:
        to_entry({"system": "s", "model": {"name": "m", "version": "1"}, "schema_version": 3})
    assert info.value.field == "schema_version"


def test_an_unknown_field_is_refused_not_dropped() -> None:
    """A field the schema does not name is a refusal naming it, never silently dropped."""
    with pytest.raises(RecordInvalid) as info:
        to_entry({"system": "s", "model": {"name": "m", "version": "1"}, "biometrics": biometric()})
    assert info.value.field == "biometrics"
    with pytest.raises(RecordInvalid) as nested:
        to_entry({"system": "s", "model": {"name": "m", "version": "1"}, "biometric": biometric(matched=1)})
    assert nested.value.field == "biometric.matched"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (
            biometric(period={"start": "2026-05-01T09:30:02Z", "end": "2026-05-01T09:30:00Z"}),
            "biometric.period.end",
        ),
        (biometric(period={"start": "2026-05-01T09:30:00Z"}), "biometric.period.end"),
        (biometric(reference_database={"name": ""}), "biometric.reference_database.name"),
        (biometric(reference_database=None), "biometric.reference_database"),
        (
            biometric(period={"start": "2026-05-01T09:30:00", "end": "2026-05-01T09:30:01Z"}),
            "biometric.period.start",
        ),
    ],
    ids=["ends-before-start", "no-end", "empty-database-name", "no-database", "naive-time"],
)
def test_a_bad_biometric_value_is_refused_naming_the_field(value: dict[str, Any], field: str) -> None:
    """Every rule of the biometric object is checked where it enters, and the refusal names the field."""
    with pytest.raises(RecordInvalid) as info:
        to_entry({"system": "s", "model": {"name": "m", "version": "1"}, "biometric": value})
    assert info.value.field == field


def test_checked_biometric_names_the_field_for_code_built_values() -> None:
    """A Biometric built in code (not validated by msgspec) is checked as a read would decode it."""
    bad = Biometric(period=UsePeriod(start=TS, end=TS), reference_database=ReferenceDatabase(name="x" * 300))
    with pytest.raises(RecordInvalid) as info:
        checked_biometric(bad)
    assert info.value.field == "biometric.reference_database.name"
    assert checked_biometric(biometric()).reference_database.name == "watchlist"


def test_a_verification_needs_the_person_who_verified() -> None:
    """``verification`` without an ``actor`` is refused naming ``actor``; with one, it is a v2 entry."""
    base = {"kind": "feedback", "system": "s", "inference_id": "01890a5d-ac96-774b-bcce-b302099a8057"}
    with pytest.raises(RecordInvalid) as info:
        to_entry(base | {"verification": "confirmed"})
    assert info.value.field == "actor"
    with pytest.raises(RecordInvalid) as wrong:
        to_entry(base | {"verification": "maybe", "actor": "officer-1"})
    assert wrong.value.field == "verification"
    entry = to_entry(base | {"verification": "confirmed", "actor": "officer-1"})
    assert isinstance(entry, FeedbackEntry)
    assert entry.schema_version == 2


def test_stamping_keeps_the_entry_type() -> None:
    """``stamped`` returns an entry of the type it was given, the v2 field intact."""
    record = InferenceRecord(
        id="01890a5d-ac96-774b-bcce-b302099a8057", system="s", ts=TS, model=Model("m", "1"),
        biometric=msgspec.convert(biometric(), Biometric),
    )  # fmt: skip
    out = stamped(record)
    assert type(out) is InferenceRecord
    assert out.schema_version == 2
    assert out.biometric == record.biometric


def test_a_period_entry_names_its_period_and_one_system() -> None:
    """Period entries without a period UUID, with a non-string purpose, or for the whole log ("*") are refused by field."""
    base: dict[str, Any] = {"kind": "admin", "system": "gate", "action": "period.started"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"details": {}}, "details.period"),
        ({"details": {"period": "gate-a3"}}, "details.period"),
        ({"details": {"period": "01890a5d-ac96-774b-bcce-b302099a8057", "purpose": 3}}, "details.purpose"),
        ({"system": "*", "details": {"period": "01890a5d-ac96-774b-bcce-b302099a8057"}}, "system"),
    ]
    for extra, field in cases:
        with pytest.raises(RecordInvalid) as info:
            to_entry(base | extra)
        assert info.value.field == field
    entry = to_entry(base | {"details": {"period": "01890a5d-ac96-774b-bcce-b302099a8057"}})
    assert entry.schema_version == 1  # an admin action, not a new field: every reader reads it
