"""Merkle roots, compact ranges and proofs: vectors, an independent oracle, and tampering."""

from collections.abc import Callable, Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inferlog.errors import ProofError
from inferlog.ledger import (
    EMPTY_ROOT,
    CompactRange,
    LeafList,
    SubtreeHashes,
    TiledHashes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle testonly/constants.go
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
VECTOR_LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]
ROOTS = [
    EMPTY_ROOT,
    *(
        bytes.fromhex(h)
        for h in [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ]
    ),
]
NODE = {
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
}

# transparency-dev/merkle proof/verify_test.go, converted to 0-based leaf indices.
INCLUSION_VECTORS = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
CONSISTENCY_VECTORS = [
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]

MAX_LEAVES = 1100
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES)]


def mth(leaves: Sequence[bytes]) -> bytes:
    """Independent oracle: RFC 6962 MTH written straight from the recursive definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def flip(h: bytes) -> bytes:
    """``h`` with one bit of its first byte flipped."""
    return bytes([h[0] ^ 0x10]) + h[1:]


Source = Callable[[Sequence[bytes]], SubtreeHashes]


def leaf_list(leaves: Sequence[bytes]) -> SubtreeHashes:
    """Proof source: the in-memory list."""
    return LeafList(leaves)


def tiled(height: int, stored: bool = False) -> Source:
    """Proof source factory: TiledHashes over a slice reader, optionally with stored tiles.

    With ``stored``, the tile reader serves only the first half of each level, so
    both the stored and the computed paths are exercised.
    """

    def make(leaves: Sequence[bytes]) -> SubtreeHashes:
        def read_tiles(level: int, start: int, end: int) -> list[bytes]:
            available = (len(leaves) >> level) // 2
            return [mth(leaves[i << level : (i + 1) << level]) for i in range(start, min(end, available))]

        return TiledHashes(lambda a, b: leaves[a:b], read_tiles if stored else None, tile_height=height)

    return make


SOURCES = [
    pytest.param(leaf_list, id="LeafList"),
    pytest.param(tiled(1), id="Tiled1"),
    pytest.param(tiled(2), id="Tiled2"),
    pytest.param(tiled(3, stored=True), id="Tiled3-stored"),
    pytest.param(tiled(8), id="Tiled8"),
]

sizes_and_index = st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1)))
size_pairs = st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))


# ---------------------------------------------------------------------- vectors


def test_oracle_matches_spec_prefixes() -> None:
    """The test oracle itself reproduces the spec's quoted root prefixes and 8-leaf root."""
    assert mth(VECTOR_LEAVES[:1]).hex().startswith("6e340b9c")
    assert mth(VECTOR_LEAVES[:2]).hex().startswith("fac54203")
    assert mth(VECTOR_LEAVES[:3]).hex().startswith("aeb6bcfe")
    assert mth(VECTOR_LEAVES).hex() == ("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


@pytest.mark.parametrize("n", range(9))
def test_vector_roots(n: int) -> None:
    """root_of, CompactRange and the oracle all give transparency-dev's root for n leaves."""
    compact = CompactRange()
    compact.extend(VECTOR_LEAVES[:n])
    assert root_of(VECTOR_LEAVES[:n]) == ROOTS[n]
    assert compact.root() == ROOTS[n]
    assert mth(VECTOR_LEAVES[:n]) == ROOTS[n]


def test_compact_range_frontier_matches_vectors() -> None:
    """The frontier of 7 leaves is (node(2,0), node(1,2), leaf 6) as in CompactTrees()."""
    compact = CompactRange()
    compact.extend(VECTOR_LEAVES[:7])
    assert compact.hashes == [
        bytes.fromhex(NODE[(2, 0)]),
        bytes.fromhex(NODE[(1, 2)]),
        VECTOR_LEAVES[6],
    ]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_inclusion_vectors(source: Source, index: int, size: int, expected: list[str]) -> None:
    """Inclusion proofs match transparency-dev's vectors and verify against their roots."""
    proof = inclusion_proof(index, size, source(VECTOR_LEAVES[:size]))
    assert [p.hex()[:8] for p in proof] == expected
    verify_inclusion(index, size, VECTOR_LEAVES[index], proof, ROOTS[size])


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("first", "second", "expected"), CONSISTENCY_VECTORS)
def test_consistency_vectors(source: Source, first: int, second: int, expected: list[str]) -> None:
    """Consistency proofs match transparency-dev's vectors and verify against their roots."""
    proof = consistency_proof(first, second, source(VECTOR_LEAVES[:second]))
    assert [p.hex()[:8] for p in proof] == expected
    verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


# ---------------------------------------------------------------- compact range


@given(st.lists(st.binary(max_size=8), max_size=300))
def test_compact_range_root_equals_root_of(data: list[bytes]) -> None:
    """Appending leaves one by one gives the same root as root_of and the oracle, at every size."""
    leaves = [leaf_hash(d) for d in data]
    compact = CompactRange()
    for n, h in enumerate(leaves, start=1):
        compact.append(h)
        assert compact.size == n
        assert len(compact.hashes) == n.bit_count()
    assert compact.root() == root_of(leaves) == mth(leaves)


@given(st.integers(0, 600))
def test_compact_range_bytes_round_trip(n: int) -> None:
    """to_bytes/from_bytes and from_state restore an equal range that keeps growing correctly."""
    compact = CompactRange()
    compact.extend(LEAVES[:n])
    restored = CompactRange.from_bytes(compact.to_bytes())
    assert restored == compact
    assert CompactRange.from_state(compact.size, compact.hashes) == compact
    restored.extend(LEAVES[n : n + 5])
    assert restored.root() == mth(LEAVES[: n + 5])


@pytest.mark.parametrize(
    ("size", "count"),
    [(0, 1), (1, 0), (3, 1), (3, 3), (-1, 0), (2**64, 1)],
)
def test_compact_range_rejects_impossible_state(size: int, count: int) -> None:
    """from_state insists on popcount(size) hashes and a size that fits in 64 bits."""
    with pytest.raises(ValueError, match="compact range"):
        CompactRange.from_state(size, LEAVES[:count])


def test_compact_range_rejects_bad_encodings() -> None:
    """from_bytes rejects short input, a ragged tail and a size that disagrees with the hashes."""
    good = CompactRange()
    good.extend(LEAVES[:3])
    encoded = good.to_bytes()
    for bad in (b"", encoded[:7], encoded + b"\x00", (4).to_bytes(8, "big") + encoded[8:]):
        with pytest.raises(ValueError, match="compact range"):
            CompactRange.from_bytes(bad)


def test_compact_range_rejects_short_leaf_hash() -> None:
    """append refuses anything that is not a 32-byte hash."""
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(b"short")


# ------------------------------------------------------------- inclusion proofs


def check_inclusion(source: Source, leaves: Sequence[bytes], index: int) -> None:
    """Assert the proof for ``index`` verifies and every altered variant is rejected."""
    size = len(leaves)
    root = mth(leaves)
    leaf = leaves[index]
    proof = inclusion_proof(index, size, source(leaves))
    assert len(proof) <= 2 * size.bit_length()
    verify_inclusion(index, size, leaf, proof, root)

    bad: list[tuple[int, int, bytes, list[bytes], bytes]] = [
        (index, size, flip(leaf), proof, root),
        (index, size, leaf, proof, flip(root)),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [root, *proof], root),
        (index, size, leaf, [*proof, b""], root),
    ]
    bad += [(index, size, leaf, [*proof[:i], flip(p), *proof[i + 1 :]], root) for i, p in enumerate(proof)]
    if proof:
        bad.append((index, size, leaf, proof[:-1], root))
        bad.append((index, size, leaf, [proof[0], flip(root), *proof[1:]], root))
    bad += [(j, size, leaf, proof, root) for j in {index - 1, index + 1, index ^ 2, size} - {index}]
    # A proof for this size must not verify against another size's checkpoint.
    for other in {size - 1, size + 1, size * 2, size // 2} - {size}:
        if index < other <= len(LEAVES):
            bad.append((index, other, leaf, proof, mth(LEAVES[:other])))
    for args in bad:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


@pytest.mark.parametrize("source", SOURCES)
@given(sizes_and_index)
@example((1, 0))
@example((256, 255))
@example((257, 256))
def test_inclusion_proofs_verify_and_tampering_fails(source: Source, size_index: tuple[int, int]) -> None:
    """Every inclusion proof verifies, and altered proofs, leaves, indices, sizes and roots fail."""
    size, index = size_index
    check_inclusion(source, LEAVES[:size], index)


@settings(max_examples=8, deadline=None)
@given(st.integers(257, 700).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
@example((512, 0))
@example((700, 699))
def test_inclusion_proofs_cross_256_leaf_tiles(size_index: tuple[int, int]) -> None:
    """With the default 256-leaf tiles, proofs in trees spanning several tiles verify."""
    size, index = size_index
    check_inclusion(tiled(8), LEAVES[:size], index)
    check_inclusion(tiled(8, stored=True), LEAVES[:size], index)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (-1, 5), (5, 5)])
def test_inclusion_proof_rejects_out_of_range(index: int, size: int) -> None:
    """Generation refuses an index outside the tree."""
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(index, size, LeafList(LEAVES[:5]))


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (-1, 3)])
def test_verify_inclusion_rejects_out_of_range(index: int, size: int) -> None:
    """Verification fails for an index outside the claimed tree, whatever the hashes."""
    with pytest.raises(ProofError, match="not in a tree"):
        verify_inclusion(index, size, LEAVES[0], [], LEAVES[0])


def test_verify_inclusion_single_leaf() -> None:
    """In a one-leaf tree the proof is empty and the leaf hash is the root."""
    verify_inclusion(0, 1, LEAVES[0], [], LEAVES[0])
    with pytest.raises(ProofError):
        verify_inclusion(0, 1, LEAVES[0], [], LEAVES[1])
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(0, 1, b"", [], b"")


# ----------------------------------------------------------- consistency proofs


def check_consistency(source: Source, leaves: Sequence[bytes], first: int) -> None:
    """Assert the proof from ``first`` verifies and every altered variant is rejected."""
    second = len(leaves)
    root1, root2 = mth(leaves[:first]), mth(leaves)
    proof = consistency_proof(first, second, source(leaves))
    verify_consistency(first, second, root1, root2, proof)
    if first == second:
        assert proof == []
        return

    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (first, second, flip(root1), root2, proof),
        (first, second, root1, flip(root2), proof),
        (first, second, root2, root1, proof),
        (first, second, root1, root2, []),
        (first, second, root1, root2, proof[:-1]),
        (first, second, root1, root2, [*proof, root1]),
        (first, second, root1, root2, [*proof, root2]),
        (first, second, root1, root2, [proof[0], *proof]),
        (first, second, root1, root2, [root1, *proof]),
        (first, second, root1, root2, [*proof, b""]),
    ]
    bad += [
        (first, second, root1, root2, [*proof[:i], flip(p), *proof[i + 1 :]]) for i, p in enumerate(proof)
    ]
    # The proof must not pass for another pair of checkpoints.
    for other in {first - 1, first + 1, first ^ 2} - {first}:
        if 0 < other < second:
            bad.append((other, second, mth(leaves[:other]), root2, proof))
    for other in {second - 1, second + 1, second * 2} - {second}:
        if first < other <= len(LEAVES):
            bad.append((first, other, root1, mth(LEAVES[:other]), proof))
    for args in bad:
        with pytest.raises(ProofError):
            verify_consistency(*args)

    # History rewritten before ``first``: no proof connects the old root to the new tree.
    rewritten = list(leaves)
    rewritten[first - 1] = flip(rewritten[first - 1])
    forged = consistency_proof(first, second, source(rewritten))
    with pytest.raises(ProofError):
        verify_consistency(first, second, root1, mth(rewritten), forged)
    with pytest.raises(ProofError):
        verify_consistency(first, second, root1, mth(rewritten), proof)


@pytest.mark.parametrize("source", SOURCES)
@given(size_pairs)
@example((1, 2))
@example((255, 256))
@example((256, 300))
def test_consistency_proofs_verify_and_tampering_fails(source: Source, pair: tuple[int, int]) -> None:
    """Every consistency proof verifies; altered proofs, sizes, roots and rewritten history fail."""
    first, second = pair
    check_consistency(source, LEAVES[:second], first)


@settings(max_examples=8, deadline=None)
@given(st.integers(257, 700).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
@example((256, 700))
@example((300, 512))
def test_consistency_proofs_cross_256_leaf_tiles(pair: tuple[int, int]) -> None:
    """With the default 256-leaf tiles, consistency proofs across several tiles verify."""
    first, second = pair
    check_consistency(tiled(8), LEAVES[:second], first)
    check_consistency(tiled(8, stored=True), LEAVES[:second], first)


def test_consistency_trivial_cases() -> None:
    """Size 0 is consistent with anything given an empty proof; equal sizes need equal roots."""
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, mth(LEAVES[:5]), [])
    verify_consistency(3, 3, mth(LEAVES[:3]), mth(LEAVES[:3]), [])
    assert consistency_proof(0, 5, LeafList(LEAVES[:5])) == []
    assert consistency_proof(5, 5, LeafList(LEAVES[:5])) == []
    with pytest.raises(ProofError, match="empty"):
        verify_consistency(0, 5, EMPTY_ROOT, mth(LEAVES[:5]), [EMPTY_ROOT])
    with pytest.raises(ProofError, match="empty"):
        verify_consistency(3, 3, mth(LEAVES[:3]), mth(LEAVES[:3]), [EMPTY_ROOT])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(3, 3, mth(LEAVES[:3]), mth(LEAVES[:4]), [])
    with pytest.raises(ProofError, match="cannot follow"):
        verify_consistency(4, 3, mth(LEAVES[:4]), mth(LEAVES[:3]), [])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(4, 3, LeafList(LEAVES[:4]))


# ----------------------------------------------------------------- tiled hashes


def test_tiled_hashes_read_few_leaves_in_a_big_tree() -> None:
    """With stored level-8 tiles, each proof in a 70,000-leaf tree reads under 1,024 hashes."""
    n = 70_000
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tiles = [root_of(leaves[i : i + 256]) for i in range(0, n - 255, 256)]
    reads = [0]

    def read_leaves(start: int, end: int) -> Sequence[bytes]:
        reads[0] += end - start
        return leaves[start:end]

    def read_tiles(level: int, start: int, end: int) -> Sequence[bytes]:
        if level != 8:
            return []  # only level-8 tiles are stored; higher levels get computed
        reads[0] += end - start
        return tiles[start:end]

    source = TiledHashes(read_leaves, read_tiles)
    root = root_of(leaves)
    for index in (0, 12_345, n - 1):
        reads[0] = 0
        verify_inclusion(index, n, leaves[index], inclusion_proof(index, n, source), root)
        assert reads[0] < 1024
    reads[0] = 0
    proof = consistency_proof(40_001, n, source)
    assert reads[0] < 1024
    verify_consistency(40_001, n, root_of(leaves[:40_001]), root, proof)


def test_tiled_hashes_cache_makes_repeat_proofs_cheap() -> None:
    """Without stored tiles the first proof reads each leaf once; a later one reads a few tiles."""
    n = 5000
    leaves = LEAVES * 5
    reads = [0]

    def read_leaves(start: int, end: int) -> Sequence[bytes]:
        reads[0] += end - start
        return leaves[start:end]

    source = TiledHashes(read_leaves)
    root = root_of(leaves[:n])
    verify_inclusion(7, n, leaves[7], inclusion_proof(7, n, source), root)
    assert reads[0] <= n
    reads[0] = 0
    verify_inclusion(4321, n, leaves[4321], inclusion_proof(4321, n, source), root)
    assert reads[0] < 4 * 256


def test_tiled_hashes_refuse_incomplete_subtrees() -> None:
    """Asking for a subtree past the end of the stored leaves is an error, not a wrong hash."""
    source = TiledHashes(lambda a, b: LEAVES[:10][a:b], tile_height=2)
    with pytest.raises(IndexError, match="not complete"):
        source.perfect(4, 0)
    with pytest.raises(IndexError):
        LeafList(LEAVES[:10]).perfect(4, 0)
    with pytest.raises(ValueError, match="tile_height"):
        TiledHashes(lambda a, b: [], tile_height=0)


@given(st.integers(0, 6), st.integers(0, 40))
def test_perfect_agrees_across_sources(level: int, index: int) -> None:
    """LeafList and TiledHashes of every tile height return the same perfect-subtree hash."""
    hi = (index + 1) << level
    if hi > len(LEAVES):
        return
    expected = mth(LEAVES[index << level : hi])
    assert LeafList(LEAVES).perfect(level, index) == expected
    for height in (1, 2, 3, 8):
        assert tiled(height)(LEAVES).perfect(level, index) == expected
