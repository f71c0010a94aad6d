"""``inferlog.apikeys``: the key format, and issuing, listing and revoking keys on record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferlog.apikeys import KEY_PATTERN, checksum, create_key, issue_key, list_keys, revoke_key
from inferlog.errors import NotFound, UsageError
from inferlog.record.model import AdminEntry
from inferlog.store import Store, open_store
from inferlog.store.base import Query


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    yield opened
    opened.close()


def _trail(store: Store) -> list[tuple[str | None, str | None, dict[str, object]]]:
    entries = [found.entry for found in store.query(Query(kind="admin"))]
    return [(e.action, e.actor, e.details) for e in entries if isinstance(e, AdminEntry)]


def test_a_key_is_well_formed_and_only_its_hash_is_kept(store: Store) -> None:
    """An issued key matches the format, its checksum holds, and the store keeps no part of the secret."""
    token, stored = issue_key(store, "reader", ["credit"], "analyst", actor="ops")
    match = KEY_PATTERN.match(token)
    assert match is not None
    assert match.group("kid") == stored.kid
    assert match.group("check") == checksum(token.rsplit("_", 1)[0])
    assert match.group("secret").encode() not in stored.secret_hash


def test_issue_and_revoke_are_admin_entries(store: Store) -> None:
    """Issuing and revoking each append one admin entry naming the actor and the key."""
    _, stored = issue_key(store, "ingest", ["credit", "fraud"], "model server", actor="ops")
    revoke_key(store, stored.kid, actor="ops")
    assert _trail(store) == [
        ("key.created", "ops", {"kid": stored.kid, "role": "ingest", "systems": ["credit", "fraud"]}),
        ("key.revoked", "ops", {"kid": stored.kid}),
    ]
    [listed] = list_keys(store)
    assert (listed.kid, listed.revoked_at is not None) == (stored.kid, True)


def test_create_key_is_off_the_record(store: Store) -> None:
    """``create_key`` (for setting a log up) keeps the key and appends nothing to the log."""
    create_key(store, "admin", ["*"], "fixture")
    assert [k.name for k in list_keys(store)] == ["fixture"]
    assert store.size() == 0


def test_bad_requests_are_refused_without_a_trace(store: Store) -> None:
    """An unknown role or kid is a clear error, and nothing is kept or put on record."""
    with pytest.raises(UsageError, match="role must be one of"):
        issue_key(store, "god", ["*"], "n", actor="ops")
    with pytest.raises(NotFound, match="no active key"):
        revoke_key(store, "0123456789ab", actor="ops")
    assert (list_keys(store), store.size()) == ([], 0)
