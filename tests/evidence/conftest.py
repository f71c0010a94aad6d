"""A log with everything an evidence pack must show, on SQLite (and PostgreSQL), and packs built from it.

System ``credit`` records an inference every 12 hours from 2026-02-20 to 2026-06-10, sealed and
pseudonymized by a policy, for subjects alice, bob and carol, with models scorer 1.0 then 2.0 and
every 7th a failure; reviewers label and override some. System ``chat`` is noise that no pack of
``credit`` may hold. The log also holds a policy in force before the period and one changed in it,
reads (access entries) of several scopes, the erasure of bob, a retention purge of what is older than
2026-03-05, and two signed checkpoints.
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

import inferlog
from inferlog.evidence import Selection, build_pack
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer
from inferlog.keystore import LocalKeyStore
from inferlog.ledger.checkpoint import NoteSigner
from inferlog.pipeline import Pipeline
from inferlog.privacy.policy import load_policy
from inferlog.privacy.seal import subject_ref
from inferlog.record import Model
from inferlog.record.ids import uuid7
from inferlog.record.model import AccessEntry, AdminEntry, Entry
from inferlog.retention import Governance, apply_retention, erase
from inferlog.store import Store, open_store

UTC = dt.UTC
SINCE = dt.datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = dt.datetime(2026, 6, 1, tzinfo=UTC)
FIRST = dt.datetime(2026, 2, 20, tzinfo=UTC)
RETENTION_NOW = dt.datetime(2026, 11, 10, tzinfo=UTC)  # 250 days after 2026-03-05: the purge cutoff
CUTOFF = dt.datetime(2026, 3, 5, tzinfo=UTC)
SUBJECTS = ("alice", "bob", "carol")
ORIGIN = "evidence.test/log"

POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]
retention = "250d"
"""


@dataclass
class Made:
    """What the log holds, as the tests need to know it."""

    url: str
    folder: Path
    config: Path
    signer: NoteSigner
    key_path: Path
    records: list[tuple[str, dt.datetime, str, str, str]] = field(
        default_factory=list
    )  # id, ts, subject, version, status
    feedback: dict[str, str] = field(default_factory=dict)  # feedback id -> inference id
    overrides: set[str] = field(default_factory=set)  # inference ids with an override
    refs: dict[str, str] = field(default_factory=dict)  # subject -> pseudonym
    checkpoints: list[int] = field(default_factory=list)

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier_key_string()

    def open(self) -> Store:
        return open_store(self.url)

    def checkpoint(self, store: Store) -> int:
        checkpointer = Checkpointer(store, CheckpointSigner.beside_key(self.signer, self.key_path))
        size = checkpointer.checkpoint().size
        self.checkpoints.append(size)
        return size

    def in_period(self, subject: str | None = None) -> list[str]:
        return [r[0] for r in self.records if SINCE <= r[1] < UNTIL and (subject is None or r[2] == subject)]


def _append(store: Store, *entries: Entry) -> None:
    store.append(Pipeline().prepare_all(list(entries)))


def make_log(url: str, folder: Path) -> Made:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "inferlog.toml"
    config.write_text(POLICY)
    key_path = folder / "keys" / "signer.key"
    made = Made(url, folder, config, init_signer(key_path, origin=ORIGIN), key_path)
    store = made.open()
    try:
        _append(store, AdminEntry(  # the policy in force before the period (recorded then)
            id=uuid7(), system="*", ts=dt.datetime(2026, 2, 1, tzinfo=UTC), actor="dpo", action="policy.changed",
            details={"digest": "0" * 64, "policy": {"defaults": {"retention": "1y"}}},
        ))  # fmt: skip
        _record(made, store)
        keystore = LocalKeyStore(folder / "keys.db")
        made.refs = {subject: subject_ref(keystore, subject) for subject in SUBJECTS}
        _append(store, *_reads(made))
        _append(store, AdminEntry(  # a policy change within the period
            id=uuid7(), system="*", ts=dt.datetime(2026, 4, 15, tzinfo=UTC), actor="dpo", action="policy.changed",
            details={"digest": "1" * 64, "policy": {"defaults": {"retention": "250d"}}},
        ))  # fmt: skip
        gov = Governance(store, load_policy(config), keystore, actor="dpo")
        erase(gov, "bob")
        gov.now = RETENTION_NOW
        apply_retention(gov)
        keystore.close()
        made.checkpoint(store)
    finally:
        store.close()
    return made


def _record(made: Made, store: Store) -> None:
    with inferlog.open(made.url, system="credit", config=made.config, spool_dir=made.folder / "spool") as log:
        ts, n = FIRST, 0
        while ts < dt.datetime(2026, 6, 10, tzinfo=UTC):
            subject = SUBJECTS[n % 3]
            version = "1.0" if ts < dt.datetime(2026, 4, 10, tzinfo=UTC) else "2.0"
            status: Literal["ok", "error"] = "error" if n % 7 == 0 else "ok"
            model = Model(
                "scorer", version, digest=f"sha256:{version.replace('.', '') * 32}", uri=f"runs:/{version}"
            )
            entry_id = log.record(
                model=model, input={"n": n}, output={"score": n / 1000}, subject=subject, status=status, ts=ts
            )
            made.records.append((entry_id, ts, subject, version, status))
            if n % 10 == 3:
                made.feedback[
                    log.feedback(entry_id, label="paid", actor="reviewer", ts=ts + dt.timedelta(days=20))
                ] = entry_id
            if n % 10 == 5:
                made.feedback[
                    log.feedback(
                        entry_id, override={"score": 0}, actor="reviewer", ts=ts + dt.timedelta(hours=1)
                    )
                ] = entry_id
                made.overrides.add(entry_id)
            n += 1
            ts += dt.timedelta(hours=12)
            if n == 60:
                log.flush()
                made.checkpoint(store)
    with inferlog.open(made.url, system="chat", spool_dir=made.folder / "spool-chat") as chat:
        for i in range(5):
            chat.record(model=Model("chat", "1"), input="hi", output="ho", ts=SINCE + dt.timedelta(days=i))


def _reads(made: Made) -> list[AccessEntry]:
    """Reads filed under credit: of everything, of alice, of carol's model 3.0, and one before the period."""
    day = SINCE + dt.timedelta(days=40)

    def read(query: dict[str, object], actor: str) -> AccessEntry:
        return AccessEntry(id=uuid7(), system="credit", ts=day, actor=actor, action="query", purpose="monitoring",
                           query=query, count=3)  # fmt: skip

    return [
        read({"system": "credit", "limit": 100}, "analyst"),
        read({"system": "credit", "subject": made.refs["alice"], "limit": 100}, "support-alice"),
        read({"system": "credit", "model": "other-model", "limit": 100}, "other-model-reader"),
        read({"system": "credit", "until": "2026-01-01T00:00:00Z", "limit": 100}, "old-reader"),
        read({"system": "credit", "kind": "admin", "limit": 100}, "admin-reader"),
    ]


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """The SQLite log above, made once for the session (tests copy what they change)."""
    folder = tmp_path_factory.mktemp("evidence-log")
    return make_log(f"sqlite:///{folder / 'log.db'}", folder)


@pytest.fixture(scope="session")
def pack(made: Made, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pack of credit over the period, as a zip (never changed: tamper tests copy it)."""
    out = tmp_path_factory.mktemp("pack") / "credit.zip"
    store = made.open()
    try:
        build_pack(store, Selection("credit", SINCE, UNTIL), made.signer, out)
    finally:
        store.close()
    return out


@pytest.fixture
def pack_copy(pack: Path, tmp_path: Path) -> Path:
    """A copy of the good pack's zip, to tamper with."""
    copy = tmp_path / pack.name
    shutil.copy(pack, copy)
    return copy


@pytest.fixture
def folder_copy(pack: Path, tmp_path: Path) -> Path:
    """The good pack unpacked into a folder (a folder is a pack too), to tamper with."""
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(pack) as zipped:
        zipped.extractall(folder)
    return folder
