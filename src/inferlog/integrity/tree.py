"""The store's Merkle tree: roots at any size and proofs, read through stored leaf and tile hashes."""

from __future__ import annotations

from inferlog.errors import UsageError
from inferlog.ledger.merkle import CompactRange, TiledHashes, consistency_proof, inclusion_proof
from inferlog.store.protocols import LedgerStore


def hashes_of(store: LedgerStore) -> TiledHashes:
    return TiledHashes(store.leaf_hashes, store.tile_hashes)


def root_at(store: LedgerStore, size: int, hashes: TiledHashes | None = None) -> bytes:
    """MTH of the first ``size`` leaves, from one perfect subtree per 1-bit of ``size``."""
    hashes = hashes or hashes_of(store)
    parts = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(hashes.perfect(level, start >> level))
            start += 1 << level
    return CompactRange.from_state(size, parts).root()


def inclusion(store: LedgerStore, seq: int, size: int) -> list[bytes]:
    """Inclusion proof of the entry at ``seq`` (leaf seq-1) in the tree of ``size`` leaves."""
    if not 1 <= seq <= size:
        raise UsageError(f"seq {seq} is not in a tree of {size} entries")
    return inclusion_proof(seq - 1, size, hashes_of(store))


def consistency(store: LedgerStore, first: int, second: int) -> list[bytes]:
    """Consistency proof between the trees of ``first`` and ``second`` leaves."""
    if not 0 <= first <= second:
        raise UsageError(f"need 0 <= first <= second, got {first} and {second}")
    if second > store.tree().size:
        raise UsageError(f"the log holds {store.tree().size} entries, fewer than {second}")
    if first == 0 or first == second:
        return []
    return consistency_proof(first, second, hashes_of(store))
