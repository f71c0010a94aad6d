"""Attacks on the privacy policy: a writer that claims its record is already sealed.

A client holding only an ingest key posts a record with its own ``sealed`` block and plaintext
fields, hoping the log skips redaction, pseudonyms and encryption. The log must check every claimed
seal with its own keys (or refuse it, 422 naming the field), apply the policy to whatever is not
sealed, and never answer a read with a 500 because of what a writer stored.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.cli import cli
from inferlog.ingest import Ingestor
from inferlog.keystore.protection import load_protection
from inferlog.privacy.protect import Protection
from inferlog.privacy.seal import Sealer
from inferlog.record import uuid7
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import Entry, InferenceRecord, Model
from inferlog.sdk.http import HttpTransport
from inferlog.server import create_app
from inferlog.store import Store
from inferlog.store.base import Query
from inferlog.store.postgres import PostgresStore
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import in_process_client, inference

EMAIL = "wilhelmina.quarrington@example.org"
SECRET = "hunter2-correct-horse-battery"  # noqa: S105 - a planted value, not a credential
SUBJECT = "applicant-raw-4471"
POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]

[[defaults.redact]]
detectors = ["email"]
"""

# Inside the window a server accepts (INFERLOG_MAX_RECORD_AGE): a fixed date would age out of it.
RECENT = format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


def _forged(**overrides: Any) -> dict[str, Any]:
    """A record whose ``sealed`` block is made up by the client, with every payload in clear."""
    record: dict[str, Any] = {
        "id": uuid7(),
        "system": "credit",
        "ts": RECENT,
        "model": {"name": "credit-risk", "version": "3"},
        "input": {"email": EMAIL, "secret": SECRET},
        "output": {"decision": "declined", "contact": EMAIL},
        "subject": SUBJECT,
        "sealed": {
            "fields": ["input"],
            "kc": "AAAA",
            "epoch": "epoch:credit:2026-05",
            "dek": {"epoch_ref": "epoch:credit:2026-05#1", "blob": "AAAA"},
        },
    }
    record.update(overrides)
    return record


def _database_bytes(store: Store, where: str) -> bytes:
    """Everything the database holds, as raw bytes: the SQLite files, or every PostgreSQL row."""
    if isinstance(store, SQLiteStore):
        folder = Path(where).parent
        return b"".join(
            p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith(Path(where).name)
        )
    with psycopg.connect(where) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'inferlog'"
        ).fetchall()
        rows = [
            str(row).encode()
            for (table,) in tables
            for row in conn.execute(f'SELECT * FROM inferlog."{table}"').fetchall()
        ]
    return b"\n".join(rows)


def _absent(data: bytes, *needles: str) -> None:
    for needle in needles:
        raw = needle.encode()
        assert raw not in data, f"{needle!r} is in the database in clear"
        assert raw.hex().encode() not in data, f"{needle!r} is in the database (hex-encoded bytea)"


class Deployed:
    """An API over one backend, with the URL or file its database lives in."""

    def __init__(self, client: TestClient, store: Store, where: str, keys: dict[str, str]) -> None:
        self.client = client
        self.store = store
        self.where = where
        self.keys = keys

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def raw(self) -> bytes:
        return _database_bytes(self.store, self.where)


def _deploy(
    request: pytest.FixtureRequest, tmp_path: Path, policy: str | None
) -> Iterator[tuple[Deployed, Protection | None]]:
    if request.param == "sqlite":
        where = str(tmp_path / "server.db")
        store: Store = SQLiteStore(f"sqlite:///{where}")
    else:
        where = request.getfixturevalue("pg_url")
        store = PostgresStore(where)
    protection = None
    if policy is not None:
        config = tmp_path / "inferlog.toml"
        config.write_text(policy)
        protection = load_protection(config)
    keys = {role: create_key(store, role, ["*"], role)[0] for role in ("ingest", "reader", "auditor")}
    with TestClient(create_app(store, protection=protection)) as client:
        yield Deployed(client, store, where, keys), protection
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def plain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployed]:
    """The default install: no policy file, no key store."""
    for deployed, _ in _deploy(request, tmp_path, None):
        yield deployed


@pytest.fixture(params=["sqlite", "postgresql"])
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Deployed, Protection]]:
    """A policy that redacts e-mail addresses, pseudonymizes subjects and seals input and output."""
    for deployed, protection in _deploy(request, tmp_path, POLICY):
        assert protection is not None
        yield deployed, protection


def test_a_forged_seal_is_refused_on_the_default_install(plain: Deployed) -> None:
    """Without a key store nobody can check a seal, so a record claiming one is refused with 422."""
    answer = plain.client.post("/v1/records", json=[_forged()], headers=plain.as_("ingest"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"].startswith("sealed")
    assert not plain.store.stats()["by_kind"].get("inference")
    _absent(plain.raw(), EMAIL, SECRET, SUBJECT)


def test_a_forged_seal_is_refused_under_a_policy(guarded: tuple[Deployed, Protection]) -> None:
    """Under a policy a seal the server cannot open is refused with 422, and no plaintext is stored."""
    deployed, _ = guarded
    for ndjson in (False, True):
        record = _forged()
        if ndjson:
            answer = deployed.client.post(
                "/v1/records",
                content=json.dumps(record).encode() + b"\n",
                headers={**deployed.as_("ingest"), "content-type": "application/x-ndjson"},
            )
        else:
            answer = deployed.client.post("/v1/records", json=[record], headers=deployed.as_("ingest"))
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"].startswith("sealed")
    assert not deployed.store.stats()["by_kind"].get("inference")
    _absent(deployed.raw(), EMAIL, SECRET, SUBJECT)


def test_a_seal_without_fields_does_not_skip_the_policy(guarded: tuple[Deployed, Protection]) -> None:
    """An empty ``sealed`` block (no fields, no data key) is not a way around sealing either."""
    deployed, _ = guarded
    record = _forged(sealed={"fields": [], "kc": "AAAA", "epoch": "epoch:credit:2026-05"})
    answer = deployed.client.post("/v1/records", json=[record], headers=deployed.as_("ingest"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"].startswith("sealed")
    _absent(deployed.raw(), EMAIL, SECRET, SUBJECT)


def test_a_seal_under_another_key_store_is_refused(
    guarded: tuple[Deployed, Protection], tmp_path: Path
) -> None:
    """A real seal made with keys this server does not hold cannot be checked: 422."""
    deployed, _ = guarded
    other = tmp_path / "other"
    other.mkdir()
    (other / "inferlog.toml").write_text(POLICY)
    foreign = load_protection(other / "inferlog.toml")
    entry = _entry()
    sealed = foreign(entry)
    answer = deployed.client.post("/v1/records", json=[_wire(sealed)], headers=deployed.as_("ingest"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"].startswith("sealed")
    _absent(deployed.raw(), SUBJECT)


def test_a_genuine_partial_seal_is_accepted_and_the_rest_is_protected(
    guarded: tuple[Deployed, Protection],
) -> None:
    """A seal the server can open is accepted; the fields it left in clear are still redacted and sealed."""
    deployed, protection = guarded
    assert protection.keyring is not None
    only_input = Sealer(protection.keyring, lambda system: ["input"])
    entry = only_input(_entry())
    assert entry.sealed is not None
    assert entry.sealed.fields == ["input"]
    assert EMAIL in json.dumps(_wire(entry)["output"])  # the output travels in clear
    answer = deployed.client.post("/v1/records", json=[_wire(entry)], headers=deployed.as_("ingest"))
    assert answer.status_code == 200, answer.text
    _absent(deployed.raw(), EMAIL, SECRET, SUBJECT)
    got = deployed.client.get(
        f"/v1/records/{entry.id}", params={"purpose": "review"}, headers=deployed.as_("reader")
    )
    assert got.status_code == 200, got.text
    assert got.json()["output"] == {"decision": "declined", "contact": "[REDACTED:email]"}
    assert got.json()["input"]["secret"] == SECRET  # sealed by the client, opened for the reader


def test_an_undecryptable_stored_entry_reads_as_unreadable_not_500(
    guarded: tuple[Deployed, Protection],
) -> None:
    """A sealed entry that does not open (stored by an older, unchecked server) reads as unreadable, never a 500."""
    deployed, protection = guarded
    genuine = protection(_entry())
    assert genuine.sealed is not None
    assert genuine.sealed.dek is not None
    garbled = msgspec.structs.replace(genuine, input="ilenc1:" + base64.b64encode(os.urandom(40)).decode())
    short_key = msgspec.structs.replace(
        protection(_entry()),
        sealed=msgspec.structs.replace(
            genuine.sealed, dek=msgspec.structs.replace(genuine.sealed.dek, blob=b"\0\0\0")
        ),
    )
    Ingestor(deployed.store).append(
        [garbled, short_key]
    )  # straight into the store, as an unchecked writer did
    for entry in (garbled, short_key):
        got = deployed.client.get(
            f"/v1/records/{entry.id}", params={"purpose": "review"}, headers=deployed.as_("reader")
        )
        assert got.status_code == 200, got.text
        assert got.json()["unreadable"]
    listed = deployed.client.get("/v1/records", params={"purpose": "review"}, headers=deployed.as_("reader"))
    assert listed.status_code == 200, listed.text
    assert [bool(e.get("unreadable")) for e in listed.json()["entries"]] == [True, True]


def test_import_refuses_a_forged_seal(tmp_path: Path) -> None:
    """`inferlog import` checks a claimed seal too: one line, exit 1, and nothing in the database."""
    where = tmp_path / "log.db"
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(_forged()) + "\n")
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{where}", "import", str(source)])
    assert result.exit_code == 1, result.output
    assert "sealed" in result.output
    _absent(b"".join(p.read_bytes() for p in tmp_path.glob("log.db*")), EMAIL, SECRET, SUBJECT)


def _entry() -> InferenceRecord:
    return InferenceRecord(
        id=uuid7(),
        system="credit",
        ts=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        model=Model("credit-risk", "3"),
        input={"email": EMAIL, "secret": SECRET},
        output={"decision": "declined", "contact": EMAIL},
        subject=SUBJECT,
    )


def _wire(entry: Entry) -> dict[str, Any]:
    """An entry as a client posts it (JSON, bytes as base64)."""
    data: dict[str, Any] = msgspec.to_builtins(entry)
    return data


def test_the_sdk_sealing_with_the_servers_key_store_still_delivers(
    guarded: tuple[Deployed, Protection], tmp_path: Path
) -> None:
    """Entries an SDK sealed under the server's own key store are delivered over HTTP; a foreign seal is refused."""
    deployed, protection = guarded
    transport = HttpTransport("http://testserver", deployed.keys["ingest"])
    transport._http = in_process_client(
        deployed.client.app,
        headers={"Authorization": f"Bearer {deployed.keys['ingest']}", "User-Agent": "inferlog-sdk"},
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "inferlog.toml").write_text(POLICY)
    ours, foreign = protection(_entry()), load_protection(other / "inferlog.toml")(_entry())
    results = transport.send([ours, foreign])
    assert [r.status for r in results] == ["new", "invalid"]
    assert "sealed" in (results[1].reason or "")
    got = deployed.client.get(
        f"/v1/records/{ours.id}", params={"purpose": "review"}, headers=deployed.as_("reader")
    )
    assert got.json()["input"] == {"email": "[REDACTED:email]", "secret": SECRET}
    _absent(deployed.raw(), EMAIL, SECRET, SUBJECT)


@pytest.mark.parametrize("version", ["99999999999999999999", "9" * 5000, "²", "-1"])
def test_a_claimed_seal_naming_an_impossible_key_version_is_a_422(
    guarded: tuple[Deployed, Protection], version: str
) -> None:
    """A key reference whose version no key store can hold (past 64 bits, not ASCII digits) is refused as a bad seal, not a 500."""
    deployed, _ = guarded
    for where in ("epoch_ref", "subject_ref"):
        dek = {
            "epoch_ref": "epoch:credit:2026-05#1",
            "blob": "AAAA",
            where: f"epoch:credit:2026-05#{version}",
        }
        record = _forged(
            sealed={"fields": ["input"], "kc": "AAAA", "epoch": "epoch:credit:2026-05", "dek": dek}
        )
        answer = deployed.client.post("/v1/records", json=[record], headers=deployed.as_("ingest"))
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"].startswith("sealed")
    _absent(deployed.raw(), EMAIL, SECRET, SUBJECT)


@pytest.mark.parametrize("where", ["sealed", "sealed.dek"])
def test_an_unknown_field_inside_a_seal_is_refused_naming_it(
    guarded: tuple[Deployed, Protection], where: str
) -> None:
    """A genuine seal with an extra field (in ``sealed`` or its ``dek``) is refused with 422 naming it, not silently dropped."""
    deployed, protection = guarded
    wire = _wire(protection(_entry()))
    block = wire["sealed"] if where == "sealed" else wire["sealed"]["dek"]
    block["note"] = EMAIL
    answer = deployed.client.post("/v1/records", json=[wire], headers=deployed.as_("ingest"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == f"{where}.note"
    _absent(deployed.raw(), EMAIL, SECRET, SUBJECT)


def test_a_kserve_half_waiting_for_its_partner_is_not_kept_in_clear(
    guarded: tuple[Deployed, Protection], tmp_path: Path
) -> None:
    """Under a policy with a key store a KServe half waits in the pending file sealed (no payload in clear), and still joins."""
    deployed, _ = guarded
    app = deployed.client.app
    app.state.kserve_pending_path = tmp_path / "pending.db"  # type: ignore[attr-defined]
    app.state.kserve_timeout = 3600.0  # type: ignore[attr-defined]
    when = format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))

    def half(kind: str, body: dict[str, Any]) -> Any:
        headers = {
            **deployed.as_("ingest"),
            "Ce-Specversion": "1.0",
            "Ce-Id": "ev-1",
            "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
            "Ce-Source": "credit-predictor",
            "Ce-Time": when,
            "Content-Type": "application/json",
        }
        return deployed.client.post("/v1/ingest/kserve?system=credit", headers=headers, json=body)

    request = {"inputs": [{"name": "applicant", "shape": [1], "datatype": "BYTES", "data": [EMAIL, SECRET]}]}
    assert half("request", request).status_code == 202
    keeper = app.state.kserve_pending  # type: ignore[attr-defined]
    _absent(_pending_contents(keeper.path), EMAIL, SECRET)
    response = {"outputs": [{"name": "decision", "shape": [1], "datatype": "BYTES", "data": [SECRET]}]}
    assert half("response", response).status_code == 202
    (stored,) = deployed.store.query(Query(kind="inference")).entries
    assert stored.entry.sealed is not None
    _absent(_pending_contents(keeper.path), EMAIL, SECRET)
    _absent(deployed.raw(), EMAIL, SECRET)


def _pending_contents(path: str) -> bytes:
    """The pending file's bytes, plus every kept half's body decoded from the base64 its JSON form holds."""
    import sqlite3

    raw = b"".join(
        Path(path + suffix).read_bytes() for suffix in ("", "-wal") if Path(path + suffix).exists()
    )
    with sqlite3.connect(path) as conn:
        events = [
            bytes(row[0])
            for row in conn.execute("SELECT event FROM pending UNION ALL SELECT event FROM refused")
        ]
    for event in events:
        if event.startswith(b"{"):
            raw += base64.b64decode(json.loads(event).get("data") or "")
    return raw


def test_the_sdk_reader_gets_an_unreadable_entry_as_unreadable_not_an_error(
    guarded: tuple[Deployed, Protection],
) -> None:
    """``log.reader`` reads a page holding an entry that does not open: that entry is marked unreadable, the others are read."""
    from inferlog.sdk.http import HttpReader

    deployed, protection = guarded
    genuine = protection(_entry())
    garbled = msgspec.structs.replace(
        protection(_entry()), input="ilenc1:" + base64.b64encode(os.urandom(40)).decode()
    )
    Ingestor(deployed.store).append([genuine, garbled])  # straight into the store, as an unchecked writer did
    reader = HttpReader("http://testserver", deployed.keys["reader"])
    reader._http = in_process_client(deployed.client.app, headers=deployed.as_("reader"))
    page = reader.query("review")
    assert [bool(s.unreadable) for s in page.entries] == [False, True]
    assert inference(page.entries[0].entry).input == {"email": "[REDACTED:email]", "secret": SECRET}
    one = reader.get(garbled.id, "review")
    assert one is not None
    assert one.unreadable
