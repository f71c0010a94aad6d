"""An in-process server on a real SQLite file, with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_verifiers
from inferlog.ledger.checkpoint import NoteVerifier
from inferlog.server import create_app
from inferlog.store import Store
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import backend_store


@dataclass
class Server:
    client: TestClient
    store: Store
    keys: dict[str, str]
    verifiers: list[NoteVerifier]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """The API over each backend: a SQLite file, and a fresh PostgreSQL database."""
    yield from _serve(backend_store(request, tmp_path / "server.db"), tmp_path)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    """The API over SQLite only (for tests that lock the file)."""
    yield from _serve(SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}"), tmp_path)


def _serve(store: Store, tmp_path: Path) -> Iterator[Server]:
    keys = {
        "ingest": create_key(store, "ingest", ["credit"], "credit model server")[0],
        "ingest_all": create_key(store, "ingest", ["*"], "gateway")[0],
        "reader": create_key(store, "reader", ["credit"], "credit analyst")[0],
        "reader_fraud": create_key(store, "reader", ["fraud"], "fraud analyst")[0],
        "auditor": create_key(store, "auditor", ["*"], "auditor")[0],
        "admin": create_key(store, "admin", ["*"], "ops")[0],
    }
    signer = init_signer(tmp_path / "signer.key", origin="server.test/log")
    checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, tmp_path / "signer.key"))
    # Checkpoints only when a test POSTs one: tests here count and compare them.
    app = create_app(store, max_body_bytes=64 * 1024, checkpointer=checkpointer, checkpoint_cadence=False)
    with TestClient(app) as client:
        yield Server(client, store, keys, load_verifiers([str(tmp_path / "signer.pub")]))
    store.close()
