"""The checkpoint signer and key files."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlog.errors import IntegrityError, UsageError
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_signer, load_verifiers
from inferlog.integrity.tree import consistency, root_at
from inferlog.ledger.checkpoint import open_checkpoint
from inferlog.ledger.merkle import root_of
from tests.integrity.conftest import SignedLog


def test_key_files_round_trip(tmp_path: Path) -> None:
    """init-signer writes a private key (0600) and a .pub verifier; both load back."""
    key = tmp_path / "s.key"
    signer = init_signer(key, origin="example.org/log")
    assert key.stat().st_mode & 0o777 == 0o600
    assert load_signer(key).verifier_key_string() == signer.verifier_key_string()
    (verifier,) = load_verifiers([str(tmp_path / "s.pub")])
    assert verifier.name == "example.org/log"
    with pytest.raises(UsageError, match="already exists"):
        init_signer(key)
    with pytest.raises(UsageError, match="init-signer"):
        load_signer(tmp_path / "missing.key")


def test_checkpoints_are_signed_and_published(signed_log: SignedLog) -> None:
    """Every 100 entries a checkpoint whose signed root is the tree's root is kept and copied off-box."""
    kept = signed_log.store.checkpoints()
    assert [c.size for c in kept] == [100, 200, 300]
    for c in kept:
        cp = open_checkpoint(c.note, signed_log.verifiers)
        assert cp.origin == "test.example/log"
        assert cp.root == root_at(signed_log.store, c.size)
    assert signed_log.offbox.notes() == [c.note for c in kept]
    assert (signed_log.offbox.directory / "latest").read_bytes() == kept[-1].note


def test_root_at_matches_a_full_recomputation(signed_log: SignedLog) -> None:
    """root_at(n) from tiles and leaves equals the root of the first n leaf hashes, for many n."""
    hashes = [e.leaf_hash for e in signed_log.store.scan(limit=1000)]
    for size in (0, 1, 2, 255, 256, 257, 299, 300):
        assert root_at(signed_log.store, size) == root_of(hashes[:size])


def test_signer_refuses_a_shrinking_or_forked_head(signed_log: SignedLog) -> None:
    """Having signed size 300, the signer will not sign size 250, nor another root at 300."""
    signer: CheckpointSigner = signed_log.checkpointer.signer
    store = signed_log.store
    with pytest.raises(IntegrityError, match="shrank"):
        signer.sign(250, root_at(store, 250), lambda a, b: consistency(store, a, b))
    with pytest.raises(IntegrityError, match="not consistent"):
        signer.sign(300, b"\x01" * 32, lambda a, b: [])
    signed_log.add(10)
    forged_root = b"\x02" * 32
    with pytest.raises(IntegrityError, match="not consistent"):
        signer.sign(310, forged_root, lambda a, b: consistency(store, a, b))
    note = signer.sign(310, root_at(store, 310), lambda a, b: consistency(store, a, b))
    assert open_checkpoint(note, signed_log.verifiers).size == 310


def test_sdk_signs_checkpoints_on_cadence_and_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Log opened with a signer key checkpoints every N entries, copies them off-box, and once more on close."""
    import inferlog
    from inferlog.integrity.verify import audit

    key = tmp_path / "signer.key"
    init_signer(key, origin="sdk.example/log")
    monkeypatch.setenv("INFERLOG_CHECKPOINT_EVERY", "50")
    (tmp_path / "offbox").mkdir()
    monkeypatch.setenv("INFERLOG_CHECKPOINT_DIR", str(tmp_path / "offbox"))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = inferlog.open(url, system="s", signer_key=key)
    model = inferlog.Model("m", "1")
    for i in range(60):
        log.record(model=model, output=i)
    assert log.flush()
    for i in range(30):
        log.record(model=model, output=i)
    assert log.flush()  # 30 new entries: under the cadence, no checkpoint yet
    log.close()
    store = inferlog.open_store(url)
    sizes = [c.size for c in store.checkpoints()]
    assert len(sizes) == 2
    assert 50 <= sizes[0] <= 60  # on cadence, once 50 new entries were delivered
    assert sizes[1] == 90  # on close, covering everything
    assert len(list((tmp_path / "offbox").glob("*.note"))) == len(sizes)
    report = audit(store, load_verifiers([str(tmp_path / "signer.pub")]))
    assert report.ok, report.problems
    store.close()


def test_sdk_proof_verifies_with_the_public_key(tmp_path: Path) -> None:
    """log.proof(id) returns an inclusion proof that verifies against the signed checkpoint, and fails if altered."""
    import dataclasses

    import inferlog
    from inferlog.errors import ProofError

    key = tmp_path / "signer.key"
    init_signer(key, origin="proof.example/log")
    log = inferlog.open(f"sqlite:///{tmp_path / 'p.db'}", system="s", signer_key=key)
    ids = [log.record(model=inferlog.Model("m", "1"), output=i) for i in range(37)]
    log.checkpoint()
    proof = log.proof(ids[20])
    verifiers = load_verifiers([str(tmp_path / "signer.pub")])
    assert proof.verify(verifiers).size == 37
    forged = dataclasses.replace(proof, leaf=proof.leaf.replace(b'"kind"', b'"kinD"'))
    with pytest.raises(ProofError):
        forged.verify(verifiers)
    log.close()


def test_webhook_receives_every_checkpoint_and_a_down_one_is_counted(tmp_path: Path) -> None:
    """Checkpoints are POSTed to a webhook as signed notes; when it fails, the checkpoint is still kept and counted."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from inferlog.integrity.checkpointer import Checkpointer
    from inferlog.integrity.publish import WebhookPublisher
    from inferlog.store.sqlite import SQLiteStore
    from inferlog.testing import make_record, prepare

    received: list[tuple[bytes, str | None]] = []
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("X-Inferlog-Tree-Size")))
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        key = tmp_path / "signer.key"
        signer = init_signer(key, origin="hook.example/log")
        store = SQLiteStore(f"sqlite:///{tmp_path / 'h.db'}")
        hook = WebhookPublisher(f"http://127.0.0.1:{server.server_port}/checkpoints")
        checkpointer = Checkpointer(store, CheckpointSigner.beside_key(signer, key), [hook])
        store.append(prepare(make_record()))
        first = checkpointer.checkpoint()
        status["code"] = 500
        store.append(prepare(make_record()))
        second = checkpointer.checkpoint()
        assert received == [(first.note, "1"), (second.note, "2")]
        assert checkpointer.publish_failures == 1
        assert [c.size for c in store.checkpoints()] == [1, 2]
        store.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    with pytest.raises(ValueError, match="http"):
        WebhookPublisher("ftp://example.org/x")
