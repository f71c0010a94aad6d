"""The privacy claims end to end, on SQLite and PostgreSQL: what is on disk, what readers see, erasure.

A planted value is searched for in the raw database files (SQLite: the file, its WAL and the spool)
or a pg_dump (PostgreSQL): sealed, it is never there in plaintext; erased, its keys are gone too,
and `verify` still passes with the erased entries shown as purged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import inferlog
from inferlog.errors import UsageError
from inferlog.integrity.verify import audit
from inferlog.keystore import LocalKeyStore
from inferlog.privacy.policy import load_policy
from inferlog.retention import Governance, erase
from inferlog.store import open_store
from tests.helpers import present
from tests.retention.conftest import Backend

PLANTED = "Zebulon Quartermaine 7731"
EMAIL = "zeb.quartermaine@example.org"
SUBJECT = "customer-7731"
MODEL = inferlog.Model("scorer", "2.1")

POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]
retention = "1y"

[[defaults.redact]]
detectors = ["email", "iban", "card"]
paths = ["input"]
"""


def write_policy(folder: Path, text: str = POLICY) -> Path:
    path = folder / "inferlog.toml"
    path.write_text(text)
    return path


def open_log(backend: Backend, config: Path, tmp_path: Path) -> inferlog.Log:
    return inferlog.open(backend.url, system="credit", config=config, spool_dir=tmp_path / "spool")


def test_payloads_are_ciphertext_on_disk_and_plaintext_to_the_key_holder(
    backend: Backend, tmp_path: Path
) -> None:
    """Redacted before the spool, sealed before the store: no planted value in any raw byte."""
    config = write_policy(tmp_path)
    with open_log(backend, config, tmp_path) as log:
        record_id = log.record(
            model=MODEL,
            input={
                "applicant": PLANTED,
                "contact": f"write to {EMAIL}",
                "iban": "DE89 3704 0044 0532 0130 00",
            },
            output={"score": 0.31, "note": f"{PLANTED} declined"},
            subject=SUBJECT,
        )
        log.flush()
        seen = log.get(record_id)
        assert seen is not None
        assert seen.input["applicant"] == PLANTED  # the key holder reads plaintext
        assert seen.input["contact"] == "write to [REDACTED:email]"  # redaction is not reversible
        assert seen.input["iban"] == "[REDACTED:iban]"
        assert seen.output == {"score": 0.31, "note": f"{PLANTED} declined"}
        assert seen.subject != SUBJECT
        assert seen.subject.startswith("pse_")
        raw = backend.raw() + b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("*") if p.is_file())
        for secret in (PLANTED, EMAIL, SUBJECT, "3704 0044"):
            assert secret.encode() not in raw, f"{secret!r} is readable on disk ({backend.name})"
    store = open_store(backend.url)
    try:
        stored = store.get(record_id)
        assert stored is not None
        assert isinstance(stored.input, str)
        assert stored.input.startswith("ilenc1:")
        assert audit(store).ok
    finally:
        store.close()


def test_erasure_shreds_the_subject_and_verify_still_passes(backend: Backend, tmp_path: Path) -> None:
    """erase: key destroyed, payloads purged, an admin entry with a keyed hash, a certificate; proofs hold."""
    config = write_policy(tmp_path)
    with open_log(backend, config, tmp_path) as log:
        theirs = [
            log.record(model=MODEL, input={"who": PLANTED, "i": i}, output=i, subject=SUBJECT)
            for i in range(3)
        ]
        review = log.feedback(theirs[0], label="approved", comment=f"checked {PLANTED}")
        other = log.record(model=MODEL, input={"who": "someone else"}, output=1, subject="customer-1")
        log.flush()
    store = open_store(backend.url)
    keystore = LocalKeyStore(tmp_path / "keys.db")
    try:
        root_before = store.tree().root()
        gov = Governance(store, load_policy(config), keystore, actor="dpo")
        certificate = erase(gov, SUBJECT)
        assert certificate.records == 4  # three inferences and the review of one of them
        assert certificate.keys_destroyed == 1
        assert certificate.subject_ref.startswith("pse_")
        assert SUBJECT not in json.dumps(certificate.as_dict())
        for entry_id in theirs:
            stored = store.get(entry_id)
            assert stored is not None
            assert stored.purged
        reviewed = store.get(review)
        assert reviewed is not None
        assert reviewed.purged
        assert not present(store.get(other)).purged
        assert store.entry_keys(theirs) == {}
        assert store.tree().root() != root_before  # only grew: the admin entry
        report = audit(store)
        assert report.ok, report.problems
        assert report.purged == 4
        admin = store.get(certificate.admin_entry)
        assert admin is not None
        assert isinstance(admin.entry, inferlog.AdminEntry)
        assert admin.entry.action == "subject.erased"
        assert admin.entry.details["subject_ref"] == certificate.subject_ref
        raw = backend.raw()
        assert SUBJECT.encode() not in raw
        assert PLANTED.encode() not in raw
        assert not [
            k
            for k in keystore.list_keys("subject:")
            if k.destroyed_at is None and certificate.subject_ref in k.name
        ]
    finally:
        keystore.close()
        store.close()
    # A reader with the keys afterwards: the erased entries stay purged, the other opens.
    with open_log(backend, config, tmp_path) as log:
        assert present(log.get(theirs[1])).purged
        assert present(log.get(other)).input == {"who": "someone else"}


def test_a_legal_hold_on_the_subject_blocks_erasure(backend: Backend, tmp_path: Path) -> None:
    """While a hold names the subject, erase refuses and nothing is destroyed."""
    config = write_policy(
        tmp_path,
        POLICY + f'\n[[holds]]\nname = "case-17"\nreason = "litigation"\nsubject = "{SUBJECT}"\n',
    )
    with open_log(backend, config, tmp_path) as log:
        kept = log.record(model=MODEL, input={"who": PLANTED}, subject=SUBJECT)
        log.flush()
    store = open_store(backend.url)
    keystore = LocalKeyStore(tmp_path / "keys.db")
    try:
        with pytest.raises(UsageError, match="case-17"):
            erase(Governance(store, load_policy(config), keystore), SUBJECT)
        assert not present(store.get(kept)).purged
        assert all(k.destroyed_at is None for k in keystore.list_keys())
    finally:
        keystore.close()
        store.close()


def test_purged_plaintext_is_gone_from_the_files_too(backend: Backend, tmp_path: Path) -> None:
    """Without encryption, a purge must still leave no copy: SQLite zeroes freed pages, a dump skips dead rows."""
    config = write_policy(
        tmp_path, '[keystore]\npath = "keys.db"\n[defaults]\nencrypt = []\nretention = "1y"\n'
    )
    with open_log(backend, config, tmp_path) as log:
        planted = log.record(model=MODEL, input={"who": PLANTED}, subject=SUBJECT)
        log.record(model=MODEL, input={"who": "kept"}, subject="customer-1")
        log.flush()
    assert PLANTED.encode() in backend.raw()  # not sealed: there it is, until erased
    store = open_store(backend.url)
    keystore = LocalKeyStore(tmp_path / "keys.db")
    try:
        erase(Governance(store, load_policy(config), keystore), SUBJECT)
        assert present(store.get(planted)).purged
    finally:
        keystore.close()
        store.close()
    assert PLANTED.encode() not in backend.raw()


def test_erasure_the_store_refuses_destroys_no_key(pg_url: str, pg_app_role: str, tmp_path: Path) -> None:
    """On PostgreSQL's application role the purge is refused first, so the subject's key survives."""
    from inferlog.errors import StoreError
    from inferlog.store.postgres import PostgresStore, migrate
    from tests.fix_postgres import as_role

    config = write_policy(tmp_path)
    migrate(pg_url, app_role=pg_app_role)
    with inferlog.open(pg_url, system="credit", config=config, spool_dir=tmp_path / "spool") as log:
        kept = log.record(model=MODEL, input={"who": PLANTED}, subject=SUBJECT)
    store = PostgresStore(as_role(pg_url, pg_app_role))
    keystore = LocalKeyStore(tmp_path / "keys.db")
    try:
        with pytest.raises(StoreError, match="owner"):
            erase(Governance(store, load_policy(config), keystore), SUBJECT)
        assert all(k.destroyed_at is None for k in keystore.list_keys())
        assert not present(store.get(kept)).purged
    finally:
        keystore.close()
        store.close()
