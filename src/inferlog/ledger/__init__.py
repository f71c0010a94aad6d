"""The ledger: RFC 6962 Merkle trees, proofs and signed checkpoints, with no I/O.

Everything here takes bytes and returns bytes, so stores, the verifier CLI and
third-party auditors all share one implementation pinned by test vectors.

Beside it, :mod:`inferlog.integrity` is the same job done *over a store*: it reads the tree from a
store's rows, signs checkpoints on a cadence with the log's key file, copies them off-box and
verifies a whole log. Math that could run on a napkin (a root, a proof, a note's signature) is here;
which rows a proof is built from, or when to sign, is there.
"""

from inferlog.ledger.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_checkpoint,
    open_note,
    sign_checkpoint,
)
from inferlog.ledger.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from inferlog.ledger.merkle import (
    CompactRange,
    LeafList,
    SubtreeHashes,
    TiledHashes,
    consistency_proof,
    inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "CompactRange",
    "LeafList",
    "NoteSigner",
    "NoteVerifier",
    "SubtreeHashes",
    "TiledHashes",
    "consistency_proof",
    "inclusion_proof",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "root_of",
    "sign_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
