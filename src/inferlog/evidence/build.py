"""Building an evidence pack: entries, their proofs against one signed checkpoint, a signed manifest.

The pack is proven against the newest checkpoint the store keeps, which must be signed by the key
that signs the manifest and must cover every entry of the period. A pack never signs a checkpoint of
its own: signing tree heads is the checkpointer's job (it keeps the signer's consistency guard), so
a log whose period is not yet covered is refused with the command that fixes it.

Each row's leaf hash and payload commitment are checked as it is read (naming the seq), and the
finished pack is verified by the library verifier before it is kept, proofs included: a store that no
longer matches its checkpoints yields an error, never a pack that fails later. Each leaf is parsed
once; the Parquet file is written beside the JSON lines in the same pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferlog import __version__
from inferlog.errors import CheckpointError, IntegrityError, NoteError, ProofError, UsageError
from inferlog.evidence import layout, report
from inferlog.evidence.container import write_zip
from inferlog.evidence.rows import PackRow, read_rows, require_pyarrow, write_parquet
from inferlog.evidence.select import Chosen, Selection, choose
from inferlog.evidence.summary import Tally
from inferlog.evidence.verify import verify_pack
from inferlog.integrity.tree import hashes_of
from inferlog.ledger.batch import inclusion_proofs
from inferlog.ledger.checkpoint import Checkpoint, NoteSigner, open_checkpoint
from inferlog.ledger.hashing import b64, leaf_hash
from inferlog.ledger.merkle import TiledHashes, consistency_proof, verify_consistency
from inferlog.pipeline import commitment
from inferlog.record.canonical import format_timestamp
from inferlog.store.base import LedgerRow, StoredCheckpoint
from inferlog.store.protocols import AuditStore

EARLIER_LIMIT = 64  # earlier checkpoints a pack proves consistent with its own, at most


@dataclass(frozen=True)
class BuiltPack:
    """What was written: where, against which checkpoint, how many entries, and what was left out."""

    path: Path
    checkpoint: Checkpoint
    entries: int
    earlier: list[int]  # sizes of the earlier checkpoints proven consistent with it
    later: int  # related entries logged after the checkpoint (not in the pack)
    summary: dict[str, Any]


def build_pack(
    store: AuditStore,
    selection: Selection,
    signer: NoteSigner,
    out: Path,
    *,
    earlier_limit: int = EARLIER_LIMIT,
    now: dt.datetime | None = None,
) -> BuiltPack:
    """Write the pack for ``selection`` to ``out``: a zip if its name ends in ``.zip``, else a folder."""
    require_pyarrow()
    if out.exists():
        raise UsageError(f"{out} exists: a pack is never written over; choose a new --out")
    if not out.parent.is_dir():
        raise UsageError(f"no folder {out.parent} for --out {out}: create it first")
    stored, checkpoint = newest_checkpoint(store, signer)
    chosen = choose(store, selection, checkpoint.size)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        writer = _Writer(store, selection, signer, staging, checkpoint)
        built = writer.write(stored, chosen, earlier_limit, now or dt.datetime.now(dt.UTC))
        if out.suffix == ".zip":
            partial = staging.with_suffix(".zip")
            try:
                write_zip(staging, writer.names, partial)
                os.replace(partial, out)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
        else:
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _self_check(out, signer)
    return BuiltPack(out, checkpoint, built.kinds.total(), writer.earlier, chosen.later, built.summary())


def newest_checkpoint(store: AuditStore, signer: NoteSigner) -> tuple[StoredCheckpoint, Checkpoint]:
    """The store's newest checkpoint, which must be signed by ``signer``'s key for its origin."""
    kept = store.checkpoints()
    if not kept:
        raise UsageError("the log has no signed checkpoint yet: run `inferlog checkpoint` first")
    newest = kept[-1]
    try:
        return newest, open_checkpoint(newest.note, [signer.verifier()], origin=signer.name)
    except (NoteError, CheckpointError) as exc:
        raise IntegrityError(
            f"the newest checkpoint ({newest.size}) does not verify with the key {signer.name}: {exc}"
        ) from exc


def _self_check(out: Path, signer: NoteSigner) -> None:
    """The builder's own check of what it wrote, by the library verifier."""
    result = verify_pack(out, [signer.verifier()])
    if not result.ok:
        (shutil.rmtree if out.is_dir() else Path.unlink)(out)
        raise IntegrityError(f"the pack did not verify once written, so it was removed: {result.problems[0]}")


class _Writer:
    """Writes one pack's files into a staging folder and signs the manifest over them."""

    def __init__(
        self,
        store: AuditStore,
        selection: Selection,
        signer: NoteSigner,
        folder: Path,
        checkpoint: Checkpoint,
    ) -> None:
        self.store = store
        self.selection = selection
        self.signer = signer
        self.folder = folder
        self.checkpoint = checkpoint
        self.hashes: TiledHashes = hashes_of(store)
        self.names: list[str] = []
        self.earlier: list[int] = []

    def put(self, name: str, data: bytes) -> None:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.names.append(name)

    def put_json(self, name: str, data: Any) -> None:
        self.put(name, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def write(self, stored: StoredCheckpoint, chosen: Chosen, earlier_limit: int, now: dt.datetime) -> Tally:
        self.put(layout.CHECKPOINT, stored.note)
        self.put(layout.VERIFIER_KEY, (self.signer.verifier_key_string() + "\n").encode())
        tally = self._entries(chosen)
        consistency = self._earlier(stored, earlier_limit)
        since = format_timestamp(self.selection.since)
        info = self._info(chosen, tally, now)
        summary = {**info, **tally.summary(), "consistency": consistency}
        lineage, policy = tally.lineage(), tally.policy(since)
        self.put_json(layout.PACK_INFO, info)
        self.put_json(layout.SUMMARY, summary)
        self.put_json(layout.MODELS, lineage)
        self.put_json(layout.POLICY, policy)
        self.put(layout.REPORT, report.render(summary, lineage, policy).encode("utf-8"))
        self.put(layout.VERIFIER_SCRIPT, Path(__file__).with_name("standalone.py").read_bytes())
        self.put(layout.README, report.readme(info).encode("utf-8"))
        self._sign_manifest()
        return tally

    def _entries(self, chosen: Chosen) -> Tally:
        """entries.jsonl, proofs/inclusion.jsonl and entries.parquet, in one pass over the rows."""
        tally = Tally()
        size = self.checkpoint.size
        (self.folder / "proofs").mkdir()
        seqs = chosen.seqs()
        # Neighbouring entries' proofs share most subtrees: one SharedHashes serves them all.
        proofs_of = inclusion_proofs((seq - 1 for seq in seqs), size, self.hashes)
        with (
            (self.folder / layout.ENTRIES_JSONL).open("wb") as entries,
            (self.folder / layout.INCLUSION).open("wb") as proofs,
        ):

            def packed_rows() -> Iterator[PackRow]:
                for row, proof in zip(read_rows(self.store, seqs), proofs_of, strict=True):
                    leaf = json.loads(row.leaf)  # parsed once: the check, the row and the tally use it
                    _check_row(row, leaf)
                    packed = PackRow.of(row, leaf)
                    entries.write(packed.json_line())
                    proofs.write(_line({
                        "seq": row.seq, "leaf_index": row.seq - 1, "tree_size": size,
                        "leaf_hash": packed.leaf_hash, "hashes": [b64(h) for h in proof],
                    }))  # fmt: skip
                    tally.add(packed, chosen.roles[row.seq], leaf)
                    yield packed

            write_parquet(packed_rows(), self.folder / layout.ENTRIES_PARQUET)
        self.names += [layout.ENTRIES_JSONL, layout.INCLUSION, layout.ENTRIES_PARQUET]
        return tally

    def _earlier(self, newest: StoredCheckpoint, limit: int) -> list[dict[str, Any]]:
        """Earlier checkpoints of this key, each with a checked consistency proof to the pack's."""
        size, root = self.checkpoint.size, self.checkpoint.root
        lines = []
        for stored, earlier in _earlier_checkpoints(self.store, self.signer, self.selection, size, limit):
            proof = consistency_proof(earlier.size, size, self.hashes)
            try:
                verify_consistency(earlier.size, size, earlier.root, root, proof)
            except ProofError as exc:
                raise IntegrityError(
                    f"checkpoint {earlier.size} is not consistent with checkpoint {size} as the store has "
                    f"them ({exc}); run `inferlog verify`"
                ) from exc
            name = layout.earlier_checkpoint(earlier.size)
            self.put(name, stored.note)
            self.earlier.append(earlier.size)
            lines.append({"old_size": earlier.size, "old_checkpoint": name, "new_size": size,
                          "hashes": [b64(h) for h in proof]})  # fmt: skip
        self.put(layout.CONSISTENCY, b"".join(_line(line) for line in lines))
        return [{"old_size": line["old_size"], "new_size": size} for line in lines]

    def _info(self, chosen: Chosen, tally: Tally, now: dt.datetime) -> dict[str, Any]:
        seqs = chosen.seqs()
        selection = self.selection
        return {
            "format": layout.FORMAT,
            "created_at": format_timestamp(now),
            "built_by": f"inferlog {__version__}",
            "origin": self.checkpoint.origin,
            "verifier_key": self.signer.verifier_key_string(),
            "selection": {
                "system": selection.system,
                "since": format_timestamp(selection.since),
                "until": format_timestamp(selection.until),
                "subject": selection.subject,
                "model": selection.model,
            },
            "checkpoint": {
                "size": self.checkpoint.size,
                "root": b64(self.checkpoint.root),
                "file": layout.CHECKPOINT,
            },
            "earlier_checkpoints": list(self.earlier),
            "entries": {
                "count": len(seqs),
                "first_seq": seqs[0] if seqs else None,
                "last_seq": seqs[-1] if seqs else None,
                "by_kind": dict(sorted(tally.kinds.items())),
                "erased": sum(tally.erased.values()),
            },
            "later_entries_left_out": chosen.later,
        }

    def _sign_manifest(self) -> None:
        digests = {}
        for name in self.names:
            digest = hashlib.sha256()
            with (self.folder / name).open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
            digests[name] = digest.hexdigest()
        self.put(layout.MANIFEST, self.signer.sign(layout.manifest_text(digests)))


def _check_row(row: LedgerRow, leaf: dict[str, Any]) -> None:
    """The row's leaf hash and payload commitment hold (else the store was changed: refuse)."""
    if leaf_hash(row.leaf) != row.leaf_hash:
        raise IntegrityError(f"seq {row.seq}: its leaf does not hash to its leaf hash; run `inferlog verify`")
    if row.body is None:
        return
    commit = leaf.get("commit", "")
    if row.salt is None or b64(commitment(row.salt, row.body)) != commit:
        raise IntegrityError(
            f"seq {row.seq}: its payload does not match the leaf's commitment; run `inferlog verify`"
        )


def _earlier_checkpoints(
    store: AuditStore, signer: NoteSigner, selection: Selection, size: int, limit: int
) -> list[tuple[StoredCheckpoint, Checkpoint]]:
    """The last checkpoint made before the period and those made since, thinned to ``limit``.

    Only checkpoints this key signed for this origin: one under an earlier key proves nothing here.
    """
    verifier = [signer.verifier()]
    signed = []
    for stored in store.checkpoints():
        if not 0 < stored.size < size:
            continue
        try:
            signed.append((stored, open_checkpoint(stored.note, verifier, origin=signer.name)))
        except (NoteError, CheckpointError):
            continue
    before = [pair for pair in signed if pair[0].created_at < selection.since]
    picked = before[-1:] + [pair for pair in signed if pair[0].created_at >= selection.since]
    return _thin(picked, limit)


def _thin(items: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` items spread evenly, keeping the first and the last."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return list(items[-limit:]) if limit == 1 else []
    step = (len(items) - 1) / (limit - 1)
    return [items[round(i * step)] for i in range(limit)]


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"
