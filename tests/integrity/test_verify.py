"""Verification, and tamper drills: each kind of tampering is detected and located."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from inferlog.integrity.verify import audit, verify_checkpoint, verify_record
from inferlog.store.sqlite import SQLiteStore, path_of
from tests.integrity.conftest import SignedLog

Tamper = Callable[[sqlite3.Connection], None]


def _tamper(log: SignedLog, change: Tamper) -> SQLiteStore:
    """Change the database file as an attacker with file access would (triggers dropped first)."""
    url = log.store.url
    log.store.close()
    conn = sqlite3.connect(path_of(url), isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    change(conn)
    conn.close()
    log.store = SQLiteStore(url)
    return log.store


def _audit(log: SignedLog, offbox: bool = True):  # type: ignore[no-untyped-def]
    return audit(log.store, log.verifiers, log.offbox.notes() if offbox else ())


def test_untouched_log_verifies(signed_log: SignedLog) -> None:
    """A log nobody touched passes the full audit with every checkpoint recomputed."""
    report = _audit(signed_log)
    assert report.ok, report.problems
    assert (report.entries, report.size, report.checkpoints) == (300, 300, 3)  # off-box copies agree
    assert report.warnings == []


def test_audit_without_key_warns(signed_log: SignedLog) -> None:
    """Without a verifier key the audit still recomputes roots but says signatures were not checked."""
    report = audit(signed_log.store, [])
    assert report.ok
    assert any("NOT checked" in w for w in report.warnings)


def _body_edit(seq: int) -> Tamper:
    def change(conn: sqlite3.Connection) -> None:
        (body,) = conn.execute("SELECT body FROM entries WHERE seq = ?", (seq,)).fetchone()
        conn.execute("UPDATE entries SET body = ? WHERE seq = ?", (body.replace('"i":', '"j":', 1), seq))

    return change


def _leaf_version_edit(seq: int) -> Tamper:
    def change(conn: sqlite3.Connection) -> None:
        (leaf,) = conn.execute("SELECT leaf FROM entries WHERE seq = ?", (seq,)).fetchone()
        forged = bytes(leaf).replace(b'"version":"', b'"version":"9', 1)
        conn.execute(
            "UPDATE entries SET leaf = ?, model_version = '9' || model_version WHERE seq = ?", (forged, seq)
        )

    return change


@pytest.mark.parametrize(
    ("change", "seq", "says"),
    [
        (_body_edit(42), 42, "payload does not match its commitment"),
        (lambda c: c.execute("UPDATE entries SET model_version = 'x' WHERE seq = 77"), 77, "model_version"),
        (_leaf_version_edit(120), 120, "leaf hash does not match"),
        (lambda c: c.execute("UPDATE entries SET ts = ts + 1 WHERE seq = 250"), 250, "column ts"),
        (lambda c: c.execute("DELETE FROM entries WHERE seq = 133"), 133, "missing"),
    ],
    ids=["payload-byte", "model-version-column", "model-version-leaf", "timestamp", "deleted-row"],
)
def test_row_tampering_is_located(signed_log: SignedLog, change: Tamper, seq: int, says: str) -> None:
    """Editing or deleting one row is detected, and the report names that seq first."""
    _tamper(signed_log, change)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert says in str(report.problems[0])


def test_swapped_rows_are_detected_between_checkpoints(signed_log: SignedLog) -> None:
    """Swapping two entries' positions breaks the signed root; the report bounds where (101..200)."""

    def swap(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE entries SET seq = -1 WHERE seq = 150")
        conn.execute("UPDATE entries SET seq = 150 WHERE seq = 160")
        conn.execute("UPDATE entries SET seq = 160 WHERE seq = -1")

    _tamper(signed_log, swap)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == 101
    assert "between seq 101 and 200" in str(report.problems[0])


def test_inserted_forged_row_is_detected(signed_log: SignedLog) -> None:
    """A well-formed forged row slipped into the middle shifts every later leaf and fails the signed roots."""

    def insert(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT * FROM entries WHERE seq = 180").fetchone()
        conn.execute("UPDATE entries SET seq = -seq WHERE seq > 180")
        conn.execute("UPDATE entries SET seq = -seq + 1 WHERE seq < 0")
        forged = list(row)
        forged[0] = 181
        forged[1] = "01900000-0000-7000-8000-000000000000"
        conn.execute(f"INSERT INTO entries VALUES ({','.join('?' * len(forged))})", forged)  # noqa: S608

    _tamper(signed_log, insert)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == 181  # its leaf names another id than its row
    assert any("stored tree state" in str(p) for p in report.problems)


def test_truncated_tail_is_detected(signed_log: SignedLog) -> None:
    """Deleting the newest entries (and their checkpoint rows) is caught by the off-box checkpoints."""

    def truncate(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM entries WHERE seq > 250")
        conn.execute("DELETE FROM checkpoints WHERE size > 250")

    _tamper(signed_log, truncate)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == 251
    assert any("covers 300 entries but the log holds 250" in str(p) for p in report.problems)


def test_restored_backup_is_detected(signed_log: SignedLog, tmp_path: Path) -> None:
    """Restoring an older copy of the database is caught by the off-box checkpoints and the trusted one."""
    trusted = tmp_path / "trusted.note"
    assert verify_checkpoint(signed_log.store, signed_log.verifiers, trusted).first_use
    db = path_of(signed_log.store.url)
    backup = tmp_path / "backup.db"
    signed_log.store._writer.execute("VACUUM INTO ?", (str(backup),))  # an honest backup at size 300
    signed_log.add(100)
    assert verify_checkpoint(signed_log.store, signed_log.verifiers, trusted).ok  # trusted moves to 400
    signed_log.store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, db)
    signed_log.store = SQLiteStore(signed_log.store.url)
    report = _audit(signed_log)
    assert not report.ok
    assert any("covers 400 entries but the log holds 300" in str(p) for p in report.problems)
    rollback = verify_checkpoint(signed_log.store, signed_log.verifiers, trusted)
    assert not rollback.ok
    assert "shrank" in str(rollback.problems[0])
    assert len(rollback.evidence) == 2


def test_rewritten_history_without_the_key_is_detected(signed_log: SignedLog) -> None:
    """Rewriting an entry and recomputing commitment, leaf, hashes, tree state and checkpoint roots fails the signatures."""

    def rewrite(conn: sqlite3.Connection) -> None:
        body, salt, leaf = conn.execute("SELECT body, salt, leaf FROM entries WHERE seq = 57").fetchone()
        body = body.replace('"i":56', '"i":5600')
        meta = json.loads(leaf)
        meta["commit"] = base64.b64encode(hashlib.sha256(salt + body.encode()).digest()).decode()
        new_leaf = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        new_hash = hashlib.sha256(b"\x00" + new_leaf).digest()
        conn.execute(
            "UPDATE entries SET body = ?, leaf = ?, leaf_hash = ? WHERE seq = 57", (body, new_leaf, new_hash)
        )

    store = _tamper(signed_log, rewrite)
    # The attacker also recomputes the tree state, tiles and the checkpoint table's roots...
    from inferlog.integrity.tree import root_at
    from inferlog.ledger.merkle import CompactRange

    hashes = store.leaf_hashes(0, 300)
    tree = CompactRange()
    tree.extend(hashes)

    def fix_tree(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE ledger_state SET frontier = ?", (tree.to_bytes(),))
        conn.execute("DELETE FROM tiles")

    store = _tamper(signed_log, fix_tree)
    roots = {size: root_at(store, size) for size in (100, 200, 300)}
    _tamper(
        signed_log,
        lambda c: [
            c.execute("UPDATE checkpoints SET root = ? WHERE size = ?", (r, s)) for s, r in roots.items()
        ],
    )
    report = _audit(signed_log, offbox=False)  # ...but cannot re-sign the notes
    assert not report.ok
    assert report.first_bad_seq == 1
    assert "between seq 1 and 100" in str(report.problems[0])


def test_verify_record_proves_inclusion(signed_log: SignedLog) -> None:
    """A record covered by a checkpoint gets an inclusion proof that verifies against the signed root."""
    report = verify_record(signed_log.store, signed_log.ids[150], signed_log.verifiers)
    assert report.ok, report.problems
    assert (report.seq, report.checkpoint_size) == (151, 300)
    assert len(report.proof) == 9  # ceil(log2(300))


def test_verify_record_detects_an_edited_payload(signed_log: SignedLog) -> None:
    """verify record fails for an entry whose payload was edited after the fact."""
    _tamper(signed_log, _body_edit(10))
    report = verify_record(signed_log.store, signed_log.ids[9], signed_log.verifiers)
    assert not report.ok
    assert "commitment" in str(report.problems[0])


def test_verify_record_not_yet_checkpointed(signed_log: SignedLog) -> None:
    """An entry newer than the last checkpoint is reported as not yet covered."""
    signed_log.add(5)
    report = verify_record(signed_log.store, signed_log.ids[-1], signed_log.verifiers)
    assert not report.ok
    assert "no signed checkpoint covers" in str(report.problems[0])


def test_verify_checkpoint_detects_a_fork(signed_log: SignedLog, tmp_path: Path) -> None:
    """A trusted checkpoint with a different root at the same size is reported as a fork with both notes."""
    trusted = tmp_path / "trusted.note"
    verify_checkpoint(signed_log.store, signed_log.verifiers, trusted)
    latest = signed_log.store.checkpoints()[-1]
    from inferlog.ledger.checkpoint import Checkpoint, sign_checkpoint

    forged = sign_checkpoint(
        Checkpoint("test.example/log", 300, b"\x07" * 32), signed_log.checkpointer.signer.signer
    )
    trusted.write_bytes(forged)
    report = verify_checkpoint(signed_log.store, signed_log.verifiers, trusted)
    assert not report.ok
    assert "fork" in str(report.problems[0])
    assert report.evidence == [forged, latest.note]
