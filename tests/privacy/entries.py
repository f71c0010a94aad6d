"""Entries of every kind for the privacy tests, and a deep snapshot to prove nothing was mutated."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from inferlog.record.ids import uuid7
from inferlog.record.model import AccessEntry, AdminEntry, ErrorInfo, FeedbackEntry, InferenceRecord, Model

TS = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


def inference(**fields: Any) -> InferenceRecord:
    values: dict[str, Any] = {
        "id": uuid7(),
        "system": "credit-scoring",
        "ts": TS,
        "model": Model("credit-risk", "3.2.1"),
    }
    values.update(fields)
    return InferenceRecord(**values)


def feedback(**fields: Any) -> FeedbackEntry:
    values: dict[str, Any] = {"id": uuid7(), "system": "credit-scoring", "ts": TS, "inference_id": uuid7()}
    values.update(fields)
    return FeedbackEntry(**values)


def access(**fields: Any) -> AccessEntry:
    values: dict[str, Any] = {
        "id": uuid7(),
        "system": "credit-scoring",
        "ts": TS,
        "action": "read",
        "purpose": "audit",
    }
    values.update(fields)
    return AccessEntry(**values)


def admin(**fields: Any) -> AdminEntry:
    values: dict[str, Any] = {"id": uuid7(), "system": "credit-scoring", "ts": TS, "action": "policy.changed"}
    values.update(fields)
    return AdminEntry(**values)


def error(message: str) -> ErrorInfo:
    return ErrorInfo("ValueError", message)


def snapshot(entry: object) -> bytes:
    """Every byte of an entry, nested containers included: equal snapshots = nothing was mutated."""
    return msgspec.json.encode(entry)
