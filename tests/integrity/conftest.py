"""A signed log of 300 entries with checkpoints every 100 and an off-box checkpoint folder, on each backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.publish import DirectoryPublisher
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_verifiers, public_key_path
from inferlog.ledger.checkpoint import NoteVerifier
from inferlog.record import Model
from inferlog.store import Store, open_store
from inferlog.testing import make_record, prepare
from tests.helpers import backend_url
from tests.integrity.tampering import Tamperer, tamperer_for


@dataclass
class SignedLog:
    url: str
    store: Store
    checkpointer: Checkpointer
    verifiers: list[NoteVerifier]
    offbox: DirectoryPublisher
    key_path: Path
    ids: list[str]
    tamperer: Tamperer

    def add(self, n: int) -> None:
        for _ in range(n):
            record = make_record(model=Model("m", str(len(self.ids) % 3)), output={"i": len(self.ids)})
            self.store.append(prepare(record))
            self.ids.append(record.id)
            if len(self.ids) % 100 == 0:
                self.checkpointer.checkpoint()

    def tamper(self, change: Callable[[Tamperer], Any]) -> Store:
        """Close the store, let `change` edit the database as an attacker would, reopen it."""
        self.store.close()
        change(self.tamperer)
        self.reopen()
        return self.store

    def reopen(self) -> None:
        self.store = open_store(self.url)
        self.checkpointer.store = self.store


@pytest.fixture(params=["sqlite", "postgresql"])
def signed_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SignedLog]:
    url = backend_url(request, tmp_path / "log.db")
    tamperer = tamperer_for(url)
    key_path = tmp_path / "keys" / "signer.key"
    signer = init_signer(key_path, origin="test.example/log")
    store = open_store(url)
    (tmp_path / "offbox").mkdir()  # an off-box folder must exist: it is never created
    offbox = DirectoryPublisher(tmp_path / "offbox")
    checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, key_path), [offbox])
    verifiers = load_verifiers([str(public_key_path(key_path))])
    log = SignedLog(url, store, checkpointer, verifiers, offbox, key_path, [], tamperer)
    log.add(300)
    yield log
    log.store.close()
    tamperer.close()
