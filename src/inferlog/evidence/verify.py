"""Verifying an evidence pack offline: no database, only the pack and the log's verifier key.

What holds when the report is OK:

* the manifest is signed by the key, and every file's SHA-256 is the manifest's (none missing, none
  added); a zip is laid out byte for byte as inferlog writes one;
* the checkpoint is signed by the key for the log's origin, and is the one ``pack.json`` names;
* each entry's leaf hashes to the leaf hash its inclusion proof starts from, the proof leads to the
  checkpoint's root, its payload matches the leaf's commitment (or is absent: erased or purged), and
  its columns say what its leaf says; entries are in seq order, each with one proof and no proof
  without its entry;
* every earlier checkpoint is signed by the key and proven consistent with the pack's;
* ``entries.parquet`` holds the same rows as ``entries.jsonl``; the counts in ``pack.json`` hold.

Every check runs even after one fails, so the report names each thing that is wrong. The pack's
standalone verifier (``standalone.py``, written into every pack) checks the same with its own code.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from inferlog.errors import CheckpointError, ContainerError, NoteError, ProofError
from inferlog.evidence import layout
from inferlog.evidence.container import Pack, open_pack
from inferlog.evidence.rows import read_parquet, require_pyarrow
from inferlog.integrity.verify import expected_origin
from inferlog.ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
    open_checkpoint,
    open_note,
)
from inferlog.ledger.hashing import b64, leaf_hash
from inferlog.ledger.merkle import verify_consistency, verify_inclusion
from inferlog.pipeline import commitment

REQUIRED = (
    layout.MANIFEST, layout.PACK_INFO, layout.CHECKPOINT, layout.ENTRIES_JSONL, layout.ENTRIES_PARQUET,
    layout.INCLUSION, layout.CONSISTENCY,
)  # fmt: skip


@dataclass(frozen=True)
class PackProblem:
    """One thing that does not hold, and where: a file, a line, or an entry's seq."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class PackReport:
    """The outcome of verifying a pack."""

    path: Path
    entries: int = 0
    erased: int = 0
    inclusion: int = 0  # inclusion proofs verified
    consistency: int = 0  # consistency proofs verified
    checkpoint: Checkpoint | None = None
    info: dict[str, Any] = field(default_factory=dict)
    problems: list[PackProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, where: str, what: str) -> None:
        self.problems.append(PackProblem(where, what))


def verify_pack(path: Path, verifiers: Sequence[NoteVerifier], origin: str | None = None) -> PackReport:
    """Check everything a pack claims (see the module docstring) with the log's verifier key(s)."""
    require_pyarrow()
    report = PackReport(path)
    try:
        pack = open_pack(path)
    except ContainerError as exc:
        report.fail(path.name, str(exc).removeprefix(f"{path.name}: "))
        return report
    for name, what in pack.problems:
        report.fail(name, what)
    _Checks(pack, list(verifiers), expected_origin(verifiers, origin), report).run()
    return report


class _Checks:
    def __init__(
        self, pack: Pack, verifiers: list[NoteVerifier], origin: str | None, report: PackReport
    ) -> None:
        self.pack = pack
        self.verifiers = verifiers
        self.origin = origin
        self.report = report
        self.fail = report.fail

    def run(self) -> None:
        present = set(self.pack.names())
        for name in REQUIRED:
            if name not in present:
                self.fail(name, "missing: every pack holds it")
        if layout.MANIFEST in present:
            self._manifest()
        self.report.info = self._json(layout.PACK_INFO) if layout.PACK_INFO in present else {}
        if layout.VERIFIER_KEY in present:
            self._key()
        if layout.CHECKPOINT in present:
            self.report.checkpoint = self._checkpoint()
        checkpoint = self.report.checkpoint
        if checkpoint is None:
            return
        if {layout.ENTRIES_JSONL, layout.INCLUSION} <= present:
            self._entries(checkpoint)
        if layout.CONSISTENCY in present:
            self._consistency(checkpoint)
        if {layout.ENTRIES_JSONL, layout.ENTRIES_PARQUET} <= present:
            self._parquet()

    # -- manifest and files ---------------------------------------------------------------------------

    def _manifest(self) -> None:
        note = self.pack.read(layout.MANIFEST)
        try:
            text, _ = open_note(note, self.verifiers)
        except NoteError as exc:
            self.fail(layout.MANIFEST, f"its signature does not verify with the key you gave: {exc}")
            text = note.split(b"\n\n", 1)[0] + b"\n"  # still compare the files, to name what changed
        try:
            digests = layout.parse_manifest_text(text)
        except (ValueError, UnicodeDecodeError) as exc:
            self.fail(layout.MANIFEST, f"not a pack manifest: {exc}")
            return
        for name in sorted(set(digests) | set(self.pack.digests)):
            if name == layout.MANIFEST:
                continue
            if name not in self.pack.digests:
                self.fail(name, "listed in the manifest but missing from the pack (removed)")
            elif name not in digests:
                self.fail(name, "in the pack but not in the manifest (added)")
            elif digests[name] != self.pack.digests[name]:
                self.fail(name, "its SHA-256 differs from the manifest's (the file was changed)")

    def _json(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads(self.pack.read(name))
        except (ValueError, UnicodeDecodeError) as exc:
            self.fail(name, f"not valid JSON: {exc}")
            return {}
        if not isinstance(data, dict) or data.get("format") != layout.FORMAT:
            self.fail(name, f"not a {layout.FORMAT} pack description")
            return {}
        return data

    def _key(self) -> None:
        named = self.pack.read(layout.VERIFIER_KEY).decode("utf-8", "replace").strip()
        given = [v.to_key_string() for v in self.verifiers]
        if named not in given:
            self.fail(
                layout.VERIFIER_KEY,
                f"the pack names the key {named!r}, not the one you gave ({', '.join(given)})",
            )

    def _checkpoint(self) -> Checkpoint | None:
        try:
            checkpoint = open_checkpoint(
                self.pack.read(layout.CHECKPOINT), self.verifiers, origin=self.origin
            )
        except (NoteError, CheckpointError) as exc:
            self.fail(layout.CHECKPOINT, f"does not verify with the key you gave: {exc}")
            return None
        claimed = self.report.info.get("checkpoint", {})
        if not isinstance(claimed, dict):
            self.fail(layout.PACK_INFO, "its checkpoint is not an object of size and root")
        elif claimed and (claimed.get("size"), claimed.get("root")) != (
            checkpoint.size,
            b64(checkpoint.root),
        ):
            self.fail(
                layout.PACK_INFO,
                f"names checkpoint {claimed.get('size')}, not the signed one ({checkpoint.size})",
            )
        return checkpoint

    # -- entries and their inclusion proofs ----------------------------------------------------------

    def _entries(self, checkpoint: Checkpoint) -> None:
        leaves: dict[int, bytes] = {}
        kinds: Counter[str] = Counter()
        erased = 0
        previous = 0
        for number, row in self._rows():
            where = f"{layout.ENTRIES_JSONL} line {number}"
            if row is None:
                self.fail(where, "not an entry row (JSON object with the pack's columns)")
                continue
            seq = row["seq"]
            if seq in leaves:
                self.fail(where, f"seq {seq} appears twice (an entry was added)")
                continue
            if seq < previous:
                self.fail(
                    where, f"seq {seq} comes after seq {previous}: out of order (entries moved or swapped)"
                )
            previous = max(previous, seq)
            leaves[seq] = self._entry(where, row)
            kinds[row["kind"]] += 1
            erased += row["body"] is None
        self.report.entries, self.report.erased = len(leaves), erased
        self._proofs(checkpoint, leaves)
        self._counts(leaves, kinds, erased)

    def _rows(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        with self.pack.open(layout.ENTRIES_JSONL) as lines:
            for number, line in enumerate(lines, 1):
                try:
                    row = json.loads(line)
                except ValueError:
                    yield number, None
                    continue
                yield number, row if _is_row(row) else None

    def _entry(self, where: str, row: dict[str, Any]) -> bytes:
        """Check one row against its own leaf and commitment; returns its leaf hash."""
        seq = row["seq"]
        leaf = row["leaf"].encode("utf-8")
        digest = leaf_hash(leaf)
        if b64(digest) != row["leaf_hash"]:
            self.fail(
                f"seq {seq}", f"its leaf does not hash to its leaf_hash ({where}: leaf or leaf_hash changed)"
            )
        try:
            meta = json.loads(leaf)
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            self.fail(f"seq {seq}", "its leaf is not a JSON object")
            return digest
        for name in ("id", "kind", "system", "ts"):
            if meta.get(name) != row[name]:
                self.fail(
                    f"seq {seq}", f"column {name} is {row[name]!r} but its leaf says {meta.get(name)!r}"
                )
        if (row["body"] is None) != (row["salt"] is None):
            self.fail(f"seq {seq}", "it has a body without a salt or a salt without a body")
        elif row["body"] is not None:
            self._payload(seq, row, meta)
        return digest

    def _payload(self, seq: int, row: dict[str, Any], meta: dict[str, Any]) -> None:
        body = row["body"].encode("utf-8")
        try:
            salt = base64.b64decode(row["salt"], validate=True)
        except binascii.Error:
            self.fail(f"seq {seq}", "its salt is not base64")
            return
        if b64(commitment(salt, body)) != meta.get("commit"):
            self.fail(
                f"seq {seq}", "its body does not match the commitment in its leaf (the payload was changed)"
            )
            return
        try:
            entry = json.loads(body)
        except ValueError:
            self.fail(f"seq {seq}", "its committed body is not JSON")
            return
        if not isinstance(entry, dict) or (entry.get("id"), entry.get("kind")) != (
            meta.get("id"),
            meta.get("kind"),
        ):
            self.fail(f"seq {seq}", "its committed body is another entry than its leaf")

    def _proofs(self, checkpoint: Checkpoint, leaves: dict[int, bytes]) -> None:
        waiting = dict(leaves)
        previous = 0
        with self.pack.open(layout.INCLUSION) as lines:
            for number, line in enumerate(lines, 1):
                where = f"{layout.INCLUSION} line {number}"
                proof = _proof(line)
                if proof is None:
                    self.fail(where, "not an inclusion proof (seq, leaf_index, tree_size, leaf_hash, hashes)")
                    continue
                seq, index, size, leaf, hashes = proof
                if seq <= previous:
                    self.fail(where, f"seq {seq} comes after seq {previous}: out of order or repeated")
                previous = max(previous, seq)
                mine = waiting.pop(seq, None)
                if mine is None:
                    if seq not in leaves:
                        self.fail(
                            f"seq {seq}",
                            f"has an inclusion proof but is not in {layout.ENTRIES_JSONL} (entry dropped)",
                        )
                    continue
                if (index, size, leaf) != (seq - 1, checkpoint.size, mine):
                    self.fail(f"seq {seq}", "its inclusion proof is for another leaf, index or tree size")
                    continue
                try:
                    verify_inclusion(index, size, mine, hashes, checkpoint.root)
                except ProofError as exc:
                    self.fail(
                        f"seq {seq}", f"its inclusion proof does not lead to checkpoint {size}'s root: {exc}"
                    )
                    continue
                self.report.inclusion += 1
        for seq in sorted(waiting):
            self.fail(f"seq {seq}", f"in {layout.ENTRIES_JSONL} but has no inclusion proof (entry added)")

    def _counts(self, leaves: dict[int, bytes], kinds: Counter[str], erased: int) -> None:
        claimed = self.report.info.get("entries")
        if not isinstance(claimed, dict):
            return
        seqs = sorted(leaves)
        found = {
            "count": len(seqs), "first_seq": seqs[0] if seqs else None, "last_seq": seqs[-1] if seqs else None,
            "by_kind": dict(sorted(kinds.items())), "erased": erased,
        }  # fmt: skip
        for name, value in found.items():
            if claimed.get(name) != value:
                self.fail(
                    layout.ENTRIES_JSONL,
                    f"holds {name} {value}, but {layout.PACK_INFO} says {claimed.get(name)}",
                )

    # -- earlier checkpoints ----------------------------------------------------------------------------

    def _consistency(self, checkpoint: Checkpoint) -> None:
        proven: set[str] = set()
        with self.pack.open(layout.CONSISTENCY) as lines:
            for number, line in enumerate(lines, 1):
                where = f"{layout.CONSISTENCY} line {number}"
                try:
                    item = json.loads(line)
                    old_size, name, new_size = item["old_size"], item["old_checkpoint"], item["new_size"]
                    hashes = [base64.b64decode(h, validate=True) for h in item["hashes"]]
                    if not (isinstance(name, str) and type(old_size) is int and type(new_size) is int):
                        raise TypeError("old_checkpoint is text, the sizes whole numbers")
                except (ValueError, KeyError, TypeError, binascii.Error):
                    self.fail(where, "not a consistency proof (old_size, old_checkpoint, new_size, hashes)")
                    continue
                if name not in self.pack.digests:
                    self.fail(where, f"its checkpoint {name} is not in the pack")
                    continue
                proven.add(name)
                try:
                    old = open_checkpoint(self.pack.read(name), self.verifiers, origin=self.origin)
                except (NoteError, CheckpointError) as exc:
                    self.fail(name, f"does not verify with the key you gave: {exc}")
                    continue
                if (old.size, new_size) != (old_size, checkpoint.size):
                    self.fail(
                        where, f"is for sizes {old_size} to {new_size}, not {old.size} to {checkpoint.size}"
                    )
                    continue
                try:
                    verify_consistency(old.size, checkpoint.size, old.root, checkpoint.root, hashes)
                except ProofError as exc:
                    self.fail(name, f"is not consistent with checkpoint {checkpoint.size}: {exc}")
                    continue
                self.report.consistency += 1
        for name in self.pack.names():
            if name.startswith(layout.CHECKPOINTS_DIR + "/") and name not in proven:
                self.fail(name, "no consistency proof in the pack ties it to the pack's checkpoint")

    # -- the Parquet copy ------------------------------------------------------------------------------

    def _parquet(self) -> None:
        jsonl = (row for _, row in self._rows())
        counts = [0, 0]
        try:
            with self.pack.open(layout.ENTRIES_PARQUET) as stream:
                for number, (mine, theirs) in enumerate(zip_longest(read_parquet(stream), jsonl), 1):
                    counts[0] += mine is not None
                    counts[1] += theirs is not None
                    if mine is not None and theirs is not None and mine != theirs:
                        self.fail(
                            layout.ENTRIES_PARQUET,
                            f"row {number} (seq {mine.get('seq')}) differs from {layout.ENTRIES_JSONL} line {number}",
                        )
                        return
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is not the rows
            self.fail(layout.ENTRIES_PARQUET, f"cannot be read as the pack's Parquet: {exc}")
            return
        if counts[0] != counts[1]:
            self.fail(layout.ENTRIES_PARQUET, f"holds {counts[0]} rows, {layout.ENTRIES_JSONL} {counts[1]}")


def _is_row(row: object) -> bool:
    if not isinstance(row, dict) or tuple(row) != layout.COLUMNS:
        return False
    if type(row["seq"]) is not int or row["seq"] < 1:
        return False
    return all(_utf8(row[n]) or (n in layout.NULLABLE and row[n] is None) for n in layout.COLUMNS[1:])


def _utf8(value: object) -> bool:
    """Text that UTF-8 can hold: JSON's \\ud800 escapes make lone surrogates, which it cannot."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _proof(line: bytes) -> tuple[int, int, int, bytes, list[bytes]] | None:
    try:
        item = json.loads(line)
        seq, index, size = item["seq"], item["leaf_index"], item["tree_size"]
        leaf = base64.b64decode(item["leaf_hash"], validate=True)
        hashes = [base64.b64decode(h, validate=True) for h in item["hashes"]]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if not all(type(n) is int for n in (seq, index, size)):
        return None
    return seq, index, size, leaf, hashes
