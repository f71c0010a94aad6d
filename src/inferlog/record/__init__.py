"""The record: entries of the ledger, their validation and their canonical bytes. Pure: no I/O."""

from inferlog.record.canonical import canonicalize, format_timestamp
from inferlog.record.ids import uuid7
from inferlog.record.model import (
    SCHEMA_VERSION,
    AccessEntry,
    AdminEntry,
    Biometric,
    Entry,
    ErrorInfo,
    FeedbackEntry,
    InferenceRecord,
    Model,
    ReferenceDatabase,
    StoredEntry,
    UsePeriod,
    kind_of,
)
from inferlog.record.prepared import Prepared
from inferlog.record.validate import decode_entry, to_entry

__all__ = [
    "SCHEMA_VERSION",
    "AccessEntry",
    "AdminEntry",
    "Biometric",
    "Entry",
    "ErrorInfo",
    "FeedbackEntry",
    "InferenceRecord",
    "Model",
    "Prepared",
    "ReferenceDatabase",
    "StoredEntry",
    "UsePeriod",
    "canonicalize",
    "decode_entry",
    "format_timestamp",
    "kind_of",
    "to_entry",
    "uuid7",
]
