"""Verification: the full audit, one record's inclusion, and a checkpoint against a trusted one.

Each returns a report object (never a bare bool) listing problems with the seq they concern, so the
CLI can name the first bad entry and say what is wrong with it. The verifier hashes the leaf bytes as
stored and never re-serializes them; sizes and roots come from checkpoints whose signatures verified.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from inferlog.errors import CheckpointError, NoteError, NotFound, ProofError, UsageError
from inferlog.integrity.files import write_atomic
from inferlog.integrity.tree import consistency, inclusion
from inferlog.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from inferlog.ledger.hashing import node_hash
from inferlog.ledger.merkle import CompactRange, verify_consistency, verify_inclusion
from inferlog.privacy.seal import name_of
from inferlog.store._rows import attributes_copy
from inferlog.store.base import LedgerRow, to_micros
from inferlog.store.protocols import AuditStore, EntryReader, LedgerStore, PayloadStore

_CHUNK = 20_000


class _LeafModel(msgspec.Struct):
    name: str
    version: str


class _Leaf(msgspec.Struct):
    kind: str
    id: str
    system: str
    ts: dt.datetime
    commit: str
    model: _LeafModel | None = None
    status: str | None = None


_leaf_decoder = msgspec.json.Decoder(_Leaf)


class _SealedNames(msgspec.Struct):
    epoch: str
    subject: str | None = None


class _BodyColumns(msgspec.Struct):
    """The fields of a body that the store also keeps in columns (the rest is skipped unread).

    The first seven are in LedgerRow's order (``_BODY_COLUMNS``), so one tuple slice compares them.
    """

    latency_ms: float | None = None
    request_id: str | None = None
    trace_id: str | None = None
    session_id: str | None = None
    subject: str | None = None
    inference_id: str | None = None
    actor: str | None = None
    sealed: _SealedNames | None = None


class _BodyColumnsAndAttributes(_BodyColumns):
    """The same, with the attributes, for a store that keeps a searchable copy of them."""

    attributes: dict[str, Any] = {}


_body_decoder = msgspec.json.Decoder(_BodyColumns)
_body_attributes_decoder = msgspec.json.Decoder(_BodyColumnsAndAttributes)
_astuple = msgspec.structs.astuple


@dataclass(frozen=True)
class Problem:
    """One thing that does not hold; ``seq`` is the entry it concerns, or the first that may be bad."""

    seq: int | None
    what: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.what}" if self.seq is not None else self.what


@dataclass
class AuditReport:
    """The outcome of a full audit."""

    entries: int = 0
    purged: int = 0
    checkpoints: int = 0  # signed checkpoints whose roots were recomputed
    size: int = 0
    root: bytes = b""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None


def expected_origin(verifiers: Sequence[NoteVerifier], origin: str | None = None) -> str | None:
    """The log every checkpoint must name: ``origin`` if given, else the first verifier key's name.

    inferlog names a log's signing key after its origin (``keys init-signer --origin``), so the key
    an auditor holds says which log it is for; pass ``origin`` for a log whose key is named otherwise.
    """
    if origin is not None:
        return origin
    return verifiers[0].name if verifiers else None


def _open(note: bytes, verifiers: Sequence[NoteVerifier], origin: str | None) -> Checkpoint:
    if verifiers:
        return open_checkpoint(note, verifiers, origin=origin)
    checkpoint = Checkpoint.parse(note.split(b"\n\n", 1)[0] + b"\n")
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


def audit(
    store: AuditStore,
    verifiers: Sequence[NoteVerifier] = (),
    offbox: Sequence[bytes] = (),
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    origin: str | None = None,
) -> AuditReport:
    """Recompute every leaf and the root at each checkpoint; check seq continuity and commitments.

    ``offbox`` are signed notes kept outside the database (a checkpoint folder, a witness): they catch
    a log that was truncated, rolled back to a backup, or rewritten together with its checkpoint table.
    ``workers`` > 1 checks rows in that many worker processes (see :func:`default_workers`; they are
    spawned, so call this from code under ``if __name__ == "__main__":``); the tree itself is always
    built in this process, in seq order. Every checkpoint must name the expected origin (see
    :func:`expected_origin`): a note the same key signed for another log proves nothing about this one.
    """
    report = AuditReport()
    origin = expected_origin(verifiers, origin)
    if not verifiers:
        report.warnings.append("no verifier key: checkpoint signatures were NOT checked (pass --key)")
    roots = _SignedRoots(_signed_roots(store, verifiers, offbox, origin, report.problems), report)
    if not roots.expected:
        report.warnings.append(
            "no signed checkpoint: nothing anchors this log yet (run `inferlog checkpoint`)"
        )
    tree = CompactRange()
    tiles = _TileCheck(store, report.problems)
    next_seq = _rebuild(store, workers, tree, roots, tiles, report, progress)
    report.size, report.root = tree.size, tree.root()
    _check_stated_size(store, next_seq, report)
    _check_id_index(store, report)
    roots.finish()
    tiles.finish(tree.size)
    state = store.tree()
    if (state.size, state.root()) != (tree.size, tree.root()):
        report.problems.append(Problem(None, "the stored tree state does not match the recomputed tree"))
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report


def _check_stated_size(store: EntryReader, next_seq: int, report: AuditReport) -> None:
    """No row lies past the size the store states (read after the rows: appends only make it larger)."""
    stated = store.size()
    if next_seq - 1 > stated:
        report.problems.append(
            Problem(
                stated + 1,
                f"entries {stated + 1}..{next_seq - 1} lie past the log's size {stated} "
                "(rows added outside inferlog)",
            )
        )


def _signed_roots(
    store: LedgerStore,
    verifiers: Sequence[NoteVerifier],
    offbox: Sequence[bytes],
    origin: str | None,
    problems: list[Problem],
) -> dict[int, tuple[bytes, str]]:
    """size -> (root, where it comes from): the store's checkpoints, then the off-box ones.

    A note that does not verify is a problem, and commits to nothing; two roots for one size are a fork.
    """
    expected: dict[int, tuple[bytes, str]] = {}
    for stored in store.checkpoints():
        try:
            cp = _open(stored.note, verifiers, origin)
        except (NoteError, CheckpointError) as exc:
            problems.append(Problem(None, f"checkpoint {stored.size} in the store does not verify: {exc}"))
            continue
        if (cp.size, cp.root) != (stored.size, stored.root):
            problems.append(Problem(None, f"checkpoint {stored.size}: its row differs from its signed note"))
        expected[cp.size] = (cp.root, "the store's signed checkpoint")
    for note in offbox:
        try:
            cp = _open(note, verifiers, origin)
        except (NoteError, CheckpointError) as exc:
            problems.append(Problem(None, f"an off-box checkpoint does not verify: {exc}"))
            continue
        known = expected.get(cp.size)
        if known is not None and known[0] != cp.root:
            problems.append(
                Problem(
                    None, f"fork: the store's checkpoint {cp.size} and the off-box one have different roots"
                )
            )
        expected[cp.size] = (cp.root, "an off-box signed checkpoint")
    return expected


def _rebuild(
    store: AuditStore,
    workers: int,
    tree: CompactRange,
    roots: _SignedRoots,
    tiles: _TileCheck,
    report: AuditReport,
    progress: Callable[[int], None] | None,
) -> int:
    """Append every row's leaf hash to ``tree`` in seq order, checking roots and tiles on the way.

    The per-row checks ran in :func:`_check_range` (maybe in workers); their findings join the
    report here. Returns the seq after the last one read.
    """
    next_target = roots.reached(tree)  # a checkpoint of size 0
    next_seq = 1
    for checked in _checked_ranges(store, workers):
        if checked.count and checked.first_seq != next_seq:
            report.problems.append(
                Problem(next_seq, f"entries {next_seq}..{checked.first_seq - 1} are missing (deleted?)")
            )
        report.problems += checked.problems
        report.purged += checked.purged
        digests = checked.digests
        append = tree.append
        for offset in range(0, len(digests), 32):
            append(digests[offset : offset + 32])
            size = tree.size
            if size == next_target:
                next_target = roots.reached(tree)
            if not size & _TILE_MASK:
                tiles.check(tree)
        if checked.count:
            next_seq = checked.last_seq + 1
        report.entries += checked.count
        if progress is not None:
            progress(checked.count)
    return next_seq


class _SignedRoots:
    """The roots signed checkpoints commit to, each checked when the rebuilt tree reaches its size.

    A root that does not match only bounds where history changed (after the last matching one): it is
    reported by :meth:`finish`, once the row-level findings that may say more exactly are all in.
    """

    def __init__(self, expected: dict[int, tuple[bytes, str]], report: AuditReport) -> None:
        self.expected = expected
        self.report = report
        self._targets = sorted(expected)
        self._index = 0  # targets before it were reached
        self._last_good = 0
        self._mismatches: list[tuple[int, int, str]] = []  # (first, last, what)

    def reached(self, tree: CompactRange) -> int:
        """Check the roots signed for the tree's size; returns the next size to check at (-1: none)."""
        targets = self._targets
        while self._index < len(targets) and targets[self._index] == tree.size:
            size = targets[self._index]
            root, where = self.expected[size]
            if tree.root() == root:
                self._last_good = size
                self.report.checkpoints += 1
            else:
                self._mismatches.append(
                    (
                        self._last_good + 1,
                        size,
                        f"the first {size} entries do not hash to the root of {where} {size}: "
                        f"history was changed between seq {self._last_good + 1} and {size}",
                    )
                )
            self._index += 1
        return targets[self._index] if self._index < len(targets) else -1

    def finish(self) -> None:
        """Report the roots that did not match, the sizes the log never reached, what none covers."""
        report, targets = self.report, self._targets
        located = [p.seq for p in report.problems if p.seq is not None]
        for first, last, what in self._mismatches:
            # A root mismatch only bounds where the change is; a row-level finding inside it is more exact.
            inside = any(first <= seq <= last for seq in located)
            report.problems.append(Problem(None if inside else first, what))
        for size in targets[self._index :]:
            report.problems.append(
                Problem(
                    report.size + 1 if report.size < size else None,
                    f"{self.expected[size][1]} covers {size} entries but the log holds {report.size}: "
                    "entries were removed or an older backup was restored",
                )
            )
        if targets and report.size > targets[-1]:
            report.warnings.append(
                f"entries {targets[-1] + 1}..{report.size} are not yet covered by a signed checkpoint"
            )


_TILE_MASK = (1 << 8) - 1  # tiles are perfect subtrees of 256**k leaves (levels 8, 16, ...)


class _TileCheck:
    """The stored tiles, which proofs read, against the tree the audit rebuilds from the leaves.

    Whenever the rebuilt tree's size is a multiple of 256, its newest frontier hash covers its last
    complete blocks of 256 leaves (as many as the size's lowest set bit says); the stored level-8
    tiles of those blocks must fold to it, and likewise the level-16 tiles at multiples of 65536.
    Every tile is so checked without re-hashing leaves, at about one node hash per tile.
    """

    def __init__(self, store: LedgerStore, problems: list[Problem]) -> None:
        self.store = store
        self.problems = problems
        self._read: dict[int, list[bytes]] = {}
        self._broken: set[int] = set()  # levels already reported: the first bad tile is enough

    def _tiles(self, level: int, start: int, end: int) -> list[bytes]:
        have = self._read.setdefault(level, [])
        while len(have) < end:
            more = self.store.tile_hashes(level, len(have), max(end, len(have) + 4096))
            if not more:
                break
            have.extend(more)
        return have[start:end]

    def check(self, tree: CompactRange) -> None:
        size = tree.size
        lowest = size & -size
        newest = tree.hashes[-1]
        level = 8
        while 1 << level <= lowest and level not in self._broken:
            span = 1 << level
            first, end = (size - lowest) // span, size // span
            tiles = self._tiles(level, first, end)
            if len(tiles) != end - first or _fold(tiles) != newest:
                self._broken.add(level)
                self.problems.append(
                    Problem(
                        None,
                        f"the stored level-{level} tiles {first}..{end - 1} do not hash to the entries "
                        f"{first * span + 1}..{end * span} (tiles edited or missing? proofs read them)",
                    )
                )
            level += 8

    def finish(self, size: int) -> None:
        """No tile may claim leaves the log does not hold."""
        level = 8
        while level <= 64 and level not in self._broken:
            if self.store.tile_hashes(level, size >> level, (size >> level) + 1):
                self.problems.append(
                    Problem(None, f"a stored level-{level} tile covers entries beyond the log's {size}")
                )
            level += 8


def _fold(hashes: list[bytes]) -> bytes:
    row = hashes
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


_RANGE = 50_000  # rows per unit of work
_NO_END = 2**63 - 1  # the largest seq a store can hold
_PARALLEL_FROM = 100_000  # below this, starting processes costs more than it saves


@dataclass
class _Checked:
    """The per-row findings for one seq range, and its leaf hashes (32 bytes each, in seq order)."""

    digests: bytes
    problems: list[Problem]
    purged: int
    count: int
    first_seq: int
    last_seq: int


def _check_range(store: AuditStore, after: int, until: int) -> _Checked:
    """Check rows with after < seq <= until: leaf hash, columns against leaf and body, commitment, keys."""
    report = AuditReport()
    digests = bytearray()
    sha256, check, problems = hashlib.sha256, _check_row, report.problems
    copies = bool(getattr(store, "copies_attributes", False))
    first = last = 0
    count = 0
    cursor = after
    while cursor < until:
        rows = _whole_seqs(store.ledger_rows(cursor, _CHUNK))
        rows = [row for row in rows if row.seq <= until]
        if not rows:
            break
        sealed: dict[str, tuple[int, _SealedNames]] = {}
        for row in rows:
            seq = row.seq
            if count and seq == last:
                problems.append(Problem(seq, f"two rows hold seq {seq}: one was added outside inferlog"))
            elif count and seq != last + 1:
                problems.append(Problem(last + 1, f"entries {last + 1}..{seq - 1} are missing (deleted?)"))
            if not count:
                first = seq
            last = seq
            count += 1
            digest = sha256(b"\x00" + row.leaf).digest()
            if digest != row.leaf_hash:
                problems.append(Problem(seq, _LEAF_HASH_EDITED))
            digests += digest
            names = check(row, report, copies)
            if names is not None:
                sealed[row.id] = (seq, names)
        if sealed:
            _check_keys(store, sealed, report)
        cursor = rows[-1].seq
    return _Checked(bytes(digests), report.problems, report.purged, count, first, last)


def _whole_seqs(rows: list[LedgerRow]) -> list[LedgerRow]:
    """A full chunk without the rows of its last seq, which the next chunk then reads whole.

    Only a forgery puts two rows at one seq (PostgreSQL's key is (seq, ts), one row per partition);
    cut at a chunk's end, the second would never be read, and a forged row would go unseen.
    """
    if len(rows) < _CHUNK or rows[0].seq == rows[-1].seq:
        return rows
    last = rows[-1].seq
    return [row for row in rows if row.seq != last]


def _check_range_at(url: str, after: int, until: int) -> _Checked:
    """In a worker process: open the store by URL and check one range."""
    from inferlog.store import open_store

    store = open_store(url)
    try:
        return _check_range(store, after, until)
    finally:
        store.close()


def default_workers(store: EntryReader) -> int:
    """2 worker processes for a large log on a machine with 2+ cores, else 1 (no processes)."""
    return 2 if store.size() >= _PARALLEL_FROM and (os.cpu_count() or 1) >= 2 else 1


def _checked_ranges(store: AuditStore, workers: int) -> Iterator[_Checked]:
    """Checked ranges in seq order: in this process, or in worker processes for a large log."""
    size = store.size()
    bounds = [(start, min(start + _RANGE, size)) for start in range(0, size, _RANGE)]
    # The last range has no end: a row added past the size the store reports (its ledger state, on
    # PostgreSQL) is read by queries, so it is read, hashed and checked here too.
    bounds[-1:] = [(bounds[-1][0] if bounds else 0, _NO_END)]
    url = getattr(store, "url", "")
    if workers <= 1 or len(bounds) < 2 or not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        for after, until in bounds:
            yield _check_range(store, after, until)
        return
    context = multiprocessing.get_context("spawn")  # no inherited connections or threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        window = 2 * workers  # bounded memory: only this many ranges in flight
        pending = deque(pool.submit(_check_range_at, url, a, b) for a, b in bounds[:window])
        for index in range(len(bounds)):
            if index + window < len(bounds):
                a, b = bounds[index + window]
                pending.append(pool.submit(_check_range_at, url, a, b))
            yield pending.popleft().result()


def _check_row(row: LedgerRow, report: AuditReport, copies_attributes: bool) -> _SealedNames | None:
    """Check one row's columns against its leaf and body, and the body against its commitment.

    Returns the key names a sealed body says wrap its data key (checked against entry_keys per chunk).
    """
    try:
        leaf = _leaf_decoder.decode(row.leaf)
    except msgspec.DecodeError as exc:
        report.problems.append(Problem(row.seq, f"the leaf is not a valid leaf body ({exc})"))
        return None
    model = leaf.model
    signed = (
        leaf.id,
        leaf.kind,
        leaf.system,
        to_micros(leaf.ts),
        model.name if model else row.model_name,
        model.version if model else row.model_version,
        leaf.status if model else row.status,
    )
    stored = (row.id, row.kind, row.system, row.ts, row.model_name, row.model_version, row.status)
    if signed != stored:  # the slow, precise report only when something differs
        _name_columns(row.seq, _LEAF_COLUMNS, stored, signed, "the leaf", report)
    if row.indexed != "" and row.indexed != leaf.id:  # "": the id index agrees with this row
        report.problems.append(Problem(row.seq, _index_problem(row.indexed, leaf.id)))
    if row.body is None:
        report.purged += 1
        if copies_attributes and row.attributes is not None:
            report.problems.append(Problem(row.seq, "column attributes holds a copy of a purged payload"))
        return None
    if row.salt is None or _sha256(row.salt + row.body).digest() != _b64decode(leaf.commit):
        report.problems.append(
            Problem(
                row.seq, "the payload does not match its commitment in the leaf (column body or salt edited)"
            )
        )
        return None  # columns are checked against a body only once the body itself is known good
    try:
        body = (_body_attributes_decoder if copies_attributes else _body_decoder).decode(row.body)
    except msgspec.DecodeError as exc:
        report.problems.append(Problem(row.seq, f"the committed body does not decode ({exc})"))
        return None
    committed = _astuple(body)[:7]
    if committed != row[12:19]:
        _name_columns(row.seq, _BODY_COLUMNS, row[12:19], committed, "the committed body", report)
    if copies_attributes and not _same_copy(row.attributes, body, row.body):
        report.problems.append(
            Problem(
                row.seq,
                f"column attributes is {row.attributes!r} but the committed body says {attributes_copy(row.body)!r}",
            )
        )
    return body.sealed


def _same_copy(stored: str | None, body: _BodyColumns, raw: bytes) -> bool:
    """Whether a store's attributes copy holds what the body's attributes say (as JSON values)."""
    attributes = body.attributes if isinstance(body, _BodyColumnsAndAttributes) else {}
    try:  # the common case, cheaply: equal values (a boolean would equal 1 here, so none may appear)
        copy = msgspec.json.decode(stored) if stored is not None else {}
        if copy == attributes and (stored is None or ("true" not in stored and "false" not in stored)):
            return True
        if _encode_sorted(copy) == _encode_sorted(attributes):  # the same values, spelled alike
            return True
    except msgspec.MsgspecError:
        pass
    # jsonb spells some values its own way (1e30 as 1000...0, 1.50 as 1.5); U+0000 is never copied.
    return _json_value(stored) == _json_value(attributes_copy(raw))


def _encode_sorted(value: object) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def _name_columns(
    seq: int, names: tuple[str, ...], stored: tuple[object, ...], signed: tuple[object, ...], where: str,
    report: AuditReport,
) -> None:  # fmt: skip
    for name, mine, theirs in zip(names, stored, signed, strict=True):
        if mine != theirs:
            report.problems.append(Problem(seq, f"column {name} is {mine!r} but {where} says {theirs!r}"))


def _check_id_index(store: AuditStore, report: AuditReport) -> None:
    """The id index holds no row beyond the entries' own (PostgreSQL's entry_ids).

    Each entry's index row is checked with the entry (one by seq, which is unique there), so an index
    with exactly as many rows as entries read holds nothing else. A stray row would make get(id) miss,
    or make an append take a new record with that id for one already in the log and drop it.
    """
    count_index = getattr(store, "id_index_size", None)
    if count_index is None or count_index() == report.entries:
        return
    for entry_id, seq in store.id_index_strays():  # type: ignore[attr-defined]
        report.problems.append(
            Problem(
                None,
                f"the id index (entry_ids) maps {entry_id} to seq {seq}, which holds no such entry "
                "(an index row added, or its entry removed, outside inferlog)",
            )
        )


def _index_problem(indexed: str | None, entry_id: str) -> str:
    """What is wrong with the id index (entry_ids) that get(id), `show` and proofs go through."""
    if indexed is None:
        return f"the id index (entry_ids) has no row for this entry ({entry_id})"
    return f"the id index (entry_ids) gives this row to {indexed!r}, not to its id {entry_id}"


def _json_value(text: str | None) -> object:
    """A JSON text as a value that compares numbers exactly and never a boolean equal to a number."""
    return None if text is None else _tagged(json.loads(text, parse_float=Decimal, parse_int=Decimal))


def _tagged(value: object) -> object:
    if isinstance(value, bool):
        return ("bool", value)  # True == 1 in Python, but not in JSON (nor in a jsonb filter)
    if isinstance(value, Decimal):
        return ("number", value)
    if isinstance(value, dict):
        return tuple(sorted((key, _tagged(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", tuple(_tagged(item) for item in value))
    return value


def _check_keys(
    store: PayloadStore, sealed: dict[str, tuple[int, _SealedNames]], report: AuditReport
) -> None:
    """Each sealed entry's wrapped data key exists and is wrapped by the keys its body names.

    The wrapped blob itself needs the key store to open; a forged one fails every read (AES-GCM bound
    to the entry's id, and the body commits to the data key), so it can deny a read but never show
    another entry's payload.
    """
    keys = store.entry_keys(list(sealed))
    for entry_id, (seq, names) in sealed.items():
        key = keys.get(entry_id)
        if key is None:
            report.problems.append(
                Problem(seq, "the sealed payload has no wrapped data key in entry_keys (deleted or moved?)")
            )
            continue
        if name_of(key.epoch_ref) != names.epoch:
            report.problems.append(
                Problem(seq, f"entry_keys epoch_ref is {key.epoch_ref!r} but the body names {names.epoch!r}")
            )
        if (name_of(key.subject_ref) if key.subject_ref else None) != names.subject:
            report.problems.append(
                Problem(
                    seq, f"entry_keys subject_ref is {key.subject_ref!r} but the body names {names.subject!r}"
                )
            )


_LEAF_COLUMNS = ("id", "kind", "system", "ts", "model_name", "model_version", "status")
_BODY_COLUMNS = ("latency_ms", "request_id", "trace_id", "session_id", "subject", "inference_id", "actor")
if LedgerRow._fields[12:19] != _BODY_COLUMNS or _BodyColumns.__struct_fields__[:7] != _BODY_COLUMNS:
    raise ImportError(
        "LedgerRow and _BodyColumns must list the body's columns in one order"
    )  # pragma: no cover
_LEAF_HASH_EDITED = "column leaf_hash does not match the hash of column leaf (one of them was edited)"
_sha256 = hashlib.sha256
_b64decode = binascii.a2b_base64


@dataclass
class RecordReport:
    """The outcome of verifying one record's inclusion."""

    id: str
    seq: int = 0
    checkpoint_size: int = 0
    proof: list[bytes] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_record(
    store: AuditStore, entry_id: str, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> RecordReport:
    """Prove one entry is in the log: its leaf, its payload commitment, its inclusion under a signed checkpoint."""
    if not verifiers:
        raise UsageError("verifying a record needs a verifier key (--key or INFERLOG_VERIFIER_KEY)")
    stored = store.get(entry_id)
    if stored is None:
        raise NotFound(f"no entry with id {entry_id}")
    report = RecordReport(entry_id, stored.seq)
    rows = store.ledger_rows(stored.seq - 1, 1)
    if not rows or rows[0].id != entry_id:
        report.problems.append(Problem(stored.seq, "the entry's row could not be read back by seq"))
        return report
    row = rows[0]
    leaf_hash = hashlib.sha256(b"\x00" + row.leaf).digest()
    audit_row = AuditReport()
    if leaf_hash != row.leaf_hash:
        audit_row.problems.append(Problem(row.seq, _LEAF_HASH_EDITED))
    names = _check_row(row, audit_row, bool(getattr(store, "copies_attributes", False)))
    if names is not None:
        _check_keys(store, {row.id: (row.seq, names)}, audit_row)
    report.problems += audit_row.problems
    checkpoint = None
    for kept in reversed(store.checkpoints()):
        if kept.size < stored.seq:
            break
        try:
            checkpoint = open_checkpoint(kept.note, verifiers, origin=expected_origin(verifiers, origin))
            break
        except (NoteError, CheckpointError) as exc:
            report.problems.append(Problem(None, f"checkpoint {kept.size} does not verify: {exc}"))
    if checkpoint is None:
        report.problems.append(
            Problem(stored.seq, "no signed checkpoint covers this entry yet (run `inferlog checkpoint`)")
        )
        return report
    report.checkpoint_size = checkpoint.size
    try:
        report.proof = inclusion(store, stored.seq, checkpoint.size)
        verify_inclusion(stored.seq - 1, checkpoint.size, leaf_hash, report.proof, checkpoint.root)
    except (ProofError, IndexError) as exc:
        report.problems.append(
            Problem(stored.seq, f"not included in signed checkpoint {checkpoint.size}: {exc}")
        )
    return report


@dataclass
class CheckpointReport:
    """The outcome of checking the newest checkpoint against the last trusted one."""

    trusted: Checkpoint | None = None
    latest: Checkpoint | None = None
    first_use: bool = False
    problems: list[Problem] = field(default_factory=list)
    evidence: list[bytes] = field(default_factory=list)  # both notes, when they disagree

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_checkpoint(
    store: LedgerStore, verifiers: Sequence[NoteVerifier], trusted_path: Path, origin: str | None = None
) -> CheckpointReport:
    """Check the store's newest checkpoint extends the trusted one; on success it becomes trusted."""
    if not verifiers:
        raise UsageError("verifying checkpoints needs a verifier key (--key or INFERLOG_VERIFIER_KEY)")
    report = CheckpointReport()
    kept = store.checkpoints()
    if not kept:
        report.problems.append(Problem(None, "the log has no checkpoint yet (run `inferlog checkpoint`)"))
        return report
    latest_note = kept[-1].note
    try:
        report.latest = latest = open_checkpoint(
            latest_note, verifiers, origin=expected_origin(verifiers, origin)
        )
    except (NoteError, CheckpointError) as exc:
        report.problems.append(Problem(None, f"the newest checkpoint does not verify: {exc}"))
        return report
    if not trusted_path.exists():
        report.first_use = True
        write_atomic(trusted_path, latest_note)
        return report
    trusted_note = trusted_path.read_bytes()
    try:
        report.trusted = trusted = open_checkpoint(
            trusted_note, verifiers, origin=expected_origin(verifiers, origin)
        )
    except (NoteError, CheckpointError) as exc:
        raise UsageError(f"the trusted checkpoint {trusted_path} does not verify: {exc}") from exc
    problem = None
    if trusted.origin != latest.origin:
        problem = f"origin changed from {trusted.origin!r} to {latest.origin!r}"
    elif latest.size < trusted.size:
        problem = f"the log shrank: trusted size {trusted.size}, newest checkpoint {latest.size} (rollback?)"
    elif latest.size == trusted.size and latest.root != trusted.root:
        problem = f"fork: two different roots signed for size {latest.size}"
    else:
        try:
            proof = consistency(store, trusted.size, latest.size)
            verify_consistency(trusted.size, latest.size, trusted.root, latest.root, proof)
        except (ProofError, IndexError, UsageError) as exc:
            problem = f"the newest checkpoint is not consistent with the trusted one: {exc}"
    if problem:
        report.problems.append(Problem(None, problem))
        report.evidence = [trusted_note, latest_note]
        return report
    write_atomic(trusted_path, latest_note)
    return report
