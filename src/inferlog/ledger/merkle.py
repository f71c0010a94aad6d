"""RFC 6962 / RFC 9162 Merkle trees: roots, a compact range, proofs and their checks.

The tree is left-heavy: the left child of any node is a perfect tree of ``2**m``
leaves. A tree of ``n`` leaves is therefore a left-to-right run of perfect,
aligned subtrees, one per 1-bit of ``n``. Three consequences shape this module:

* :class:`CompactRange` keeps just those ``popcount(n)`` hashes, so appending a
  leaf and computing the root need O(log n) state, not the whole tree.
* Every hash a proof needs, ``MTH(D[a:b])``, is a fold of perfect aligned
  subtrees, so proof generation needs only one primitive,
  :meth:`SubtreeHashes.perfect`. Storage backends implement that (or use
  :class:`TiledHashes` over a leaf-hash range query) and nothing else.
* Verification never reads storage: it takes sizes and roots the caller got
  from a *verified checkpoint*, never from the proof's own claims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from inferlog.errors import ProofError
from inferlog.ledger.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = [
    "CompactRange",
    "LeafList",
    "SubtreeHashes",
    "TiledHashes",
    "consistency_proof",
    "inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_SIZE_BYTES = 8
_MAX_SIZE = (1 << 64) - 1


# --------------------------------------------------------------------------- roots


class CompactRange:
    """The O(log n) state of a growing tree: one perfect-subtree hash per 1-bit of its size.

    This is what a store persists next to its leaf table so that appending a
    record and producing a checkpoint root never rereads earlier leaves.
    ``hashes`` runs left to right, largest subtree first.
    """

    __slots__ = ("_hashes", "_size")
    __hash__ = None  # type: ignore[assignment]  # mutable: equal ranges may diverge later

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Rebuild a range from a persisted ``(size, hashes)``, rejecting impossible states."""
        if not 0 <= size <= _MAX_SIZE:
            raise ValueError(f"compact range size {size} is outside 0..2**64-1")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} holds {size.bit_count()} hashes, got {len(hashes)}"
            )
        for h in hashes:
            _check_hash(h, "compact range hash")
        compact = cls()
        compact._size = size
        compact._hashes = [bytes(h) for h in hashes]
        return compact

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """Decode :meth:`to_bytes` output: 8-byte big-endian size, then the hashes."""
        if len(data) < _SIZE_BYTES or (len(data) - _SIZE_BYTES) % HASH_SIZE:
            raise ValueError(f"{len(data)} bytes is not a valid compact range encoding")
        size = int.from_bytes(data[:_SIZE_BYTES], "big")
        body = data[_SIZE_BYTES:]
        hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return cls.from_state(size, hashes)

    def to_bytes(self) -> bytes:
        """Encode as 8-byte big-endian size followed by the hashes (at most 2 KiB)."""
        return self._size.to_bytes(_SIZE_BYTES, "big") + b"".join(self._hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """A copy of the frontier: perfect-subtree hashes from left (largest) to right."""
        return list(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash; amortised O(1) node hashes, O(log n) worst case."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        hashes = self._hashes
        merged = leaf_hash
        size = self._size
        # Each trailing 1-bit of the old size is a same-sized subtree to merge with.
        while size & 1:
            merged = node_hash(hashes.pop(), merged)
            size >>= 1
        hashes.append(merged)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        for h in leaf_hashes:
            self.append(h)

    def extend_with_tiles(
        self, leaf_hashes: Iterable[bytes], height: int = 8
    ) -> list[tuple[int, int, bytes]]:
        """Append each leaf hash; return ``(level, index, hash)`` of every perfect subtree at a level
        that is a multiple of ``height`` completed on the way (the tiles a store writes).

        Appending merges exactly those subtrees (a merge at level L makes the hash of the 2**L leaves
        ending at the new size), so the tiles come for free: the same hashes as
        :func:`inferlog.ledger.tiles.completed_tiles`, without hashing each tile's leaves again or
        reading the earlier ones back.
        """
        tiles: list[tuple[int, int, bytes]] = []
        hashes = self._hashes
        for leaf_hash in leaf_hashes:
            if len(leaf_hash) != HASH_SIZE:
                raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
            merged = leaf_hash
            size = self._size
            level = 0
            while size & 1:
                merged = node_hash(hashes.pop(), merged)
                size >>= 1
                level += 1
                if level % height == 0:
                    tiles.append((level, (self._size + 1 >> level) - 1, merged))
            hashes.append(merged)
            self._size += 1
        tiles.sort()  # by level, then index: the order completed_tiles gives
        return tiles

    def root(self) -> bytes:
        """The tree root MTH(D[0:size]): fold the frontier from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        root = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            root = node_hash(h, root)
        return root

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 6962 §2.1), in O(n) time and O(log n) memory."""
    compact = CompactRange()
    compact.extend(leaf_hashes)
    return compact.root()


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect tree whose bottom row is ``hashes`` (length a power of two)."""
    row = list(hashes)
    if not row or len(row) & (len(row) - 1):
        raise ValueError(f"{len(row)} hashes do not form a perfect subtree")
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(h)}")


# ----------------------------------------------------------------- subtree sources


class SubtreeHashes(Protocol):
    """Where proof generation gets hashes: the only thing a store must provide."""

    def perfect(self, level: int, index: int) -> bytes:
        """Return MTH(D[index * 2**level : (index + 1) * 2**level]), a complete subtree."""
        ...


class LeafList:
    """In-memory leaf hashes: fine for tests and small trees (a proof costs O(n) hashing)."""

    __slots__ = ("_leaves",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._leaves = list(leaf_hashes)

    def __len__(self) -> int:
        return len(self._leaves)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at the end."""
        self._leaves.append(leaf_hash)

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes of [start, end); IndexError if the range runs past the last leaf."""
        if not 0 <= start <= end <= len(self._leaves):
            raise IndexError(f"leaves [{start}, {end}) are not within {len(self._leaves)} leaves")
        return self._leaves[start:end]

    def perfect(self, level: int, index: int) -> bytes:
        """Hash the aligned perfect subtree from the stored leaves."""
        lo, hi = _span(level, index)
        if hi > len(self._leaves):
            raise IndexError(f"subtree [{lo}, {hi}) is beyond {len(self._leaves)} leaves")
        return _perfect_root(self._leaves[lo:hi])


ReadLeafHashes = Callable[[int, int], Sequence[bytes]]
"""``(start, end) -> leaf hashes of [start, end)``, e.g. one SQL range query."""

ReadTileHashes = Callable[[int, int, int], Sequence[bytes]]
"""``(level, start, end) -> stored perfect-subtree hashes at level, indices [start, end)``.

May return only a prefix (the hashes stored so far); the rest are computed."""

_BATCH = 256  # parents computed per read, so cold reads stay bounded in memory


class TiledHashes:
    """Perfect-subtree hashes over a leaf-hash reader, cached in tiles of ``2**tile_height``.

    Hashes of perfect subtrees at every multiple of ``tile_height`` levels
    (256, 65536, … leaves at the default 8, as in C2SP tlog-tiles) are cached
    once computed: in an append-only log they never change. With a warm cache,
    or with ``read_tile_hashes`` serving stored tile hashes, each ``perfect()``
    call reads at most ``2**tile_height`` hashes, so a proof in a tree of
    millions of leaves reads O(log n * 256) hashes rather than O(n).

    Hashes from the readers are trusted like any stored data: a wrong one only
    produces a proof that fails verification, which is the intended outcome.
    """

    __slots__ = ("_cache", "_height", "_read_leaves", "_read_tiles")

    def __init__(
        self,
        read_leaf_hashes: ReadLeafHashes,
        read_tile_hashes: ReadTileHashes | None = None,
        *,
        tile_height: int = 8,
    ) -> None:
        if tile_height < 1:
            raise ValueError(f"tile_height must be at least 1, got {tile_height}")
        self._read_leaves = read_leaf_hashes
        self._read_tiles = read_tile_hashes
        self._height = tile_height
        self._cache: dict[tuple[int, int], bytes] = {}

    @property
    def tile_height(self) -> int:
        """Levels per tile: hashes are cached every ``tile_height`` levels."""
        return self._height

    def perfect(self, level: int, index: int) -> bytes:
        """Fold at most ``2**tile_height`` leaf or cached hashes into the requested subtree."""
        lo, hi = _span(level, index)
        stratum = level - level % self._height
        if stratum == 0:
            return _perfect_root(self._leaves(lo, hi))
        shift = level - stratum
        return _perfect_root(self._stratum(stratum, index << shift, (index + 1) << shift))

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes of [start, end) in one read; IndexError if the reader returns fewer."""
        return self._leaves(start, end)

    def _leaves(self, start: int, end: int) -> list[bytes]:
        hashes = list(self._read_leaves(start, end))
        if len(hashes) != end - start:
            raise IndexError(
                f"leaf reader returned {len(hashes)} hashes for [{start}, {end}): the subtree is not complete"
            )
        for h in hashes:
            _check_hash(h, "leaf hash")
        return hashes

    def _stratum(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes at a cached level (a multiple of the tile height) for indices [start, end)."""
        cache = self._cache
        found: dict[int, bytes] = {}
        missing: list[int] = []
        for i in range(start, end):
            h = cache.get((level, i))
            if h is None:
                missing.append(i)
            else:
                found[i] = h
        if missing and self._read_tiles is not None:
            first = missing[0]
            for i, h in zip(range(first, end), self._read_tiles(level, first, end), strict=False):
                _check_hash(h, f"stored level-{level} hash")
                found.setdefault(i, h)
                cache[(level, i)] = found[i]
            missing = [i for i in missing if i not in found]
        for run_start, run_end in _runs(missing, _BATCH):
            computed = self._compute(level, run_start, run_end)
            for i, h in zip(range(run_start, run_end), computed, strict=True):
                found[i] = h
                cache[(level, i)] = h
        return [found[i] for i in range(start, end)]

    def _compute(self, level: int, start: int, end: int) -> list[bytes]:
        """Build hashes at ``level`` for [start, end) from the level one tile below."""
        width = 1 << self._height
        below = level - self._height
        lo, hi = start * width, end * width
        children = self._leaves(lo, hi) if below == 0 else self._stratum(below, lo, hi)
        return [_perfect_root(children[i : i + width]) for i in range(0, len(children), width)]


def _span(level: int, index: int) -> tuple[int, int]:
    if level < 0 or index < 0:
        raise ValueError(f"subtree level and index must be non-negative, got {level}, {index}")
    return index << level, (index + 1) << level


def _runs(indices: list[int], limit: int) -> list[tuple[int, int]]:
    """Group sorted indices into half-open runs of consecutive values, each at most ``limit``."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i and i - runs[-1][0] < limit:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


# ----------------------------------------------------------------- proof generation


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(start: int, end: int, hashes: SubtreeHashes) -> bytes:
    """MTH(D[start:end]) for a right-edge range whose start is aligned to its size.

    Such a range is a run of perfect aligned subtrees, one per 1-bit of its
    length, largest first; its MTH folds them from the right.
    """
    pieces: list[bytes] = []
    pos = start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            pieces.append(hashes.perfect(level, pos >> level))
            pos += 1 << level
    result = pieces[-1]
    for piece in reversed(pieces[:-1]):
        result = node_hash(piece, result)
    return result


def inclusion_proof(index: int, size: int, hashes: SubtreeHashes) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): sibling hashes from the leaf upwards."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_range_hash(lo + k, hi, hashes))
            hi = lo + k
        else:
            path.append(_range_hash(lo, lo + k, hashes))
            lo += k
    path.reverse()  # built top-down; PATH lists the deepest sibling first
    return path


def consistency_proof(first: int, second: int, hashes: SubtreeHashes) -> list[bytes]:
    """RFC 6962 PROOF(first, D[0:second]); empty when ``first`` is 0 or equals ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    lo, hi, m = 0, second, first
    whole_old_tree = True  # SUBPROOF's b: is D[lo:lo+m] the entire old tree?
    while hi - lo != m:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_range_hash(lo + k, hi, hashes))
            hi = lo + k
        else:
            proof.append(_range_hash(lo, lo + k, hashes))
            lo += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        proof.append(_range_hash(lo, hi, hashes))
    proof.reverse()
    return proof


# -------------------------------------------------------------- proof verification


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check an inclusion proof per RFC 9162 §2.1.3.2; raise :class:`ProofError` if it fails.

    ``size`` and ``root`` must come from a verified checkpoint.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash_sizes(proof, leaf_hash=leaf_hash, root=root)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short ({len(proof)} hashes)")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof per RFC 9162 §2.1.4.2; raise :class:`ProofError` if it fails.

    Size 0 is consistent with everything (an empty proof is required); equal
    sizes need an empty proof and equal roots.
    """
    if _trivially_consistent(first, second, first_root, second_root, proof):
        return
    _check_hash_sizes(proof, first_root=first_root, second_root=second_root)
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short ({len(proof)} hashes)")
    if fr != first_root:
        raise ProofError(f"consistency proof does not lead to the root of size {first}")
    if sr != second_root:
        raise ProofError(f"consistency proof does not lead to the root of size {second}")


def _trivially_consistent(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Settle the cases RFC 9162 leaves outside its algorithm; True if nothing is left to check."""
    if not 0 <= first <= second:
        raise ProofError(f"size {second} cannot follow size {first}")
    if first == second:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if first_root != second_root:
            raise ProofError(f"two different roots for the same size {first}")
        return True
    if first == 0:
        if proof:
            raise ProofError("a consistency proof from size 0 must be empty")
        return True
    if not proof:
        raise ProofError(f"empty consistency proof from size {first} to {second}")
    return False


def _check_hash_sizes(proof: Sequence[bytes], **named: bytes) -> None:
    for what, h in named.items():
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(h)}")
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof hash {i} must be {HASH_SIZE} bytes, got {len(p)}")
