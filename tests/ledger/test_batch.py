"""Batch inclusion proofs: equal to one-at-a-time proofs, verified, and read each leaf block once."""

from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inferlog.ledger import LeafList, TiledHashes, inclusion_proof, leaf_hash, root_of, verify_inclusion
from inferlog.ledger.batch import SharedHashes, inclusion_proofs

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(1200)]


class CountingLeaves(LeafList):
    """A LeafList that counts its leaf-range reads and subtree requests."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        super().__init__(leaves)
        self.leaf_reads: list[tuple[int, int]] = []
        self.perfect_calls = 0

    def leaves(self, start: int, end: int) -> list[bytes]:
        self.leaf_reads.append((start, end))
        return super().leaves(start, end)

    def perfect(self, level: int, index: int) -> bytes:
        self.perfect_calls += 1
        return super().perfect(level, index)


size_and_indices = st.integers(1, 1100).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), min_size=1, max_size=40))
)


@settings(max_examples=150, deadline=None)
@given(size_and_indices, st.integers(1, 9), st.integers(0, 50))
@example((1, [0]), 8, 0)
@example((256, [255, 0, 128]), 8, 0)
@example((257, [256, 255]), 8, 3)
@example((1100, [1099, 0, 1024, 1023]), 2, 100)
def test_batch_proofs_equal_single_proofs_and_verify(
    case: tuple[int, list[int]], block_level: int, extra: int
) -> None:
    """For any size (powers of two or not), any block height and any index order (last leaf included),
    each shared proof is exactly inclusion_proof's and verifies against the root, even when the source
    holds leaves beyond the tree size (a store that grew after the checkpoint)."""
    size, indices = case
    leaves = LEAVES[:size]
    root = root_of(leaves)
    reference = LeafList(leaves)
    shared = SharedHashes(LeafList(LEAVES[: size + extra]), size, block_level=block_level)
    for index in [*indices, size - 1]:
        proof = inclusion_proof(index, size, shared)
        assert proof == inclusion_proof(index, size, reference)
        verify_inclusion(index, size, leaves[index], proof, root)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1100))
def test_inclusion_proofs_cover_every_leaf_of_a_tiled_source(size: int) -> None:
    """inclusion_proofs over a TiledHashes source (as a pack build uses) gives, for every leaf in
    ascending order, the proof inclusion_proof gives."""
    leaves = LEAVES[:size]
    tiled = TiledHashes(lambda a, b: LEAVES[a:b], tile_height=3)
    reference = LeafList(leaves)
    proofs = list(inclusion_proofs(range(size), size, tiled))
    assert proofs == [inclusion_proof(i, size, reference) for i in range(size)]


def test_ascending_indices_read_each_block_once() -> None:
    """Proving all 1100 leaves in order reads each 256-leaf block once and asks the source for
    only the few subtrees above the blocks, instead of ~10 subtrees per proof."""
    source = CountingLeaves(LEAVES[:1100])
    proofs = list(inclusion_proofs(range(1100), 1100, source))
    assert len(proofs) == 1100
    assert sorted(source.leaf_reads) == [(0, 256), (256, 512), (512, 768), (768, 1024), (1024, 1100)]
    # right siblings met before their block is read, (8, 1) and (8, 3), then (9, 0), (9, 1), (10, 0):
    # each once, where one proof at a time would ask ~10 subtrees per leaf
    assert source.perfect_calls == 5


@pytest.mark.parametrize(
    ("level", "index", "error"), [(-1, 0, ValueError), (0, 10, IndexError), (2, 2, IndexError)]
)
def test_subtrees_outside_the_tree_are_refused(level: int, index: int, error: type[Exception]) -> None:
    """A subtree that is not wholly within the tree's size is an error, not a hash of other leaves."""
    shared = SharedHashes(LeafList(LEAVES[:20]), 10)
    with pytest.raises(error):
        shared.perfect(level, index)
