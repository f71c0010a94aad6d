"""Which stored tile hashes an append completes.

Stores keep, beside the leaf hashes, the hash of every perfect subtree of ``256**k`` leaves (levels
8, 16, ... as in C2SP tlog-tiles), written once when the subtree fills up. Proofs in a tree of
millions of leaves then read O(log n * 256) hashes (see :class:`~inferlog.ledger.merkle.TiledHashes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from inferlog.ledger.hashing import node_hash

ReadLeaves = Callable[[int, int], Sequence[bytes]]
ReadTiles = Callable[[int, int, int], Sequence[bytes]]


def _fold(hashes: Sequence[bytes]) -> bytes:
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def completed_tiles(
    old_size: int,
    new_leaves: Sequence[bytes],
    read_leaves: ReadLeaves,
    read_tiles: ReadTiles,
    *,
    height: int = 8,
) -> list[tuple[int, int, bytes]]:
    """``(level, index, hash)`` of each perfect subtree at a tiled level that the append completes.

    ``read_leaves(start, end)`` and ``read_tiles(level, start, end)`` serve what was stored before
    ``old_size``; hashes completed earlier in the same call are reused.
    """
    width = 1 << height
    new_size = old_size + len(new_leaves)
    made: dict[tuple[int, int], bytes] = {}
    out: list[tuple[int, int, bytes]] = []

    def children(level: int, start: int, end: int) -> list[bytes]:
        if level == 0:
            stored_end = min(end, old_size)
            before = list(read_leaves(start, stored_end)) if start < stored_end else []
            return before + list(new_leaves[max(start, old_size) - old_size : end - old_size])
        # Hashes made in this call are a suffix of the range; the prefix before them was stored.
        split = start
        while split < end and (level, split) not in made:
            split += 1
        stored = list(read_tiles(level, start, split)) if split > start else []
        return stored + [made[(level, i)] for i in range(split, end)]

    level = height
    while True:
        span = 1 << level
        first, last = old_size // span, new_size // span
        if first >= last:
            return out
        for index in range(first, last):
            kids = children(level - height, index * width, (index + 1) * width)
            if len(kids) != width:
                raise ValueError(f"cannot build level-{level} tile {index}: {len(kids)} of {width} children")
            digest = _fold(kids)
            made[(level, index)] = digest
            out.append((level, index, digest))
        level += height
