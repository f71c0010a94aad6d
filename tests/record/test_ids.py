"""UUIDv7 ids."""

from __future__ import annotations

import uuid

from inferlog.record.ids import is_uuid, uuid7, uuid8


def test_uuid7_is_version_7_and_variant_rfc() -> None:
    """Ids parse as RFC 9562 version-7 UUIDs."""
    parsed = uuid.UUID(uuid7())
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_uuid7_carries_the_time_and_sorts_by_it() -> None:
    """The first 48 bits are the Unix milliseconds, so later ids sort after earlier ones."""
    early, late = uuid7(unix_ms=1_000), uuid7(unix_ms=2_000)
    assert int(early.replace("-", "")[:12], 16) == 1_000
    assert early < late


def test_uuid7_is_unique_in_bulk() -> None:
    """100k ids in the same few milliseconds never collide."""
    ids = [uuid7() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert all(is_uuid(i) for i in ids[:100])


def test_is_uuid_refuses_other_spellings() -> None:
    """Only the lowercase hyphenated form is accepted as an id."""
    good = uuid7()
    assert is_uuid(good)
    assert not is_uuid(good.upper())
    assert not is_uuid(good.replace("-", ""))
    assert not is_uuid("not-a-uuid")


def test_uuid8_is_deterministic_version_8_and_keeps_parts_apart() -> None:
    """The same parts give the same RFC 9562 version-8 id; parts split differently give another."""
    made = uuid8("kserve", "source", "event")
    parsed = uuid.UUID(made)
    assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122)
    assert is_uuid(made)
    assert uuid8("kserve", "source", "event") == made
    assert uuid8("kserve", "sourc", "eevent") != made
