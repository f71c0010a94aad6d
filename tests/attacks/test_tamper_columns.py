"""Tamper drills: forge every stored column, one at a time, on SQLite and PostgreSQL; `verify` names it.

The attacker can write the database (the file, or a PostgreSQL superuser) and drops the append-only
triggers first. What queries, stats, erasure and `show` read must not be changeable unseen: each
column is either committed by the leaf (id, kind, system, ts, model, status), copied from the
committed body (latency, request/trace/session ids, subject, feedback's inference id, actor, the
PostgreSQL attributes copy), the body and its salt themselves (the commitment), the leaf and its hash
(the Merkle tree), or an index that must agree with them (PostgreSQL's ``entry_ids``; the wrapped data
keys' names in ``entry_keys``). The drill list is checked against the database's own column list,
so a column added later without a drill fails here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import inferlog.integrity.verify as verify_module
from inferlog.errors import IntegrityError
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_verifiers, public_key_path
from inferlog.integrity.verify import AuditReport, audit, verify_record
from inferlog.ledger.checkpoint import NoteVerifier
from inferlog.privacy.seal import Opener, Sealer
from inferlog.record.ids import uuid7
from inferlog.record.model import AccessEntry, AdminEntry, Entry, FeedbackEntry, Model
from inferlog.store import Store, open_store
from inferlog.testing import make_record, prepare
from tests.helpers import backend_url
from tests.integrity.tampering import Tamperer, tamperer_for
from tests.privacy.test_seal import MemoryKeyring

FULL, FEEDBACK, SEALED, ACCESS, ADMIN, PLAIN, SEALED_TOO = 1, 2, 3, 4, 5, 6, 7
OTHER_ID = "01900000-0000-7000-8000-000000000000"


@dataclass
class RichLog:
    """A signed log whose first entries fill every column: one entry of each kind, two sealed ones."""

    url: str
    backend: str
    store: Store
    tamperer: Tamperer
    verifiers: list[NoteVerifier]
    keyring: MemoryKeyring
    ids: list[str]

    def table(self, name: str) -> str:
        return f"inferlog.{name}" if self.backend == "postgresql" else name

    def tamper(self, change: Callable[[RichLog], Any]) -> None:
        self.store.close()
        change(self)
        self.store = open_store(self.url)

    def audit(self) -> AuditReport:
        return audit(self.store, self.verifiers)


def _entries(keyring: MemoryKeyring) -> list[Entry]:
    now = dt.datetime.now(dt.UTC)
    seal = Sealer(keyring, lambda system: ("input", "output"))
    full = make_record(
        request_id="req-1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        session_id="session-1",
        subject="customer-42",
        latency_ms=12.25,
        attributes={"channel": "web", "n": 3, "big": 1e30, "ok": True},
        actor="model-server",
    )
    feedback = FeedbackEntry(
        id=uuid7(), system="test-system", ts=now, inference_id=full.id, label=1, actor="a"
    )
    sealed = seal(make_record(subject="customer-7", request_id="req-3", input={"email": "x@example.org"}))
    access = AccessEntry(id=uuid7(), system="test-system", ts=now, action="query", purpose="audit", actor="b")
    admin = AdminEntry(id=uuid7(), system="*", ts=now, action="keys.create", actor="ops")
    sealed_too = seal(make_record(subject="customer-8"))
    plain = [make_record(model=Model("m", str(i))) for i in range(10)]
    return [full, feedback, sealed, access, admin, plain[0], sealed_too, *plain[1:]]


@pytest.fixture(params=["sqlite", "postgresql"])
def rich_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RichLog]:
    url = backend_url(request, tmp_path / "log.db")
    tamperer = tamperer_for(url)
    keyring = MemoryKeyring()
    entries = _entries(keyring)
    store = open_store(url)
    store.append(prepare(*entries))
    key_path = tmp_path / "signer.key"
    signer = init_signer(key_path, origin="drill.test/log")
    Checkpointer(store, CheckpointSigner.beside_key(signer, key_path)).checkpoint()
    verifiers = load_verifiers([str(public_key_path(key_path))])
    log = RichLog(url, request.param, store, tamperer, verifiers, keyring, [e.id for e in entries])
    yield log
    log.store.close()
    tamperer.close()


def _set(column: str, value: str, seq: int) -> Callable[[RichLog], Any]:
    return lambda log: log.tamperer.execute(
        f"UPDATE {log.table('entries')} SET {column} = {value} WHERE seq = {seq}"
    )


def _set_bytes(column: str, value: Callable[[RichLog], bytes], seq: int) -> Callable[[RichLog], Any]:
    return lambda log: log.tamperer.execute(
        f"UPDATE {log.table('entries')} SET {column} = %s WHERE seq = {seq}", [value(log)]
    )


def _leaf_of(seq: int) -> Callable[[RichLog], bytes]:
    def read(log: RichLog) -> bytes:
        ((leaf,),) = log.tamperer.execute(f"SELECT leaf FROM {log.table('entries')} WHERE seq = {seq}")
        return bytes(leaf)

    return read


Drill = tuple[Callable[[RichLog], Any], int, tuple[str, ...]]

# column -> (the forgery, the seq it hits, words the report must say about that seq)
ENTRY_DRILLS: dict[str, Drill] = {
    "seq": (_set("seq", "seq + 1000", PLAIN), PLAIN, ("missing",)),
    "id": (_set("id", f"'{OTHER_ID}'", FULL), FULL, ("column id",)),
    "kind": (_set("kind", "'admin'", FULL), FULL, ("column kind",)),
    "system": (_set("system", "'elsewhere'", FULL), FULL, ("column system",)),
    "ts": (lambda log: _set("ts", log.tamperer.one_microsecond_later(), FULL)(log), FULL, ("column ts",)),
    "model_name": (_set("model_name", "'forged'", FULL), FULL, ("column model_name",)),
    "model_version": (_set("model_version", "'forged'", FULL), FULL, ("column model_version",)),
    "status": (_set("status", "'error'", FULL), FULL, ("column status",)),
    "latency_ms": (_set("latency_ms", "999", FULL), FULL, ("column latency_ms",)),
    "request_id": (_set("request_id", "'req-2'", FULL), FULL, ("column request_id",)),
    "trace_id": (_set("trace_id", "'forged'", FULL), FULL, ("column trace_id",)),
    "session_id": (_set("session_id", "'forged'", FULL), FULL, ("column session_id",)),
    "subject": (_set("subject", "'someone-else'", FULL), FULL, ("column subject",)),
    "inference_id": (_set("inference_id", f"'{OTHER_ID}'", FEEDBACK), FEEDBACK, ("column inference_id",)),
    "actor": (_set("actor", "'forged'", ACCESS), ACCESS, ("column actor",)),
    "body": (_set("body", "replace(body, 'web', 'WEB')", FULL), FULL, ("body", "commitment")),
    "salt": (_set_bytes("salt", lambda log: b"\x00" * 16, FULL), FULL, ("salt", "commitment")),
    "leaf": (_set_bytes("leaf", _leaf_of(PLAIN), FULL), FULL, ("leaf_hash does not match",)),
    "leaf_hash": (_set_bytes("leaf_hash", lambda log: b"\x00" * 32, FULL), FULL, ("leaf_hash",)),
    "attributes": (  # PostgreSQL only: the searchable copy of the body's attributes
        _set("attributes", """'{"channel": "forged", "n": 3}'""", FULL),
        FULL,
        ("column attributes",),
    ),
}
# Not committed by the leaf or the body: when the store accepted the entry. No read decides anything
# on it (filters, stats, retention and erasure use ts); docs/integrity.md says so.
NOT_COMMITTED = {"logged_at"}


def _columns(log: RichLog, table: str) -> set[str]:
    if log.backend == "sqlite":
        return {row[1] for row in log.tamperer.execute(f"PRAGMA table_info({table})")}
    rows = log.tamperer.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'inferlog' AND table_name = %s",
        [table],
    )
    return {row[0] for row in rows}


def _assert_named(report: AuditReport, seq: int, words: tuple[str, ...]) -> None:
    assert not report.ok, "verify passed a forged column"
    about = [p.what for p in report.problems if p.seq == seq]
    assert about, f"no problem names seq {seq}: {[str(p) for p in report.problems]}"
    for word in words:
        assert any(word in what for what in about), f"{word!r} not in {about}"


def test_every_entries_column_has_a_drill(rich_log: RichLog) -> None:
    """The drill list covers every column the entries table has (except logged_at, which nothing commits)."""
    columns = _columns(rich_log, "entries")
    drilled = set(ENTRY_DRILLS) if rich_log.backend == "postgresql" else set(ENTRY_DRILLS) - {"attributes"}
    assert columns == drilled | NOT_COMMITTED


def test_an_untouched_rich_log_verifies(rich_log: RichLog) -> None:
    """A log using every column (all kinds, sealed entries, attributes) passes: no false alarm."""
    report = rich_log.audit()
    assert report.ok, [str(p) for p in report.problems]
    assert report.checkpoints == 1
    for entry_id in rich_log.ids:
        assert verify_record(rich_log.store, entry_id, rich_log.verifiers).ok


@pytest.mark.parametrize("column", sorted(ENTRY_DRILLS))
def test_forging_an_entries_column_is_named(rich_log: RichLog, column: str) -> None:
    """Forging one column of one entry makes verify fail, naming that entry's seq and the column."""
    if column == "attributes" and rich_log.backend == "sqlite":
        column = "body"  # SQLite keeps no copy: attribute filters read the committed body itself
    change, seq, words = ENTRY_DRILLS[column]
    rich_log.tamper(change)
    _assert_named(rich_log.audit(), seq, words)


def test_forged_attributes_copy_on_an_entry_without_attributes(rich_log: RichLog) -> None:
    """On PostgreSQL, giving an entry without attributes a searchable copy is named too."""
    if rich_log.backend == "sqlite":  # SQLite keeps no copy: attribute filters read the body itself
        assert "attributes" not in _columns(rich_log, "entries")
        return
    rich_log.tamper(_set("attributes", """'{"channel": "web"}'""", PLAIN))
    _assert_named(rich_log.audit(), PLAIN, ("column attributes",))


# -- entry_ids (PostgreSQL): the id index that get(id), `show` and proofs go through --------------------


def _swap_index_ids(log: RichLog) -> None:
    table, first, second = log.table("entry_ids"), log.ids[FULL - 1], log.ids[PLAIN - 1]
    log.tamperer.execute(f"UPDATE {table} SET id = %s WHERE id = %s", [OTHER_ID, first])
    log.tamperer.execute(f"UPDATE {table} SET id = %s WHERE id = %s", [first, second])
    log.tamperer.execute(f"UPDATE {table} SET id = %s WHERE id = %s", [second, OTHER_ID])


INDEX_DRILLS: dict[str, Drill] = {
    "id": (_swap_index_ids, FULL, ("entry_ids",)),
    "seq": (
        lambda log: log.tamperer.execute(
            f"UPDATE {log.table('entry_ids')} SET seq = seq + 100000 WHERE seq = {FULL}"
        ),
        FULL,
        ("(entry_ids) has no row",),
    ),
    "ts": (
        lambda log: log.tamperer.execute(
            f"UPDATE {log.table('entry_ids')} SET ts = ts + interval '1 microsecond' WHERE seq = {FULL}"
        ),
        FULL,
        ("entry_ids",),
    ),
}


@pytest.mark.parametrize("column", sorted(INDEX_DRILLS))
def test_forging_the_id_index_is_named(rich_log: RichLog, column: str) -> None:
    """On PostgreSQL, pointing entry_ids at another row (id, seq or ts forged) is named; SQLite has no such table."""
    if rich_log.backend == "sqlite":
        assert "entry_ids" not in {r[0] for r in rich_log.tamperer.execute("SELECT name FROM sqlite_master")}
        return
    assert _columns(rich_log, "entry_ids") == set(INDEX_DRILLS)
    change, seq, words = INDEX_DRILLS[column]
    if column == "id":  # the attack from the review: `show <id>` printed another entry
        rich_log.tamper(change)
        shown = rich_log.store.get(rich_log.ids[FULL - 1])
        assert shown is not None
        assert shown.entry.id != rich_log.ids[FULL - 1]
    else:
        rich_log.tamper(change)
    _assert_named(rich_log.audit(), seq, words)


# -- entry_keys: sealed entries' wrapped data keys -----------------------------------------------------


def _key_update(assignment: str, seq: int) -> Callable[[RichLog], Any]:
    return lambda log: log.tamperer.execute(
        f"UPDATE {log.table('entry_keys')} SET {assignment} WHERE id = %s", [log.ids[seq - 1]]
    )


KEY_DRILLS: dict[str, Drill] = {
    "id": (_key_update(f"id = '{OTHER_ID}'", SEALED), SEALED, ("no wrapped data key",)),
    "epoch_ref": (_key_update("epoch_ref = 'epoch:elsewhere:2020-01#1'", SEALED), SEALED, ("epoch_ref",)),
    "subject_ref": (_key_update("subject_ref = 'subject:someone-else#1'", SEALED), SEALED, ("subject_ref",)),
}


@pytest.mark.parametrize("column", sorted(KEY_DRILLS))
def test_forging_a_wrapped_key_row_is_named(rich_log: RichLog, column: str) -> None:
    """Moving a sealed entry's key row away, or renaming the keys that wrap it, is named by verify."""
    assert _columns(rich_log, "entry_keys") == {*KEY_DRILLS, "blob"}
    change, seq, words = KEY_DRILLS[column]
    rich_log.tamper(change)
    _assert_named(rich_log.audit(), seq, words)


def test_a_swapped_key_blob_never_opens_to_another_entry(rich_log: RichLog) -> None:
    """A blob copied from another sealed entry cannot be checked without the keys, but no read opens it.

    The wrap is AES-GCM bound to the entry's id, and the body commits to the data key (kc), so the
    forged row makes reading that entry fail loudly instead of showing another entry's payload.
    """
    table = rich_log.table("entry_keys")
    ((blob,),) = rich_log.tamperer.execute(
        f"SELECT blob FROM {table} WHERE id = %s", [rich_log.ids[SEALED_TOO - 1]]
    )
    rich_log.tamper(
        lambda log: log.tamperer.execute(
            f"UPDATE {table} SET blob = %s WHERE id = %s", [bytes(blob), log.ids[SEALED - 1]]
        )
    )
    stored = rich_log.store.get(rich_log.ids[SEALED - 1])
    assert stored is not None
    wrapped = rich_log.store.entry_keys([stored.entry.id])[stored.entry.id]
    with pytest.raises(IntegrityError):
        Opener(rich_log.keyring).open(stored.entry, wrapped)


def test_attributes_copy_with_a_number_for_a_boolean_is_named(rich_log: RichLog) -> None:
    """On PostgreSQL, a copy that says 1 where the body says true (equal in Python, not in jsonb) is named."""
    if rich_log.backend == "sqlite":  # SQLite keeps no copy: attribute filters read the body itself
        assert "attributes" not in _columns(rich_log, "entries")
        return
    forged = """'{"channel": "web", "n": 3, "big": 1e30, "ok": 1}'"""
    rich_log.tamper(_set("attributes", forged, FULL))
    _assert_named(rich_log.audit(), FULL, ("column attributes",))


# -- tiles: the perfect-subtree hashes that proofs read -------------------------------------------------


def _forge_tile(log: RichLog) -> None:
    log.tamperer.execute(
        f"UPDATE {log.table('tiles')} SET hash = %s WHERE level = 8 AND idx = 1", [b"\x09" * 32]
    )


def _delete_tile(log: RichLog) -> None:
    log.tamperer.execute(f"DELETE FROM {log.table('tiles')} WHERE level = 8 AND idx = 2")


def _add_tile(log: RichLog) -> None:
    log.tamperer.execute(
        f"INSERT INTO {log.table('tiles')} (level, idx, hash) VALUES (8, 3, %s)", [b"\x09" * 32]
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_forge_tile, "level-8 tiles 0..1 do not hash"),
        (_delete_tile, "level-8 tiles 2..2 do not hash"),
        (_add_tile, "level-8 tile covers entries beyond"),
    ],
    ids=["forged", "deleted", "beyond-the-log"],
)
def test_forging_a_tile_is_named(rich_log: RichLog, change: Callable[[RichLog], None], says: str) -> None:
    """A stored tile (what inclusion and consistency proofs read) forged, deleted or added is reported."""
    rich_log.store.append(prepare(*[make_record() for _ in range(768 - rich_log.store.size())]))
    assert rich_log.audit().ok
    rich_log.tamper(change)
    report = rich_log.audit()
    assert not report.ok
    assert any(says in p.what for p in report.problems), [str(p) for p in report.problems]


# -- rows outside what the log's state counts ---------------------------------------------------------


def test_a_row_past_the_logs_size_is_named(rich_log: RichLog) -> None:
    """A row added after the last entry (the log's state left alone), which queries show, is named by verify."""
    table, after = rich_log.table("entries"), len(rich_log.ids) + 1
    copied = sorted(_columns(rich_log, "entries") - {"seq", "id"})

    def add_row(log: RichLog) -> None:
        log.tamperer.execute(
            f"INSERT INTO {table} (seq, id, {', '.join(copied)}) "
            f"SELECT {after}, '{OTHER_ID}', {', '.join(copied)} FROM {table} WHERE seq = {PLAIN}"
        )

    rich_log.tamper(add_row)
    _assert_named(rich_log.audit(), after, ("column id",))


@pytest.mark.parametrize("seq", [-5, 999_999])
def test_an_id_index_row_pointing_nowhere_is_named(rich_log: RichLog, seq: int) -> None:
    """On PostgreSQL, an entry_ids row for no entry (which would make an append drop that id) is named."""
    if rich_log.backend == "sqlite":  # SQLite has no id index: get(id) reads the entries table itself
        return
    rich_log.tamper(
        lambda log: log.tamperer.execute(
            f"INSERT INTO {log.table('entry_ids')} (id, seq, ts) VALUES (%s, %s, now())", [OTHER_ID, seq]
        )
    )
    report = rich_log.audit()
    assert not report.ok
    assert any(OTHER_ID in p.what and f"seq {seq}" in p.what for p in report.problems), report.problems


@pytest.mark.parametrize("chunk", [4, 5, 6])  # the forged row's seq before, at and after a chunk's end
def test_a_second_row_at_one_seq_is_named_wherever_the_chunks_end(
    rich_log: RichLog, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """On PostgreSQL (key (seq, ts)), a forged second row at a seq, in another partition, is named even at the end of a read chunk."""
    if rich_log.backend == "sqlite":  # seq is SQLite's primary key alone: a second row cannot exist
        return
    monkeypatch.setattr(verify_module, "_CHUNK", chunk)  # chunks of 20,000 rows, made small
    table = rich_log.table("entries")
    copied = sorted(_columns(rich_log, "entries") - {"ts", "model_name"})
    rich_log.tamper(
        lambda log: log.tamperer.execute(
            f"INSERT INTO {table} (ts, model_name, {', '.join(copied)}) "
            f"SELECT ts - interval '400 days', 'forged', {', '.join(copied)} FROM {table} WHERE seq = 5"
        )
    )
    _assert_named(rich_log.audit(), 5, ("two rows hold seq 5",))
