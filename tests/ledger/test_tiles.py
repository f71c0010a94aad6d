"""Tile hashes written on append equal the perfect-subtree hashes a full tree would give."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from inferlog.ledger.hashing import leaf_hash
from inferlog.ledger.merkle import CompactRange, LeafList
from inferlog.ledger.tiles import completed_tiles


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(n)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=30), st.integers(1, 3))
def test_tiles_from_batches_match_the_tree(batches: list[int], height: int) -> None:
    """Appending in arbitrary batches produces exactly the tiles of the whole tree, each once."""
    total = sum(batches)
    leaves = _leaves(total)
    stored: dict[tuple[int, int], bytes] = {}
    size = 0
    for count in batches:
        new = leaves[size : size + count]
        made = completed_tiles(
            size,
            new,
            lambda a, b: leaves[a:b],
            lambda level, a, b: [stored[(level, i)] for i in range(a, b)],
            height=height,
        )
        for level, index, digest in made:
            assert (level, index) not in stored
            stored[(level, index)] = digest
        size += count
    reference = LeafList(leaves)
    expected = {(level, i) for level in range(height, 64, height) for i in range(total >> level)}
    assert set(stored) == expected
    for (level, index), digest in stored.items():
        assert digest == reference.perfect(level, index)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=30), st.integers(1, 3))
def test_compact_range_reports_the_same_tiles_and_root(batches: list[int], height: int) -> None:
    """``CompactRange.extend_with_tiles`` gives, batch by batch, exactly what ``completed_tiles`` gives,
    and the same frontier as ``extend``."""
    leaves = _leaves(sum(batches))
    stored: dict[tuple[int, int], bytes] = {}
    tree, plain = CompactRange(), CompactRange()
    size = 0
    for count in batches:
        new = leaves[size : size + count]
        expected = completed_tiles(
            size,
            new,
            lambda a, b: leaves[a:b],
            lambda level, a, b: [stored[(level, i)] for i in range(a, b)],
            height=height,
        )
        assert tree.extend_with_tiles(new, height) == expected
        plain.extend(new)
        assert tree == plain
        stored.update({(level, index): digest for level, index, digest in expected})
        size += count
