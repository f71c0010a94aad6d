"""A self-contained inclusion proof: everything a third party needs to check one entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferlog.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from inferlog.ledger.hashing import leaf_hash
from inferlog.ledger.merkle import verify_inclusion


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``id`` is leaf ``seq - 1`` of the tree of ``tree_size`` leaves signed in ``checkpoint``."""

    id: str
    seq: int
    leaf: bytes
    tree_size: int
    hashes: list[bytes]
    checkpoint: bytes  # the signed note

    def verify(self, verifiers: Sequence[NoteVerifier], origin: str | None = None) -> Checkpoint:
        """Check the checkpoint's signature and origin, then the proof against its root; raises if either fails.

        The origin must be ``origin``, by default the first verifier key's name (the log's key).
        """
        signed = open_checkpoint(
            self.checkpoint,
            verifiers,
            origin=origin if origin is not None else verifiers[0].name if verifiers else None,
        )
        if signed.size != self.tree_size:
            raise ValueError(f"the proof is for size {self.tree_size} but the checkpoint signs {signed.size}")
        verify_inclusion(self.seq - 1, signed.size, leaf_hash(self.leaf), self.hashes, signed.root)
        return signed
