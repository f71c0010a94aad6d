"""The files of one lake commit: a Parquet file per partition, written hidden, then renamed by seq range.

A file's rows are the flat :data:`~inferlog.export.base.COLUMNS` less the partition columns (their
values are in the folder names, as Hive, Spark, DuckDB and pyarrow expect), in seq order. It is
written as ``.part-<pid>-<n>.tmp`` (a leading ``.``: no reader lists it), synced, and renamed to
``part-<first seq>-<last seq>.parquet`` with both seqs zero-padded to 20 digits, so names sort in
log order and a file's name says which rows it holds.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inferlog.export.base import flat_row
from inferlog.export.durable import make_folders, sync_folder
from inferlog.export.hive import partition_path
from inferlog.export.parquet import _pyarrow, schema
from inferlog.record.model import StoredEntry

FILE_COLUMNS_LEFT_OUT = ("system", "model")
"""The flat columns that become folders when partitioned by them (``date`` is not a flat column)."""

_numbers = itertools.count(1)


def lake_schema(partition_by: Sequence[str]) -> Any:
    """The schema of a lake's files (a ``pyarrow.Schema``): the flat export's, less the partition columns."""
    flat = schema()
    keep = [f for f in flat if f.name not in partition_by]
    return _pyarrow().schema(
        keep, metadata={"inferlog.export": "lake-v1", "inferlog.partition_by": ",".join(partition_by)}
    )


class _PartFile:
    """One partition's file in a commit, open until the commit finishes."""

    def __init__(self, folder: Path, arrow_schema: Any, batch_rows: int, compression: str) -> None:
        pa = _pyarrow()
        self.folder = folder
        self.temporary = folder / f".part-{os.getpid()}-{next(_numbers)}.tmp"
        self.stream = self.temporary.open("wb")
        self.writer = pa.parquet.ParquetWriter(self.stream, arrow_schema, compression=compression)
        self.schema = arrow_schema
        self.batch_rows = batch_rows
        self.rows: list[dict[str, Any]] = []
        self.first = self.last = 0

    def add(self, stored: StoredEntry) -> None:
        if not self.first:
            self.first = stored.seq
        self.last = stored.seq
        self.rows.append(flat_row(stored))
        if len(self.rows) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_batch(_pyarrow().RecordBatch.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def finish(self) -> None:
        """Write what is left, sync, and give the file its final name (the folder is synced by the caller)."""
        self._flush()
        self.writer.close()
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.temporary, self.folder / f"part-{self.first:020d}-{self.last:020d}.parquet")

    def discard(self) -> None:
        """Close the writer before its stream (else it complains at collection) and drop the file."""
        with contextlib.suppress(Exception):  # a writer on a failed run may refuse to close cleanly
            self.writer.close()
        self.stream.close()
        self.temporary.unlink(missing_ok=True)


class Commit:
    """The files one commit writes, one per partition it touches."""

    def __init__(
        self, root: Path, keys: Sequence[str], arrow_schema: Any, batch_rows: int, compression: str
    ) -> None:
        self.root, self.keys, self.schema = root, keys, arrow_schema
        self.batch_rows, self.compression = batch_rows, compression
        self.files: dict[tuple[str | None, ...], _PartFile] = {}
        self.rows = 0

    def would_exceed(self, values: tuple[str | None, ...], max_open: int) -> bool:
        """True if ``values`` is a new partition and ``max_open`` files are open already."""
        return values not in self.files and len(self.files) >= max_open

    def add(self, values: tuple[str | None, ...], stored: StoredEntry) -> None:
        part = self.files.get(values)
        if part is None:
            folder = make_folders(self.root, partition_path(self.keys, values))
            part = self.files[values] = _PartFile(folder, self.schema, self.batch_rows, self.compression)
        part.add(stored)
        self.rows += 1

    def finish(self) -> int:
        """Finish every file and sync their folders; the number of files written."""
        try:
            for part in self.files.values():
                part.finish()
        except BaseException:
            self.discard()
            raise
        for folder in {part.folder for part in self.files.values()}:
            sync_folder(folder)
        return len(self.files)

    def discard(self) -> None:
        """Drop the files not renamed yet (a failed run; the next one undoes any renamed past the cursor)."""
        for part in self.files.values():
            part.discard()
