"""The server under a policy: what arrives is redacted and sealed; who reads sees plaintext by role."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.keystore.protection import load_protection
from inferlog.record import uuid7
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import AdminEntry
from inferlog.server import create_app
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record, prepare
from tests.helpers import backend_store, of_kind, present, wait_for
from tests.server.conftest import Server

PLANTED = "Ottoline Vexworth-55"
POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]

[[defaults.redact]]
detectors = ["card"]
"""

# Within the window a server accepts (INFERLOG_MAX_RECORD_AGE): a fixed date would age out of it.
RECENT = format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


@pytest.fixture(params=["sqlite", "postgresql"])
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """The API with a policy that seals input and output and redacts card numbers."""
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    store = backend_store(request, tmp_path / "server.db")
    keys = {
        role: create_key(store, role, ["*"], role)[0] for role in ("ingest", "reader", "auditor", "admin")
    }
    protection = load_protection(config)
    with TestClient(create_app(store, protection=protection)) as client:
        yield Server(client, store, keys, [])
    store.close()


def test_readers_see_plaintext_auditors_see_ciphertext(guarded: Server) -> None:
    """One record over HTTP: stored sealed; a reader gets it opened, the auditor gets ciphertext."""
    record_id = uuid7()
    record = {
        "id": record_id,
        "system": "credit",
        "ts": RECENT,
        "model": {"name": "credit-risk", "version": "3"},
        "input": {"name": PLANTED, "card": "4111 1111 1111 1111"},
        "output": {"decision": "declined"},
        "subject": "applicant-9",
    }
    posted = guarded.client.post("/v1/records", json=[record], headers=guarded.as_("ingest"))
    assert posted.status_code == 200, posted.text
    stored = guarded.store.get(record_id)
    assert stored is not None
    assert stored.body is not None
    assert PLANTED.encode() not in stored.body
    assert b"applicant-9" not in stored.body
    for role in ("reader",):
        got = guarded.client.get(
            f"/v1/records/{record_id}", params={"purpose": "review"}, headers=guarded.as_(role)
        )
        assert got.status_code == 200, got.text
        assert got.json()["input"] == {"name": PLANTED, "card": "[REDACTED:card]"}
        listed = guarded.client.get("/v1/records", params={"purpose": "review"}, headers=guarded.as_(role))
        assert listed.json()["entries"][0]["output"] == {"decision": "declined"}
    audited = guarded.client.get(
        f"/v1/records/{record_id}", params={"purpose": "audit"}, headers=guarded.as_("auditor")
    ).json()
    assert audited["input"].startswith("ilenc1:")
    assert "sealed" in audited
    assert PLANTED not in str(audited)


def test_the_server_records_its_policy_and_applies_retention_on_schedule(tmp_path: Path) -> None:
    """At start: a policy.changed entry, then a retention pass that purges what is past six months."""
    config = tmp_path / "inferlog.toml"
    config.write_text('[defaults]\nretention = "6mo"\n')
    store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
    old = prepare(make_record(system="credit", ts=dt.datetime.now(dt.UTC) - dt.timedelta(days=400)))
    fresh = prepare(make_record(system="credit"))
    store.append(old + fresh)
    app = create_app(store, auth=False, protection=load_protection(config), retention_every=3600)
    with TestClient(app):
        wait_for(lambda: present(store.get(old[0].entry.id)).purged, "the retention pass", seconds=20)
    assert not present(store.get(fresh[0].entry.id)).purged
    actions = [e.action for e in of_kind(AdminEntry, store.query(Query(kind="admin", limit=10)))]
    assert actions == ["policy.changed", "retention.applied"]
    store.close()


def _record(subject: str, **fields: object) -> dict[str, object]:
    return {
        "id": uuid7(), "system": "credit", "ts": RECENT,
        "model": {"name": "credit-risk", "version": "3"}, "input": {"name": PLANTED}, "subject": subject,
    } | fields  # fmt: skip


def test_queries_by_subject_match_the_pseudonym_and_log_no_raw_subject(guarded: Server) -> None:
    """?subject=raw finds the subject's records; the access entry names only the pseudonym."""
    record = _record("applicant-7")
    guarded.client.post("/v1/records", json=[record], headers=guarded.as_("ingest"))
    found = guarded.client.get(
        "/v1/records", params={"purpose": "dsar", "subject": "applicant-7"}, headers=guarded.as_("reader")
    ).json()["entries"]
    assert [e["id"] for e in found] == [record["id"]]
    trail = [e.body or b"" for e in guarded.store.query(Query(kind="access", limit=10))]
    assert trail
    assert not any(b"applicant-7" in body for body in trail)


def test_a_retried_record_is_a_duplicate_even_though_sealing_differs(guarded: Server) -> None:
    """The server seals each resend with a fresh key; the same id is still 'duplicate', not 'conflict'."""
    record = _record("applicant-8")
    first = guarded.client.post("/v1/records", json=[record], headers=guarded.as_("ingest")).json()
    again = guarded.client.post("/v1/records", json=[record], headers=guarded.as_("ingest")).json()
    assert [r["status"] for r in first["results"] + again["results"]] == ["new", "duplicate"]
    assert guarded.store.stats()["by_kind"].get("inference") == 1


def test_a_sealed_entry_without_its_data_key_is_refused(guarded: Server) -> None:
    """An entry claiming to be sealed but carrying no wrapped key could never be opened: 422."""
    record = _record(
        "applicant-9",
        input="ilenc1:AAAA",
        sealed={"fields": ["input"], "kc": "AAAA", "epoch": "epoch:credit:2026-05"},
    )
    answer = guarded.client.post("/v1/records", json=[record], headers=guarded.as_("ingest"))
    assert answer.status_code == 422
    assert "sealed.dek" in answer.text
    assert not guarded.store.stats()["by_kind"].get("inference")
