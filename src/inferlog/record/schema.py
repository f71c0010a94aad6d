"""Schema evolution: which field set an entry uses, and the rules a v2 field adds (docs/schema.md).

The rules, in short: fields are only ever *added*, always optional, and omitted from the body when
unset; an entry's ``schema_version`` is the newest field set it actually uses, so an entry that uses
no v2 field stays version 1 and its canonical bytes (and leaf hash) are exactly what they always were.
Upgrades are code, never rewrites: nothing stored is ever re-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.record.model import (
    FIRST_SCHEMA_VERSION,
    Biometric,
    EntryBase,
    FeedbackEntry,
    InferenceRecord,
)

V2_FIELDS: dict[type[EntryBase], tuple[str, ...]] = {
    InferenceRecord: ("biometric",),
    FeedbackEntry: ("verification",),
}
"""The fields schema version 2 added, per entry type (all optional, all ``None`` when unset)."""


def version_used(entry: EntryBase) -> int:
    """The newest schema version whose fields ``entry`` uses (1 when it uses none added later)."""
    for name in V2_FIELDS.get(type(entry), ()):
        if getattr(entry, name) is not None:
            return 2
    return FIRST_SCHEMA_VERSION


AnyEntry = TypeVar("AnyEntry", bound=EntryBase)


def stamped(entry: AnyEntry, index: int | None = None) -> AnyEntry:
    """``entry`` checked against the rules of the fields it uses, with ``schema_version`` raised to the
    newest field set it uses (a producer need not say it; one that says more is left as it said)."""
    used = version_used(entry)
    if used == FIRST_SCHEMA_VERSION:
        return entry
    _check_v2(entry, index)
    if entry.schema_version >= used:
        return entry
    return msgspec.structs.replace(entry, schema_version=used)


def _check_v2(entry: EntryBase, index: int | None) -> None:
    if type(entry) is InferenceRecord and entry.biometric is not None:
        period = entry.biometric.period
        if period.end < period.start:
            raise RecordInvalid(
                "is before biometric.period.start; a use ends after it starts",
                field="biometric.period.end",
                index=index,
            )
    if type(entry) is FeedbackEntry and entry.verification is not None and not entry.actor:
        raise RecordInvalid(
            "is required with verification: the natural person who verified the result",
            field="actor",
            index=index,
        )


_biometric_decoder = msgspec.json.Decoder(Biometric)


def checked_biometric(value: Biometric | Mapping[str, Any]) -> Biometric:
    """A ``biometric`` value built in code or given as a mapping, validated as a read would decode it;
    a refusal names the field (``biometric.reference_database.name``)."""
    # validate imports this module: imported here. ``match`` is free-form JSON, bounded like ``input``
    # (nested past the limit it would fail the encoder with a RecursionError, or the pipeline later).
    from inferlog.record.validate import SCALAR_TYPES, _invalid, check_storable

    match = value.get("match") if isinstance(value, Mapping) else getattr(value, "match", None)
    if type(match) not in SCALAR_TYPES:
        check_storable({"biometric.match": match})
    try:
        if isinstance(value, Mapping):
            return msgspec.convert(dict(value), Biometric)
        if type(value) is not Biometric:
            raise RecordInvalid(
                f"must be a Biometric or a mapping, got {type(value).__name__}", field="biometric"
            )
        decoded: Biometric = _biometric_decoder.decode(msgspec.json.encode(value))
    except msgspec.ValidationError as exc:
        raise _invalid(exc, under="biometric") from None
    except (TypeError, ValueError) as exc:
        raise RecordInvalid(str(exc), field="biometric") from None
    return decoded
