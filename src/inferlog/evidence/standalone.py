#!/usr/bin/env python3
"""Verify an inferlog evidence pack offline, without inferlog: Python 3.11+ and `cryptography` only.

    python3 verify_pack.py PACK --key KEY

PACK is the pack's zip or folder; KEY is the log's verifier key (``name+hex+base64``, as the log's
operator gave it to you) or a file holding it. Exit code 0: every check below holds; 1: the pack does
not verify (each problem is printed, naming the file, line or entry); 2: the command was misused.

The checks, written here from the public specifications (C2SP signed-note and tlog-checkpoint, RFC
6962/9162 Merkle proofs, Apache Parquet), independently of inferlog's own code:

1. the zip is laid out exactly as inferlog writes one (stored members, fixed dates and modes, sorted,
   nothing else), so that no byte can change unnoticed; a folder holds only the pack's files;
2. ``manifest.note`` is a signed note by KEY, and every file's SHA-256 is the one it lists;
3. ``checkpoint.note`` is a checkpoint signed by KEY for the log KEY names (the origin);
4. each line of ``entries.jsonl``: ``SHA-256(0x00 || leaf)`` is its leaf hash, its columns are its
   leaf's, ``SHA-256(salt || body)`` is the leaf's ``commit`` (salt and body are null once erased),
   seqs ascend; each has one inclusion proof in ``proofs/inclusion.jsonl`` that leads to the
   checkpoint's root, and no proof lacks its entry;
5. each earlier checkpoint is signed by KEY and its consistency proof leads to the pack's checkpoint;
6. ``entries.parquet`` holds the same rows as ``entries.jsonl``; ``pack.json``'s counts hold.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "inferlog-evidence-pack/1"
MANIFEST_HEADER = "inferlog evidence pack v1"
COLUMNS = ("seq", "id", "kind", "system", "ts", "leaf", "leaf_hash", "salt", "body")
NULLABLE = ("salt", "body")
REQUIRED = ("manifest.note", "pack.json", "checkpoint.note", "entries.jsonl", "entries.parquet",
            "proofs/inclusion.jsonl", "proofs/consistency.jsonl")  # fmt: skip
NAME = re.compile(r"[A-Za-z0-9_]+(?:[./-][A-Za-z0-9_]+)*")


class Bad(Exception):
    """Something the pack claims does not hold (the message says what)."""


# -- C2SP signed notes and checkpoints --------------------------------------------------------------


class Key:
    """A note verifier key: ``name+hex8(key id)+base64(0x01 || Ed25519 public key)``."""

    def __init__(self, text: str) -> None:
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]) or not parts[0]:
            raise ValueError("a verifier key looks like name+hex8+base64")
        self.name, self.string = parts[0], text.strip()
        raw = base64.b64decode(parts[2], validate=True)
        if len(raw) != 33 or raw[0] != 1:
            raise ValueError("not an Ed25519 verifier key")
        self.id = hashlib.sha256(self.name.encode() + b"\n\x01" + raw[1:]).digest()[:4]
        if self.id.hex() != parts[1]:
            raise ValueError("the key id does not match the key")
        self.public = Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note: bytes, key: Key) -> bytes:
    """The text of a signed note that ``key`` signed; Bad if it is malformed or not signed by it."""
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("not UTF-8") from None
    if re.search(r"[\x00-\x09\x0b-\x1f\x7f]", decoded) or not decoded.endswith("\n"):
        raise Bad("not a signed note (control characters, or no final newline)")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise Bad("not a signed note (no blank line before the signatures)")
    text, lines = decoded[: split + 1].encode(), decoded[split + 2 : -1].split("\n")
    signed = False
    for line in lines:
        if not line.startswith("\u2014 "):
            raise Bad(f"malformed signature line {line!r}")
        name, _, b64 = line[2:].partition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise Bad(f"malformed signature line {line!r}") from None
        if name != key.name or blob[:4] != key.id:
            continue  # another key's signature: ignored, as C2SP requires
        try:
            key.public.verify(blob[4:], text)
        except InvalidSignature:
            raise Bad(f"the signature by {key.name} is invalid") from None
        signed = True
    if not signed:
        raise Bad(f"no signature by the key {key.name}+{key.id.hex()}")
    return text


def open_checkpoint(note: bytes, key: Key) -> tuple[int, bytes]:
    """(size, root) of a checkpoint signed by ``key`` for the log ``key`` names."""
    lines = open_note(note, key).decode().split("\n")
    if len(lines) < 4 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise Bad("not a checkpoint (origin, size, root)")
    if lines[0] != key.name:
        raise Bad(f"it is a checkpoint of {lines[0]!r}, not of {key.name!r}")
    root = _b64decode(lines[2])
    if len(root) != 32:
        raise Bad("its root is not 32 bytes")
    return int(lines[1]), root


# -- RFC 6962 / 9162 Merkle proofs ------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size or any(len(h) != 32 for h in proof):
        raise Bad(f"leaf {index} cannot be in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Bad("the proof is too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise Bad("the proof does not lead to the checkpoint's root")


def verify_consistency(first: int, second: int, old: bytes, new: bytes, proof: list[bytes]) -> None:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first <= second or any(len(h) != 32 for h in proof):
        raise Bad(f"no consistency proof from {first} to {second}")
    if first == second:
        if proof or old != new:
            raise Bad("two different roots for one size")
        return
    if not proof:
        raise Bad("the proof is empty")
    path = [old, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Bad("the proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old or sr != new:
        raise Bad("the proof does not lead from the old root to the new one")


# -- the container --------------------------------------------------------------------------------


class Files:
    """The pack's files: name -> (SHA-256 hex, where to read it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digests: dict[str, str] = {}
        self.spans: dict[str, tuple[int, int]] = {}
        self.problems: list[tuple[str, str]] = []
        if path.is_dir():
            self._folder()
        else:
            self._zip()

    def _folder(self) -> None:
        for file in sorted(self.path.rglob("*")):
            name = file.relative_to(self.path).as_posix()
            if file.is_symlink() or not (file.is_file() or file.is_dir()):
                self.problems.append((name, "is not a regular file"))
            elif file.is_file():
                if NAME.fullmatch(name) is None or ".." in name:
                    self.problems.append((name, "is not a file an evidence pack holds"))
                else:
                    self.digests[name] = hashlib.sha256(file.read_bytes()).hexdigest()

    def _zip(self) -> None:
        local, central, end = (
            struct.Struct("<IHHHHHIIIHH"),
            struct.Struct("<IHHHHHHIIIHHHHHII"),
            struct.Struct("<IHHHHIIH"),
        )
        data = self.path.read_bytes()
        pos, members = 0, list[tuple[str, int, int, int]]()

        def wrong(at: int, what: str) -> Bad:
            return Bad(f"{self.path.name}: at byte {at}: {what}; not a zip as inferlog writes a pack")

        while data[pos : pos + 4] == b"PK\x03\x04":
            if pos + local.size > len(data):
                raise wrong(pos, "the zip ends inside a header")
            _, need, flags, method, time, date, crc, csize, size, nlen, xlen = local.unpack_from(data, pos)
            if (need, flags, method, time, date, xlen, csize) != (20, 0, 0, 0, 33, 0, size):
                raise wrong(pos, "a local header differs from inferlog's")
            name = data[pos + 30 : pos + 30 + nlen].decode("ascii", "replace")
            if NAME.fullmatch(name) is None or ".." in name or (members and name <= members[-1][0]):
                raise wrong(pos, f"member name {name!r} is not one of a pack, or out of order")
            start = pos + 30 + nlen
            content = data[start : start + size]
            if len(content) != size:
                raise wrong(pos, f"member {name} is cut short")
            if zlib.crc32(content) != crc:
                self.problems.append((name, "its CRC-32 in the zip does not match its content (changed)"))
            self.digests[name] = hashlib.sha256(content).hexdigest()
            self.spans[name] = (start, size)
            members.append((name, pos, size, crc))
            pos = start + size
        directory = pos
        for name, offset, size, crc in members:
            fields = central.unpack_from(data, pos) if pos + central.size <= len(data) else None
            wanted = (
                0x02014B50,
                0x0314,
                20,
                0,
                0,
                0,
                33,
                crc,
                size,
                size,
                len(name),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                offset,
            )
            if fields != wanted or data[pos + 46 : pos + 46 + len(name)] != name.encode():
                raise wrong(pos, f"the central directory entry of {name} differs from inferlog's")
            pos += 46 + len(name)
        count = len(members)
        fields = end.unpack_from(data, pos) if pos + end.size <= len(data) else None
        if fields != (0x06054B50, 0, 0, count, count, pos - directory, directory, 0):
            raise wrong(pos, "the end record differs from inferlog's")
        if pos + end.size != len(data):
            raise wrong(pos + end.size, "bytes follow the end record")

    def names(self) -> list[str]:
        return sorted(self.digests)

    def read(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if name in self.spans:
            start, size = self.spans[name]
            length = size - offset if length is None else length
            with self.path.open("rb") as stream:
                stream.seek(start + offset)
                return stream.read(length)
        with (self.path / name).open("rb") as stream:
            stream.seek(offset)
            return stream.read() if length is None else stream.read(length)

    def lines(self, name: str) -> Iterator[bytes]:
        if name in self.spans:
            yield from self.read(name).splitlines(keepends=True)
            return
        with (self.path / name).open("rb") as stream:
            yield from stream

    def size(self, name: str) -> int:
        return self.spans[name][1] if name in self.spans else (self.path / name).stat().st_size


# -- a small Parquet reader: uncompressed, PLAIN, version 1 data pages, flat columns ---------------


class _Thrift:
    """The Thrift compact protocol, enough to read Parquet's footer and page headers."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def struct(self) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            last = last + (head >> 4) if head >> 4 else self.zigzag()
            fields[last] = self.value(head & 0x0F)

    def value(self, kind: int) -> Any:
        if kind in (1, 2):
            return kind == 1
        if kind == 3:
            return self.byte()
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            self.pos += 8
            return struct.unpack_from("<d", self.data, self.pos - 8)[0]
        if kind == 8:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if kind in (9, 10):
            head = self.byte()
            n = head >> 4 if head >> 4 != 15 else self.varint()
            return [self.byte() == 1 if head & 0x0F in (1, 2) else self.value(head & 0x0F) for _ in range(n)]
        if kind == 11:
            n = self.varint()
            types = self.byte() if n else 0
            return {self.value(types >> 4): self.value(types & 0x0F) for _ in range(n)}
        if kind == 12:
            return self.struct()
        raise Bad(f"unknown Thrift type {kind}")


def parquet_rows(files: Files, name: str) -> Iterator[dict[str, Any]]:
    """The rows of the pack's Parquet file, row group by row group."""
    size = files.size(name)
    tail = files.read(name, size - 8, 8)
    if files.read(name, 0, 4) != b"PAR1" or tail[4:] != b"PAR1":
        raise Bad("not a Parquet file")
    footer_size = int.from_bytes(tail[:4], "little")
    meta = _Thrift(files.read(name, size - 8 - footer_size, footer_size)).struct()
    schema = meta[2]
    leaves = [(element[4].decode(), element.get(3, 0)) for element in schema[1:]]
    if tuple(column for column, _ in leaves) != COLUMNS:
        raise Bad(f"its columns are {[column for column, _ in leaves]}, not the pack's")
    for group in meta.get(4, []):
        columns = [
            _column(files, name, chunk[3], optional == 1)
            for chunk, (_, optional) in zip(group[1], leaves, strict=True)
        ]
        for values in zip(*columns, strict=True):
            yield dict(zip(COLUMNS, values, strict=True))


def _column(files: Files, name: str, meta: dict[int, Any], optional: bool) -> list[Any]:
    if meta.get(4, 0) != 0 or 11 in meta:
        raise Bad("a column is compressed or dictionary-encoded, which inferlog never writes")
    kind, count, start, length = meta[1], meta[5], meta[9], meta[7]
    chunk = _Thrift(files.read(name, start, length))
    values: list[Any] = []
    while len(values) < count:
        header = chunk.struct()
        page = chunk.data[chunk.pos : chunk.pos + header[3]]
        chunk.pos += header[3]
        if header[1] != 0 or header[5][2] != 0:
            raise Bad("a page is not a plain version-1 data page")
        n = header[5][1]
        present = [1] * n
        pos = 0
        if optional:
            width = int.from_bytes(page[:4], "little")
            present, pos = _levels(page[4 : 4 + width], n), 4 + width
        for flag in present:
            if not flag:
                values.append(None)
            elif kind == 2:
                values.append(int.from_bytes(page[pos : pos + 8], "little", signed=True))
                pos += 8
            elif kind == 6:
                length = int.from_bytes(page[pos : pos + 4], "little")
                values.append(page[pos + 4 : pos + 4 + length].decode("utf-8"))
                pos += 4 + length
            else:
                raise Bad(f"a column of Parquet type {kind}, which inferlog never writes")
    return values


def _levels(data: bytes, count: int) -> list[int]:
    """Definition levels of bit width 1, RLE / bit-packed hybrid."""
    reader, out = _Thrift(data), list[int]()
    while len(out) < count:
        head = reader.varint()
        if head & 1:
            for b in reader.data[reader.pos : reader.pos + (head >> 1)]:
                out += [(b >> i) & 1 for i in range(8)]
            reader.pos += head >> 1
        else:
            out += [reader.byte()] * (head >> 1)
    return out[:count]


# -- the checks ------------------------------------------------------------------------------------


class Verifier:
    def __init__(self, files: Files, key: Key) -> None:
        self.files, self.key = files, key
        self.problems: list[str] = [f"{where}: {what}" for where, what in files.problems]
        self.info: dict[str, Any] = {}
        self.entries = self.erased = self.included = self.consistent = 0

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def run(self) -> None:
        names = set(self.files.names())
        for name in REQUIRED:
            if name not in names:
                self.fail(name, "missing: every pack holds it")
        if "manifest.note" in names:
            self.manifest()
        if "pack.json" in names:
            self.pack_info()
        if (
            "verifier.key" in names
            and self.files.read("verifier.key").decode("utf-8", "replace").strip() != self.key.string
        ):
            self.fail("verifier.key", "the pack names another key than the one you gave")
        if "checkpoint.note" not in names:
            return
        try:
            size, root = open_checkpoint(self.files.read("checkpoint.note"), self.key)
        except Bad as exc:
            self.fail("checkpoint.note", f"does not verify with the key you gave: {exc}")
            return
        claimed = self.info.get("checkpoint", {})
        if not isinstance(claimed, dict):
            self.fail("pack.json", "its checkpoint is not an object of size and root")
        elif claimed and (claimed.get("size"), claimed.get("root")) != (size, _b64(root)):
            self.fail("pack.json", f"names checkpoint {claimed.get('size')}, not the signed one ({size})")
        if {"entries.jsonl", "proofs/inclusion.jsonl"} <= names:
            self.entries_and_proofs(size, root)
        if "proofs/consistency.jsonl" in names:
            self.consistency(size, root)
        if {"entries.jsonl", "entries.parquet"} <= names:
            self.parquet()

    def manifest(self) -> None:
        note = self.files.read("manifest.note")
        try:
            text = open_note(note, self.key)
        except Bad as exc:
            self.fail("manifest.note", f"its signature does not verify with the key you gave: {exc}")
            text = note.split(b"\n\n", 1)[0] + b"\n"
        lines = text.decode("utf-8", "replace").split("\n")
        if lines[0] != MANIFEST_HEADER:
            self.fail("manifest.note", "not a pack manifest")
            return
        listed = {}
        for line in lines[1:-1]:
            digest, _, name = line.partition("  ")
            listed[name] = digest
        for name in sorted(set(listed) | set(self.files.digests)):
            if name == "manifest.note":
                continue
            if name not in self.files.digests:
                self.fail(name, "listed in the manifest but missing from the pack (removed)")
            elif name not in listed:
                self.fail(name, "in the pack but not in the manifest (added)")
            elif listed[name] != self.files.digests[name]:
                self.fail(name, "its SHA-256 differs from the manifest's (the file was changed)")

    def pack_info(self) -> None:
        try:
            info = json.loads(self.files.read("pack.json"))
        except ValueError as exc:
            self.fail("pack.json", f"not valid JSON: {exc}")
            return
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            self.fail("pack.json", f"not a {FORMAT} pack description")
            return
        self.info = info

    def rows(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        for number, line in enumerate(self.files.lines("entries.jsonl"), 1):
            try:
                row = json.loads(line)
            except ValueError:
                yield number, None
                continue
            good = (
                isinstance(row, dict) and tuple(row) == COLUMNS and type(row["seq"]) is int and row["seq"] > 0
                and all(_utf8(row[c]) or (c in NULLABLE and row[c] is None) for c in COLUMNS[1:])
            )  # fmt: skip
            yield number, row if good else None

    def entries_and_proofs(self, size: int, root: bytes) -> None:
        leaves: dict[int, bytes] = {}
        kinds: Counter[str] = Counter()
        previous = 0
        for number, row in self.rows():
            where = f"entries.jsonl line {number}"
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
            leaves[seq] = self.entry(where, row)
            kinds[row["kind"]] += 1
            self.erased += row["body"] is None
        self.entries = len(leaves)
        self.proofs(size, root, leaves)
        claimed = self.info.get("entries")
        if isinstance(claimed, dict):
            seqs = sorted(leaves)
            found = {"count": len(seqs), "first_seq": seqs[0] if seqs else None, "last_seq": seqs[-1] if seqs else None,
                     "by_kind": dict(sorted(kinds.items())), "erased": self.erased}  # fmt: skip
            for name, value in found.items():
                if claimed.get(name) != value:
                    self.fail(
                        "entries.jsonl", f"holds {name} {value}, but pack.json says {claimed.get(name)}"
                    )

    def entry(self, where: str, row: dict[str, Any]) -> bytes:
        seq, leaf = row["seq"], row["leaf"].encode("utf-8")
        digest = leaf_hash(leaf)
        if _b64(digest) != row["leaf_hash"]:
            self.fail(
                f"seq {seq}", f"its leaf does not hash to its leaf_hash ({where}: leaf or leaf_hash changed)"
            )
        try:
            meta = json.loads(leaf)
        except ValueError:
            meta = None
        if not isinstance(meta, dict):  # not an assert: `python -O` would skip it
            self.fail(f"seq {seq}", "its leaf is not a JSON object")
            return digest
        for name in ("id", "kind", "system", "ts"):
            if meta.get(name) != row[name]:
                self.fail(
                    f"seq {seq}", f"column {name} is {row[name]!r} but its leaf says {meta.get(name)!r}"
                )
        if (row["body"] is None) != (row["salt"] is None):
            self.fail(f"seq {seq}", "it has a body without a salt or a salt without a body")
            return digest
        if row["body"] is None:
            return digest
        body = row["body"].encode("utf-8")
        try:
            salt = base64.b64decode(row["salt"], validate=True)
        except binascii.Error:
            self.fail(f"seq {seq}", "its salt is not base64")
            return digest
        if _b64(hashlib.sha256(salt + body).digest()) != meta.get("commit"):
            self.fail(
                f"seq {seq}", "its body does not match the commitment in its leaf (the payload was changed)"
            )
            return digest
        try:
            entry = json.loads(body)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or (entry.get("id"), entry.get("kind")) != (
            meta.get("id"),
            meta.get("kind"),
        ):
            self.fail(f"seq {seq}", "its committed body is another entry than its leaf")
        return digest

    def proofs(self, size: int, root: bytes, leaves: dict[int, bytes]) -> None:
        waiting, previous = dict(leaves), 0
        for number, line in enumerate(self.files.lines("proofs/inclusion.jsonl"), 1):
            where = f"proofs/inclusion.jsonl line {number}"
            try:
                item = json.loads(line)
                seq, index, tree = item["seq"], item["leaf_index"], item["tree_size"]
                leaf = _b64decode(item["leaf_hash"])
                path = [_b64decode(h) for h in item["hashes"]]
                if not all(type(n) is int for n in (seq, index, tree)):  # not an assert: `python -O`
                    raise TypeError("seq, leaf_index and tree_size are whole numbers")
            except (ValueError, KeyError, TypeError, Bad):
                self.fail(where, "not an inclusion proof (seq, leaf_index, tree_size, leaf_hash, hashes)")
                continue
            if seq <= previous:
                self.fail(where, f"seq {seq} comes after seq {previous}: out of order or repeated")
            previous = max(previous, seq)
            mine = waiting.pop(seq, None)
            if mine is None:
                if seq not in leaves:
                    self.fail(
                        f"seq {seq}", "has an inclusion proof but is not in entries.jsonl (entry dropped)"
                    )
                continue
            if (index, tree, leaf) != (seq - 1, size, mine):
                self.fail(f"seq {seq}", "its inclusion proof is for another leaf, index or tree size")
                continue
            try:
                verify_inclusion(index, tree, mine, path, root)
            except Bad as exc:
                self.fail(
                    f"seq {seq}", f"its inclusion proof does not lead to checkpoint {size}'s root: {exc}"
                )
                continue
            self.included += 1
        for seq in sorted(waiting):
            self.fail(f"seq {seq}", "in entries.jsonl but has no inclusion proof (entry added)")

    def consistency(self, size: int, root: bytes) -> None:
        proven = set()
        for number, line in enumerate(self.files.lines("proofs/consistency.jsonl"), 1):
            where = f"proofs/consistency.jsonl line {number}"
            try:
                item = json.loads(line)
                old_size, name, new_size = item["old_size"], item["old_checkpoint"], item["new_size"]
                path = [_b64decode(h) for h in item["hashes"]]
                if not (isinstance(name, str) and type(old_size) is int and type(new_size) is int):
                    raise TypeError("old_checkpoint is text, the sizes whole numbers")
            except (ValueError, KeyError, TypeError, Bad):
                self.fail(where, "not a consistency proof (old_size, old_checkpoint, new_size, hashes)")
                continue
            if name not in self.files.digests:
                self.fail(where, f"its checkpoint {name} is not in the pack")
                continue
            proven.add(name)
            try:
                old, old_root = open_checkpoint(self.files.read(name), self.key)
            except Bad as exc:
                self.fail(name, f"does not verify with the key you gave: {exc}")
                continue
            if (old, new_size) != (old_size, size):
                self.fail(where, f"is for sizes {old_size} to {new_size}, not {old} to {size}")
                continue
            try:
                verify_consistency(old, size, old_root, root, path)
            except Bad as exc:
                self.fail(name, f"is not consistent with checkpoint {size}: {exc}")
                continue
            self.consistent += 1
        for name in self.files.names():
            if name.startswith("checkpoints/") and name not in proven:
                self.fail(name, "no consistency proof in the pack ties it to the pack's checkpoint")

    def parquet(self) -> None:
        jsonl = (row for _, row in self.rows())
        counts, number = [0, 0], 0
        try:
            table = parquet_rows(self.files, "entries.parquet")
            for number, mine in enumerate(table, 1):
                theirs = next(jsonl, None)
                counts[0] += 1
                counts[1] += theirs is not None
                if theirs is not None and mine != theirs:
                    self.fail(
                        "entries.parquet",
                        f"row {number} (seq {mine['seq']}) differs from entries.jsonl line {number}",
                    )
                    return
        except (Bad, IndexError, KeyError, TypeError, ValueError, struct.error) as exc:
            self.fail("entries.parquet", f"cannot be read as the pack's Parquet: {exc}")
            return
        counts[1] += sum(1 for _ in jsonl)
        if counts[0] != counts[1]:
            self.fail("entries.parquet", f"holds {counts[0]} rows, entries.jsonl {counts[1]}")


def _utf8(value: object) -> bool:
    """Text that UTF-8 can hold: JSON's \\ud800 escapes make lone surrogates, which it cannot."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError):
        raise Bad(f"{text!r} is not base64") from None


def main(argv: list[str] | None = None, out: BinaryIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_pack.py", description="Verify an inferlog evidence pack offline."
    )
    parser.add_argument("pack", type=Path, help="the pack: a .zip file or a folder")
    parser.add_argument(
        "--key", required=True, help="the log's verifier key (name+hex+base64) or a file holding it"
    )
    args = parser.parse_args(argv)
    write = (lambda text: out.write(text.encode() + b"\n")) if out is not None else print
    try:
        text = args.key if "+" in args.key and not Path(args.key).exists() else Path(args.key).read_text()
        key = Key(text)
    except (OSError, ValueError) as exc:
        write(f"error: cannot use the key {args.key!r}: {exc}")
        return 2
    if not args.pack.exists():
        write(f"error: no pack at {args.pack}")
        return 2
    try:
        files = Files(args.pack)
    except Bad as exc:
        write(f"FAIL {exc}")
        write("NOT VERIFIED")
        return 1
    verifier = Verifier(files, key)
    verifier.run()
    for problem in verifier.problems:
        write(f"FAIL {problem}")
    if verifier.problems:
        write(f"NOT VERIFIED: {len(verifier.problems)} problem(s)")
        return 1
    write(
        f"OK {args.pack.name}: manifest signed by {key.name}, every file's SHA-256 matches; {verifier.entries} entries "
        f"({verifier.erased} erased or purged) included in the signed checkpoint; {verifier.consistent} earlier "
        "checkpoint(s) consistent with it; entries.parquet matches entries.jsonl"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
