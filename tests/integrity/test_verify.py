"""Verification, and tamper drills on SQLite and PostgreSQL: each kind of tampering is detected and located."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inferlog.errors import UsageError
from inferlog.integrity.tree import root_at
from inferlog.integrity.verify import AuditReport, audit, verify_checkpoint, verify_record
from inferlog.ledger.checkpoint import Checkpoint, sign_checkpoint
from inferlog.ledger.merkle import CompactRange
from tests.integrity.conftest import SignedLog
from tests.integrity.tampering import Tamperer

Change = Callable[[Tamperer], Any]


def _audit(log: SignedLog, offbox: bool = True) -> AuditReport:
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


def _edit_body(seq: int) -> Change:
    def change(t: Tamperer) -> None:
        t.execute(f"UPDATE {t.table} SET body = replace(body, '\"i\":', '\"j\":') WHERE seq = %s", [seq])

    return change


def _edit_leaf_version(seq: int) -> Change:
    def change(t: Tamperer) -> None:
        ((leaf,),) = t.execute(f"SELECT leaf FROM {t.table} WHERE seq = %s", [seq])
        forged = bytes(leaf).replace(b'"version":"', b'"version":"9', 1)
        t.execute(
            f"UPDATE {t.table} SET leaf = %s, model_version = '9' || model_version WHERE seq = %s",
            [forged, seq],
        )

    return change


DRILLS: list[tuple[str, Change, int, str]] = [
    ("payload-byte", _edit_body(42), 42, "payload does not match its commitment"),
    (
        "model-version-column",
        lambda t: t.execute(f"UPDATE {t.table} SET model_version = 'x' WHERE seq = 77"),
        77,
        "model_version",
    ),
    ("model-version-leaf", _edit_leaf_version(120), 120, "leaf_hash does not match"),
    (
        "timestamp",
        lambda t: t.execute(f"UPDATE {t.table} SET ts = {t.one_microsecond_later()} WHERE seq = 250"),
        250,
        "column ts",
    ),
    ("deleted-row", lambda t: t.execute(f"DELETE FROM {t.table} WHERE seq = 133"), 133, "missing"),
]


@pytest.mark.parametrize(("change", "seq", "says"), [d[1:] for d in DRILLS], ids=[d[0] for d in DRILLS])
def test_row_tampering_is_located(signed_log: SignedLog, change: Change, seq: int, says: str) -> None:
    """Editing or deleting one row is detected, and the report names that seq first."""
    signed_log.tamper(change)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert says in str(report.problems[0])


def test_swapped_rows_are_detected_between_checkpoints(signed_log: SignedLog) -> None:
    """Swapping two entries' positions breaks the signed root; the report bounds where (101..200)."""

    def swap(t: Tamperer) -> None:
        t.execute(f"UPDATE {t.table} SET seq = -1 WHERE seq = 150")
        t.execute(f"UPDATE {t.table} SET seq = 150 WHERE seq = 160")
        t.execute(f"UPDATE {t.table} SET seq = 160 WHERE seq = -1")

    signed_log.tamper(swap)
    report = _audit(signed_log)
    assert not report.ok
    if signed_log.url.startswith("sqlite"):
        assert report.first_bad_seq == 101
        assert "between seq 101 and 200" in str(report.problems[0])
    else:  # PostgreSQL's id index still maps each id to its old seq: that names both rows exactly
        assert report.first_bad_seq == 150
        assert [p.seq for p in report.problems if "entry_ids" in p.what] == [150, 160]
        assert any("between seq 101 and 200" in str(p) for p in report.problems)


def test_inserted_forged_row_is_detected(signed_log: SignedLog) -> None:
    """A forged row slipped into the middle shifts every later leaf and fails the signed roots."""

    def insert(t: Tamperer) -> None:
        t.execute(f"UPDATE {t.table} SET seq = -seq WHERE seq > 180")
        t.execute(f"UPDATE {t.table} SET seq = -seq + 1 WHERE seq < 0")
        t.execute(_copy_row_sql(t))

    signed_log.tamper(insert)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == 181  # its leaf names another id than its row
    assert any("stored tree state" in str(p) for p in report.problems)


def _copy_row_sql(t: Tamperer) -> str:
    """INSERT a copy of row 180 as seq 181 with a new id (every other column as it was)."""
    if t.table == "entries":
        names = [r[1] for r in t.execute("PRAGMA table_info(entries)")]
        new_id = "'01900000-0000-7000-8000-000000000000'"
    else:
        names = [
            r[0]
            for r in t.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'inferlog' AND table_name = 'entries' ORDER BY ordinal_position"
            )
        ]
        new_id = "'01900000-0000-7000-8000-000000000000'::uuid"
    values = ["181" if n == "seq" else new_id if n == "id" else n for n in names]
    return f"INSERT INTO {t.table} ({', '.join(names)}) SELECT {', '.join(values)} FROM {t.table} WHERE seq = 180"


def test_truncated_tail_is_detected(signed_log: SignedLog) -> None:
    """Deleting the newest entries (and their checkpoint rows) is caught by the off-box checkpoints."""

    def truncate(t: Tamperer) -> None:
        t.execute(f"DELETE FROM {t.table} WHERE seq > 250")
        t.execute(f"DELETE FROM {t.checkpoints} WHERE size > 250")

    signed_log.tamper(truncate)
    report = _audit(signed_log)
    assert not report.ok
    assert report.first_bad_seq == 251
    assert any("covers 300 entries but the log holds 250" in str(p) for p in report.problems)


def test_restored_backup_is_detected(signed_log: SignedLog, tmp_path: Path) -> None:
    """Restoring an older copy of the database is caught by the off-box checkpoints and the trusted one."""
    trusted = tmp_path / "trusted.note"
    assert verify_checkpoint(signed_log.store, signed_log.verifiers, trusted).first_use
    signed_log.tamper(lambda t: t.snapshot())  # an honest backup at size 300
    signed_log.add(100)
    assert verify_checkpoint(signed_log.store, signed_log.verifiers, trusted).ok  # trusted moves to 400
    signed_log.tamper(lambda t: t.restore())
    report = _audit(signed_log)
    assert not report.ok
    assert any("covers 400 entries but the log holds 300" in str(p) for p in report.problems)
    rollback = verify_checkpoint(signed_log.store, signed_log.verifiers, trusted)
    assert not rollback.ok
    assert "shrank" in str(rollback.problems[0])
    assert len(rollback.evidence) == 2


def test_rewritten_history_without_the_key_is_detected(signed_log: SignedLog) -> None:
    """Rewriting an entry and recomputing commitment, leaf, hashes, tree state and checkpoint roots fails the signatures."""

    def rewrite(t: Tamperer) -> None:
        ((body, salt, leaf),) = t.execute(f"SELECT body, salt, leaf FROM {t.table} WHERE seq = 57")
        body = body.replace('"i":56', '"i":5600')
        meta = json.loads(bytes(leaf))
        meta["commit"] = base64.b64encode(hashlib.sha256(bytes(salt) + body.encode()).digest()).decode()
        new_leaf = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        new_hash = hashlib.sha256(b"\x00" + new_leaf).digest()
        t.execute(
            f"UPDATE {t.table} SET body = %s, leaf = %s, leaf_hash = %s WHERE seq = 57",
            [body, new_leaf, new_hash],
        )

    store = signed_log.tamper(rewrite)
    tree = CompactRange()
    tree.extend(store.leaf_hashes(0, 300))

    def fix_tree(t: Tamperer) -> None:  # ...the attacker also recomputes the tree state and tiles...
        t.execute(f"UPDATE {t.ledger_state} SET frontier = %s", [tree.to_bytes()])
        t.execute(f"DELETE FROM {t.tiles}")

    store = signed_log.tamper(fix_tree)
    roots = {size: root_at(store, size) for size in (100, 200, 300)}

    def fix_checkpoints(t: Tamperer) -> None:  # ...and the checkpoint table's roots, but cannot re-sign
        for size, root in roots.items():
            t.execute(f"UPDATE {t.checkpoints} SET root = %s WHERE size = %s", [root, size])

    signed_log.tamper(fix_checkpoints)
    report = _audit(signed_log, offbox=False)
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
    signed_log.tamper(_edit_body(10))
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
    forged = sign_checkpoint(
        Checkpoint("test.example/log", 300, b"\x07" * 32), signed_log.checkpointer.signer.signer
    )
    trusted.write_bytes(forged)
    report = verify_checkpoint(signed_log.store, signed_log.verifiers, trusted)
    assert not report.ok
    assert "fork" in str(report.problems[0])
    assert report.evidence == [forged, latest.note]


def test_parallel_audit_finds_exactly_what_the_sequential_one_finds(
    signed_log: SignedLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking rows in worker processes (ranges of 64 here) gives the same report as one process, gaps across range edges included."""
    import inferlog.integrity.verify as verify_module

    def damage(t: Tamperer) -> None:
        t.execute(f"DELETE FROM {t.table} WHERE seq IN (127, 128, 129)")  # across the 128 edge
        t.execute(f"UPDATE {t.table} SET body = replace(body, '\"i\":', '\"j\":') WHERE seq = 200")

    signed_log.tamper(damage)
    monkeypatch.setattr(verify_module, "_RANGE", 64)
    one = audit(signed_log.store, signed_log.verifiers, signed_log.offbox.notes(), workers=1)
    two = audit(signed_log.store, signed_log.verifiers, signed_log.offbox.notes(), workers=2)
    assert [str(p) for p in one.problems] == [str(p) for p in two.problems]
    assert (one.entries, one.size, one.root, one.checkpoints) == (
        two.entries,
        two.size,
        two.root,
        two.checkpoints,
    )
    assert one.first_bad_seq == 127
    assert "entries 127..129 are missing" in str(one.problems[0])


def test_a_checkpoint_for_another_origin_fails_verification(signed_log: SignedLog, tmp_path: Path) -> None:
    """A note the same key signed for another log (same size and root) is refused by every verification."""
    store = signed_log.store
    root = root_at(store, 300)
    other = sign_checkpoint(Checkpoint("other.example/log", 300, root), signed_log.checkpointer.signer.signer)
    report = audit(store, signed_log.verifiers, [other])
    assert not report.ok
    assert any("expected 'test.example/log'" in str(p) for p in report.problems)
    assert audit(
        store, signed_log.verifiers, [other], origin="other.example/log"
    ).problems  # the store's own fail
    trusted = tmp_path / "trusted.note"
    trusted.write_bytes(other)
    with pytest.raises(UsageError, match=r"expected 'test\.example/log'"):
        verify_checkpoint(store, signed_log.verifiers, trusted)
    wrong = verify_record(store, signed_log.ids[5], signed_log.verifiers, origin="other.example/log")
    assert not wrong.ok
    assert "expected 'other.example/log'" in str(wrong.problems[0])
