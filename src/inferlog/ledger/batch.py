"""Inclusion proofs for many leaves of one tree, sharing the subtree hashes they have in common.

One :func:`~inferlog.ledger.merkle.inclusion_proof` asks its source for about ``log2(n)``
perfect subtrees, and the source rebuilds the small ones from leaf hashes every time: an
evidence pack of a million entries would hash ~20 million nodes and make as many reads.
Proofs of neighbouring leaves share almost all of those subtrees, so :func:`inclusion_proofs`
serves every proof from one :class:`SharedHashes`:

* subtrees of up to ``2**block_level`` leaves come from an in-memory block: the aligned
  run of leaf hashes is read once and all its inner nodes are hashed once. The most recent
  blocks are kept, so leaves in ascending order (as a pack reads them) read each block once;
* larger subtrees (about ``n / 2**block_level`` of them) are memoized, and a complete block's
  root seeds that memo, so the source is asked only for subtrees above the blocks in use.

The proofs are those :func:`~inferlog.ledger.merkle.inclusion_proof` makes: the same function
runs over a source that answers faster. Nothing here does I/O; the caller's source does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from inferlog.ledger.hashing import node_hash
from inferlog.ledger.merkle import SubtreeHashes, inclusion_proof

__all__ = ["LeafRangeHashes", "SharedHashes", "inclusion_proofs"]

_BLOCK_LEVEL = 8  # 256 leaves per block read, as a C2SP tile
_BLOCKS_KEPT = 4  # recent blocks held: enough for ascending leaves, bounded for any order


class LeafRangeHashes(SubtreeHashes, Protocol):
    """A subtree source that can also return a run of leaf hashes in one read."""

    def leaves(self, start: int, end: int) -> Sequence[bytes]:
        """The leaf hashes of [start, end)."""
        ...


class SharedHashes:
    """Perfect-subtree hashes of the tree of ``size`` leaves, each computed at most once while held.

    Holds at most ``_BLOCKS_KEPT`` blocks of ``2**block_level`` leaves with their inner nodes, and a
    memo of larger subtrees (``2 * size / 2**block_level`` hashes at most: 256 KB per million leaves).
    Only subtrees within the first ``size`` leaves may be asked for, as a proof in that tree does.
    """

    __slots__ = ("_block_level", "_blocks", "_memo", "_size", "_source")

    def __init__(self, source: LeafRangeHashes, size: int, *, block_level: int = _BLOCK_LEVEL) -> None:
        if size < 0:
            raise ValueError(f"tree size must be non-negative, got {size}")
        if block_level < 1:
            raise ValueError(f"block_level must be at least 1, got {block_level}")
        self._source = source
        self._size = size
        self._block_level = block_level
        self._blocks: OrderedDict[int, list[list[bytes]]] = OrderedDict()
        self._memo: dict[tuple[int, int], bytes] = {}

    def perfect(self, level: int, index: int) -> bytes:
        """MTH(D[index * 2**level : (index + 1) * 2**level]), from a held block, the memo or the source."""
        if level < 0 or index < 0:
            raise ValueError(f"subtree level and index must be non-negative, got {level}, {index}")
        if (index + 1) << level > self._size:
            raise IndexError(f"subtree ({level}, {index}) is beyond the tree of {self._size} leaves")
        if level < self._block_level:
            shift = self._block_level - level
            rows = self._block(index >> shift)
            return rows[level][index - ((index >> shift) << shift)]
        key = (level, index)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._source.perfect(level, index)
        return found

    def _block(self, block: int) -> list[list[bytes]]:
        """Every complete node of one aligned block, bottom row first; computed on first use."""
        rows = self._blocks.get(block)
        if rows is not None:
            self._blocks.move_to_end(block)
            return rows
        width = 1 << self._block_level
        start = block * width
        leaves = list(self._source.leaves(start, min(start + width, self._size)))
        rows = [leaves]
        row = leaves
        while len(row) > 1:
            row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
            rows.append(row)
        if len(rows) > self._block_level:  # complete block: its root is a memo entry
            self._memo[(self._block_level, block)] = rows.pop()[0]
        self._blocks[block] = rows
        if len(self._blocks) > _BLOCKS_KEPT:
            self._blocks.popitem(last=False)
        return rows


def inclusion_proofs(indices: Iterable[int], size: int, source: LeafRangeHashes) -> Iterator[list[bytes]]:
    """``inclusion_proof(i, size, source)`` for each ``i`` in turn, sharing subtree hashes between them.

    Ascending indices are fastest: each block of leaves is then read and hashed once.
    """
    shared = SharedHashes(source, size)
    for index in indices:
        yield inclusion_proof(index, size, shared)
