"""Tamper evidence over a Store: tree reads and proofs, the checkpoint signer, publishing, verification.

The pure algorithms live in :mod:`inferlog.ledger` (bytes in, bytes out, no I/O); this package
applies them to a store's rows and owns what sits around them: the Ed25519 *signing* key that signs
checkpoints (``signing_keys.py``, ``inferlog keys init-signer``), the signer's state, the off-box copies.
Two other kinds of key live elsewhere: the *encryption* keys that seal payloads are in
:mod:`inferlog.keystore`, and the *API keys* callers present to the server in :mod:`inferlog.apikeys`.
"""

from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_signer, load_verifiers
from inferlog.integrity.tree import consistency, inclusion, root_at
from inferlog.integrity.verify import audit, verify_checkpoint, verify_record

__all__ = [
    "CheckpointSigner",
    "Checkpointer",
    "audit",
    "consistency",
    "inclusion",
    "init_signer",
    "load_signer",
    "load_verifiers",
    "root_at",
    "verify_checkpoint",
    "verify_record",
]
