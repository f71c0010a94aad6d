"""A signed log on SQLite with checkpoints every 100 entries and an off-box checkpoint folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.keys import init_signer, load_verifiers, public_key_path
from inferlog.integrity.publish import DirectoryPublisher
from inferlog.integrity.signer import CheckpointSigner
from inferlog.ledger.checkpoint import NoteVerifier
from inferlog.record import Model
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record, prepare


@dataclass
class SignedLog:
    store: SQLiteStore
    checkpointer: Checkpointer
    verifiers: list[NoteVerifier]
    offbox: DirectoryPublisher
    key_path: Path
    ids: list[str]

    def add(self, n: int) -> None:
        for i in range(n):
            record = make_record(model=Model("m", str(len(self.ids) % 3)), output={"i": len(self.ids)})
            self.store.append(prepare(record))
            self.ids.append(record.id)
            if len(self.ids) % 100 == 0:
                self.checkpointer.checkpoint()
            del i


@pytest.fixture
def signed_log(tmp_path: Path) -> Iterator[SignedLog]:
    key_path = tmp_path / "keys" / "signer.key"
    signer = init_signer(key_path, origin="test.example/log")
    store = SQLiteStore(f"sqlite:///{tmp_path / 'log.db'}")
    offbox = DirectoryPublisher(tmp_path / "offbox")
    checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, key_path), [offbox])
    log = SignedLog(
        store, checkpointer, load_verifiers([str(public_key_path(key_path))]), offbox, key_path, []
    )
    log.add(300)
    yield log
    store.close()
