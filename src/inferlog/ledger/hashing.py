"""RFC 6962 / RFC 9162 hashing: the two domain-separated SHA-256 functions.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``. The distinct prefixes are what stop a
64-byte interior node from being passed off as a leaf (a second preimage), so
every hash in the ledger goes through exactly one of these two functions.
"""

from __future__ import annotations

import base64
import hashlib

HASH_SIZE = 32
"""Bytes in every ledger hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256().digest()
"""MTH({}): the root of the empty tree, SHA-256 of no input (``e3b0c442…b855``)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return ``SHA-256(0x00 || data)``, the hash of one leaf body.

    Hash the exact stored leaf bytes: re-serialising a leaf before hashing it is
    the classic way to make a correct proof fail.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``, the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def b64(data: bytes) -> str:
    """Standard base64 text of a hash or proof node: how packs, the API and checkpoints write them."""
    return base64.b64encode(data).decode("ascii")
