"""One row per entry in a pack: the stored leaf and payload, exactly, as JSON lines and as Parquet.

A row carries what a verifier needs and nothing re-serialized: the leaf as stored (its SHA-256 with
the 0x00 prefix is the Merkle leaf hash), the salt and the canonical body as stored (their SHA-256 is
the commitment in the leaf). ``id``, ``kind``, ``system`` and ``ts`` repeat the leaf's, for readers.
An erased or purged entry has ``salt`` and ``body`` null: its leaf still proves it existed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferlog.errors import IntegrityError, UsageError
from inferlog.evidence.layout import COLUMNS, NULLABLE
from inferlog.store.base import LedgerRow
from inferlog.store.protocols import LedgerStore

PARQUET_ROWS = 10_000  # rows per row group (and per read when verifying)


@dataclass(frozen=True)
class PackRow:
    """An entry as a pack holds it (see the module docstring)."""

    seq: int
    id: str
    kind: str
    system: str
    ts: str
    leaf: str
    leaf_hash: str  # base64
    salt: str | None  # base64
    body: str | None

    @classmethod
    def of(cls, row: LedgerRow, leaf: dict[str, Any] | None = None) -> PackRow:
        """The pack row of a stored row; ``leaf`` is its leaf parsed, when the caller has it already."""
        if leaf is None:
            leaf = json.loads(row.leaf)
        return cls(
            seq=row.seq,
            id=leaf["id"],
            kind=leaf["kind"],
            system=leaf["system"],
            ts=leaf["ts"],
            leaf=row.leaf.decode("utf-8"),
            leaf_hash=base64.b64encode(row.leaf_hash).decode(),
            salt=base64.b64encode(row.salt).decode()
            if row.body is not None and row.salt is not None
            else None,
            body=row.body.decode("utf-8") if row.body is not None else None,
        )

    @property
    def erased(self) -> bool:
        return self.body is None

    def as_dict(self) -> dict[str, Any]:
        # getattr, not dataclasses.astuple: astuple deep-copies every field, a tenth of a pack build
        return {name: getattr(self, name) for name in COLUMNS}

    def json_line(self) -> bytes:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def read_rows(store: LedgerStore, seqs: Iterable[int]) -> Iterator[LedgerRow]:
    """The stored rows of these seqs (ascending), read in runs so nearby seqs share one query."""
    wanted = sorted(set(seqs))
    index = 0
    while index < len(wanted):
        start = wanted[index]
        rows = store.ledger_rows(start - 1, 1000)
        by_seq = {row.seq: row for row in rows}
        last = rows[-1].seq if rows else start
        while index < len(wanted) and wanted[index] <= last:
            row = by_seq.get(wanted[index])
            if row is None:
                raise IntegrityError(
                    f"seq {wanted[index]} could not be read back from the store; run `inferlog verify`"
                )
            yield row
            index += 1
        if not rows:
            raise IntegrityError(f"seq {start} could not be read back from the store; run `inferlog verify`")


def require_pyarrow() -> None:
    """Refuse early, in one line, where pyarrow is missing (rather than fail a pack over it)."""
    _pyarrow()


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError(
            "evidence packs need pyarrow for their Parquet file: install inferlog[parquet]"
        ) from None
    return pyarrow


def parquet_schema() -> Any:
    pa = _pyarrow()
    return pa.schema(
        [
            pa.field(name, pa.int64() if name == "seq" else pa.string(), nullable=name in NULLABLE)
            for name in COLUMNS
        ]
    )


def write_parquet(rows: Iterable[PackRow], path: Path) -> None:
    """The rows as Parquet, written plainly so that a small reader can check it.

    Uncompressed, no dictionary, version 1 data pages: the pack's standalone verifier reads it with
    the Python standard library alone; DuckDB, pandas and Spark read it as any Parquet file.
    """
    pa = _pyarrow()
    schema = parquet_schema()
    writer = pa.parquet.ParquetWriter(
        str(path), schema, compression="none", use_dictionary=False, write_statistics=False,
        data_page_version="1.0", store_schema=False,
    )  # fmt: skip
    try:
        batch: list[dict[str, Any]] = []
        written = False
        for row in rows:
            batch.append(row.as_dict())
            if len(batch) == PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch, written = [], True
        if batch or not written:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    finally:
        writer.close()


def read_parquet(path_or_stream: Any) -> Iterator[dict[str, Any]]:
    """The rows of a pack's Parquet file, as dicts of the columns, batch by batch."""
    pa = _pyarrow()
    parquet = pa.parquet.ParquetFile(path_or_stream)
    names = parquet.schema_arrow.names
    if tuple(names) != COLUMNS:
        raise ValueError(f"its columns are {names}, expected {list(COLUMNS)}")
    for batch in parquet.iter_batches(batch_size=PARQUET_ROWS):
        yield from batch.to_pylist()
