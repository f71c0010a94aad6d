"""RFC 6962 hashing primitives against published vectors."""

import base64
import hashlib

from inferlog import ledger
from inferlog.ledger import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash


def test_empty_root_is_sha256_of_nothing() -> None:
    """MTH({}) is SHA-256 of the empty string, e3b0c442…b855."""
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert len(EMPTY_ROOT) == HASH_SIZE


def test_leaf_hash_matches_go_sumdb_record_hash() -> None:
    """leaf_hash reproduces Go sumdb's RecordHash("hello world") vector."""
    assert base64.b64encode(leaf_hash(b"hello world")).decode() == (
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
    )


def test_leaf_hash_of_empty_leaf_is_the_one_leaf_root() -> None:
    """The empty leaf hashes to transparency-dev's one-leaf root 6e340b9c…."""
    assert leaf_hash(b"").hex() == ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


def test_node_hash_prefixes_with_one() -> None:
    """node_hash is SHA-256 over 0x01 || left || right."""
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """A 64-byte leaf equal to two concatenated hashes does not hash like the node."""
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(left + right) != node_hash(left, right)


def test_public_names_resolve() -> None:
    """Every name in inferlog.ledger.__all__ exists and none is listed twice."""
    assert len(set(ledger.__all__)) == len(ledger.__all__)
    for name in ledger.__all__:
        assert hasattr(ledger, name), name
