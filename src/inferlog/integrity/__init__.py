"""Tamper evidence over a Store: tree reads and proofs, the checkpoint signer, publishing, verification.

The pure algorithms live in :mod:`inferlog.ledger`; this package applies them to a store's rows.
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
