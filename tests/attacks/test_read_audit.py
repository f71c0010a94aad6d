"""Reads leave a trail, and the trail leaks nothing: every interface that reads payloads files an
access entry (who, why, how many) under each system it read; ids of other systems look unknown; key
changes and erasures are on record whichever face made them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import inferlog
from inferlog.apikeys import create_key
from inferlog.cli import cli
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import AccessEntry, AdminEntry
from inferlog.store import Store, open_store
from inferlog.store.base import Query
from inferlog.store.postgres import PostgresStore
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import backend_store, present
from tests.server.conftest import Server, _serve

CLI_ACTOR = f"cli:{getpass.getuser()}"
PLANTED = "Ottoline Vexworth-55"

# Inside the window a server accepts (INFERLOG_MAX_RECORD_AGE): a fixed date would age out of it.
RECENT = format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _trail(store: Store, kind: str = "access") -> list[Any]:
    return [s.entry for s in store.query(Query(kind=kind, limit=1000)).entries]


def _access(url: str) -> list[AccessEntry]:
    store = open_store(url)
    try:
        return [e for e in _trail(store) if isinstance(e, AccessEntry)]
    finally:
        store.close()


def _admin(url: str) -> list[AdminEntry]:
    store = open_store(url)
    try:
        return [e for e in _trail(store, "admin") if isinstance(e, AdminEntry)]
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """The API over each backend, with one key per role (the server tests' fixture)."""
    yield from _serve(backend_store(request, tmp_path / "api.db"), tmp_path)


@pytest.fixture
def logged(tmp_path: Path) -> tuple[str, list[str]]:
    """A SQLite log (no policy file) with two credit records of subject subj-1 and one fraud record."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    ids = []
    for system in ("credit", "credit", "fraud"):
        with inferlog.open(url, system=system, spool_dir=tmp_path / "spool") as log:
            ids.append(
                log.record(
                    model=inferlog.Model("m", "1"),
                    input={"name": PLANTED},
                    output={"score": 1},
                    subject="subj-1",
                )
            )
    return url, ids


def test_cli_query_show_and_tail_leave_access_entries(logged: tuple[str, list[str]]) -> None:
    """`query`, `show` and `tail` each file an access entry naming the OS user and a purpose."""
    url, ids = logged
    assert run("--db", url, "query", "--json").exit_code == 0
    assert run("--db", url, "show", ids[0], "--purpose", "appeal #7").exit_code == 0
    assert run("--db", url, "tail", "--system", "fraud", "--kind", "inference").exit_code == 0
    trail = _access(url)
    assert [(e.action, e.system, e.count) for e in trail] == [
        ("query", "credit", 2), ("query", "fraud", 1), ("show", "credit", 1), ("tail", "fraud", 1),
    ]  # fmt: skip
    assert {e.actor for e in trail} == {CLI_ACTOR}
    assert [e.purpose for e in trail] == ["operator inspection (cli)"] * 2 + [
        "appeal #7",
        "operator inspection (cli)",
    ]


def test_sdk_reads_leave_access_entries(logged: tuple[str, list[str]], tmp_path: Path) -> None:
    """`Log.get` and `Log.query` file access entries with a purpose and the OS user."""
    url, ids = logged
    with inferlog.open(url, system="credit", spool_dir=tmp_path / "spool") as log:
        found = log.get(ids[0], purpose="model debugging")
        assert found is not None
        page = log.query(system="credit", kind="inference")
        assert len(page.entries) == 2
    trail = _access(url)
    assert [(e.action, e.system, e.count, e.purpose) for e in trail] == [
        ("get", "credit", 1, "model debugging"), ("query", "credit", 2, "application read (sdk)"),
    ]  # fmt: skip
    assert all(e.actor == f"sdk:{getpass.getuser()}" for e in trail)


def test_a_multi_system_reader_files_one_access_entry_per_system(api: Server) -> None:
    """A reader scoped to credit and fraud, querying without system=, files its read under each system."""
    both = create_key(api.store, "reader", ["credit", "fraud"], "two-system analyst")[0]
    credit_auditor = create_key(api.store, "auditor", ["credit"], "credit auditor")[0]
    records = [_rec("credit"), _rec("credit"), _rec("fraud")]
    assert api.client.post("/v1/records", json=records, headers=api.as_("ingest_all")).status_code == 200
    answer = api.client.get(
        "/v1/records", params={"purpose": "monitoring"}, headers={"Authorization": f"Bearer {both}"}
    )
    assert answer.status_code == 200, answer.text
    trail = _trail(api.store)
    assert sorted((e.system, e.count) for e in trail) == [("credit", 2), ("fraud", 1)]
    seen = api.client.get(
        "/v1/records",
        params={"purpose": "audit", "kind": "access"},
        headers={"Authorization": f"Bearer {credit_auditor}"},
    ).json()["entries"]
    assert [(e["system"], e["purpose"], e["count"]) for e in seen] == [("credit", "monitoring", 2)]


def test_ids_of_other_systems_answer_like_unknown_ids(api: Server) -> None:
    """Record, proof and feedback routes answer 404 alike for an unknown id and an id in another system."""
    credit_id = api.client.post("/v1/records", json=[_rec("credit")], headers=api.as_("ingest")).json()[
        "results"
    ][0]["id"]
    unknown = "01a00000-0000-7000-8000-000000000000"
    api.client.post("/v1/checkpoint", headers=api.as_("admin"))
    probes: list[tuple[str, str, dict[str, Any], str]] = [
        ("get", "/v1/records/{}", {"params": {"purpose": "p"}}, "reader_fraud"),
        ("get", "/v1/records/{}/proof", {}, "reader_fraud"),
    ]
    fraud_ingest = create_key(api.store, "ingest", ["fraud"], "fraud model server")[0]
    for method, path, extra, role in probes:
        answers = [
            api.client.request(method, path.format(rid), headers=api.as_(role), **extra)
            for rid in (credit_id, unknown)
        ]
        assert [a.status_code for a in answers] == [404, 404], [a.text for a in answers]
        assert answers[0].json()["message"].replace(credit_id, unknown) == answers[1].json()["message"]
    feedback = [
        api.client.post(
            f"/v1/records/{rid}/feedback",
            json={"label": 1},
            headers={"Authorization": f"Bearer {fraud_ingest}"},
        )
        for rid in (credit_id, unknown)
    ]
    assert [a.status_code for a in feedback] == [404, 404], [a.text for a in feedback]
    assert feedback[0].json()["message"].replace(credit_id, unknown) == feedback[1].json()["message"]


def test_cli_key_create_and_revoke_are_admin_entries(tmp_path: Path) -> None:
    """`keys create` and `keys revoke` on the command line are on record like their HTTP routes."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    created = run(
        "--db", url, "keys", "create", "--role", "reader", "--system", "credit", "--name", "analyst"
    )
    assert created.exit_code == 0, created.output
    kid = created.stdout.strip().split("_")[2]
    revoked = run("--db", url, "keys", "revoke", kid)
    assert revoked.exit_code == 0, revoked.output
    trail = _admin(url)
    assert [(e.action, e.actor, e.details.get("kid")) for e in trail] == [
        ("key.created", CLI_ACTOR, kid), ("key.revoked", CLI_ACTOR, kid),
    ]  # fmt: skip
    assert trail[0].details["role"] == "reader"
    assert trail[0].details["systems"] == ["credit"]


def test_erase_works_on_the_default_install(logged: tuple[str, list[str]], tmp_path: Path) -> None:
    """Without a policy file `erase --subject` purges the subject's payloads, is on record, and verify passes."""
    from inferlog.retention.erasure import subject_commitment

    url, ids = logged
    result = run("--db", url, "erase", "--subject", "subj-1", "--yes")
    assert result.exit_code == 0, result.output
    certificate = json.loads(result.stdout)
    assert certificate["records"] == 3
    assert certificate["keys_destroyed"] == 0
    store = open_store(url)
    try:
        assert all(present(store.get(i)).purged for i in ids)
        (erased,) = [e for e in _trail(store, "admin") if e.action == "subject.erased"]
        assert erased.id == certificate["admin_entry"]
        assert "subj-1" not in json.dumps(erased.details)
        salt = bytes.fromhex(certificate["subject_salt"])  # only the certificate can tie it to the subject
        assert (
            erased.details["subject_ref"] == subject_commitment("subj-1", salt) == certificate["subject_ref"]
        )
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("log.db*"))
    assert PLANTED.encode() not in raw
    verified = run("--db", url, "verify")
    assert verified.exit_code == 0, verified.output


def _rec(system: str) -> dict[str, Any]:
    return {
        "system": system,
        "ts": RECENT,
        "model": {"name": "m", "version": "1"},
        "input": {"x": 1},
        "output": {"y": 2},
    }


def test_erase_on_the_default_install_leaves_no_raw_identifier_behind(
    logged: tuple[str, list[str]], tmp_path: Path
) -> None:
    """After `erase --subject` without a policy file the subject cannot be searched for: no purged row keeps the raw identifier, and verify passes."""
    url, _ = logged
    assert run("--db", url, "erase", "--subject", "subj-1", "--yes").exit_code == 0
    for path in tmp_path.glob("log.db*"):
        raw = path.read_bytes()
        at = raw.find(b"subj-1")
        assert at < 0, (path.name, raw[max(0, at - 200) : at + 50])
    found = run("--db", url, "query", "--subject", "subj-1", "--json")  # (this lookup is on record itself)
    assert found.exit_code == 0, found.output
    assert found.stdout.strip() in ("", "[]"), found.stdout
    verified = run("--db", url, "verify")
    assert verified.exit_code == 0, verified.output


@pytest.fixture(params=["sqlite", "postgresql"])
def purgeable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend, opened with a role that may purge."""
    store = backend_store(request, tmp_path / "purge.db")
    yield store
    store.close()


def test_a_purge_clears_the_identifier_columns_copied_from_the_body(purgeable: Store) -> None:
    """A purged entry keeps its leaf but not the subject, request, trace, session ids or actor copied from its body, on both backends."""
    from inferlog.ingest import Ingestor
    from inferlog.store.base import Purge
    from inferlog.testing import make_record

    entry = make_record(
        system="credit",
        subject="subj-9",
        request_id="req-9",
        trace_id="tr-9",
        session_id="se-9",
        actor="clerk-9",
    )
    kept = make_record(system="credit", subject="subj-8", request_id="req-8")
    Ingestor(purgeable).append([entry, kept])
    assert purgeable.purge(Purge(subjects=("subj-9",))).count == 1
    for name in ("subject", "request_id", "trace_id", "session_id"):
        assert purgeable.query(Query(**{name: getattr(entry, name)})).entries == [], name
    assert [s.id for s in purgeable.query(Query(request_id="req-8")).entries] == [kept.id]
    stored = purgeable.get(entry.id)
    assert stored is not None
    assert stored.purged
    assert stored.leaf_hash


def test_feedback_filed_under_another_system_is_not_shown_as_a_review(
    logged: tuple[str, list[str]], tmp_path: Path
) -> None:
    """An override that a fraud writer files about a credit inference (through /v1/records) does not appear in `show` of that inference."""
    url, ids = logged
    credit_id = ids[0]
    with inferlog.open(url, system="fraud", spool_dir=tmp_path / "spool") as log:
        log.feedback(credit_id, override={"decision": "approved"}, comment="forged by another system")
        genuine = inferlog.open(url, system="credit", spool_dir=tmp_path / "spool2")
    with genuine:
        genuine.feedback(credit_id, label="declined", comment="genuine review")
    shown = run("--db", url, "show", credit_id)
    assert shown.exit_code == 0, shown.output
    assert "genuine review" in shown.stdout
    assert "forged by another system" not in shown.stdout


def test_entries_purged_before_the_upgrade_lose_their_identifiers_when_it_runs(tmp_path: Path) -> None:
    """A SQLite log purged under an older schema keeps the subject in its purged rows until the next open migrates it away."""
    import sqlite3

    from inferlog.ingest import Ingestor
    from inferlog.store.migrations import sqlite as backend
    from inferlog.testing import make_record

    url = f"sqlite:///{tmp_path / 'old.db'}"
    full = list(backend.MIGRATIONS)
    backend.MIGRATIONS[:] = full[:3]
    try:
        old = SQLiteStore(url)
        entry = make_record(system="credit", subject="subj-old-5", actor="clerk-5")
        Ingestor(old).append([entry])
        old.close()
    finally:
        backend.MIGRATIONS[:] = full
    with sqlite3.connect(tmp_path / "old.db") as conn:  # the purge as the older version made it
        conn.execute("UPDATE entries SET body = NULL, salt = NULL")
        assert conn.execute("SELECT subject FROM entries").fetchone() == ("subj-old-5",)
    SQLiteStore(url).close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT subject, actor FROM entries").fetchone() == (None, None)


def test_postgres_entries_purged_before_the_upgrade_lose_their_identifiers(pg_url: str) -> None:
    """A PostgreSQL log purged under an older schema loses the subject of its purged rows when migrated."""
    import psycopg

    from inferlog.ingest import Ingestor
    from inferlog.store.migrations import postgres as backend
    from inferlog.testing import make_record

    full = list(backend.MIGRATIONS)
    backend.MIGRATIONS[:] = full[:2]
    try:
        old = PostgresStore(pg_url)
        Ingestor(old).append([make_record(system="credit", subject="subj-old-6", session_id="se-6")])
        old.close()
    finally:
        backend.MIGRATIONS[:] = full
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the purge as the older version made it
        conn.execute("UPDATE inferlog.entries SET body = NULL, salt = NULL")
        assert conn.execute("SELECT subject FROM inferlog.entries").fetchone() == ("subj-old-6",)
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT subject, session_id FROM inferlog.entries").fetchone() == (None, None)
