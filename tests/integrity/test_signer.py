"""The checkpoint signer and key files."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlog.errors import IntegrityError, UsageError
from inferlog.integrity.keys import init_signer, load_signer, load_verifiers
from inferlog.integrity.signer import CheckpointSigner
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
