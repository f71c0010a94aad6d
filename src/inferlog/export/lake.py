"""The lake: a Hive-partitioned Parquet dataset that each run extends with the entries logged since.

    DIR/system=credit/date=2026-03-04/part-00000000000000000001-00000000000000004711.parquet
    DIR/_inferlog/cursor.json      what the dataset holds and how far it goes (the cursor)

Each run reads the entries after the cursor up to the log's size when it started, writes them in
commits of at most ``chunk_rows`` entries (one new file per partition a commit touches, named by the
first and last seq of its rows), and then moves the cursor. Files are never rewritten.

**Exactly once.** A commit's files are written under hidden temporary names, synced and renamed;
the cursor is written (atomically, synced) only after them. A run that dies leaves a ``pending``
marker: the next run first deletes what a dead run wrote past the cursor (renamed files whose first
seq is beyond it, and temporary files), then writes those entries again. So every entry is in
exactly one file once a run ends, and at no moment are two files holding the same row. A lock held
by the running export keeps a second writer out (the kernel releases it however the process dies).

**What the dataset is** is fixed when it is made: its partition keys, its filters (``kinds``
``("inference", "feedback")`` unless a kind is asked for) and whether sealed fields are revealed. A
later run that asks for something else is refused, so a lake never mixes two shapes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inferlog.errors import UsageError
from inferlog.export.durable import exclusive, sync_folder, write_atomic
from inferlog.export.hive import date_of
from inferlog.export.lakefiles import Commit, lake_schema
from inferlog.record.model import InferenceRecord, StoredEntry
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.protocols import EntryReader

PARTITION_KEYS = ("system", "date", "model")
"""What a lake can be partitioned by, in any order: the entry's system, UTC day of ``ts``, model name."""

DEFAULT_PARTITION_BY = ("system", "date")
DEFAULT_KINDS = ("inference", "feedback")
"""The kinds a lake holds unless one is asked for: the payloads, not the audit trail (access, admin)."""

FORMAT = "inferlog-lake/1"
STATE_DIR = "_inferlog"  # a leading "_": Spark, DuckDB and pyarrow skip it when reading the dataset
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_TEMPORARY = re.compile(r"^\.part-.*\.tmp$")
_NOT_FILTERS = ("after", "limit", "order")

Reveal = Callable[[list[StoredEntry]], list[StoredEntry]]
"""Opens sealed fields of a page of entries (``None``: they stay sealed)."""


def parse_partition_by(text: str) -> tuple[str, ...]:
    """``"system,date,model"`` as keys; an unknown, repeated or missing key is a :class:`UsageError`."""
    keys = tuple(part.strip() for part in text.split(","))
    unknown = [key for key in keys if key not in PARTITION_KEYS]
    if unknown:
        shown = ", ".join(repr(key) for key in unknown) if text.strip() else "nothing"
        raise UsageError(f"cannot partition by {shown}: choose from {', '.join(PARTITION_KEYS)}")
    if len(set(keys)) != len(keys):
        raise UsageError(f"partition keys repeat in {text!r}: name each once")
    return keys


@dataclass(frozen=True)
class LakeSpec:
    """What a lake holds, fixed when it is made."""

    partition_by: tuple[str, ...]
    filters: dict[str, Any]  # Query.describe() without the paging
    revealed: bool  # sealed fields written as plaintext (made with the keys and a stated purpose)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition_by": list(self.partition_by),
            "filters": self.filters,
            "sealed_fields": "revealed" if self.revealed else "sealed",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LakeSpec:
        return cls(tuple(data["partition_by"]), dict(data["filters"]), data["sealed_fields"] == "revealed")

    def differences(self, other: LakeSpec) -> list[str]:
        """How ``other`` (a run's request) differs from this (the dataset's), in words."""
        out = []
        if other.partition_by != self.partition_by:
            out.append(
                f"it is partitioned by {','.join(self.partition_by)}, not {','.join(other.partition_by)}"
            )
        if other.filters != self.filters:
            out.append(f"it holds {_words(self.filters)}, not {_words(other.filters)}")
        if other.revealed != self.revealed:
            out.append(
                "its sealed fields are revealed (plaintext): reveal them this time too, for a stated purpose"
                if self.revealed
                else "its sealed fields are kept sealed: this run would write plaintext"
            )
        return out


@dataclass(frozen=True)
class LakeState:
    """A lake's ``_inferlog/cursor.json``: its spec and how far it goes."""

    spec: LakeSpec
    cursor: int = 0  # every entry with seq <= cursor that matches the spec is in exactly one file
    rows: int = 0
    files: int = 0

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT, **self.spec.to_dict(), "cursor": self.cursor, "rows": self.rows,
            "files": self.files, "updated_at": dt.datetime.now(dt.UTC).isoformat(),
        }  # fmt: skip
        return json.dumps(data, indent=2).encode("utf-8") + b"\n"


@dataclass
class LakeRun:
    """What one run added."""

    root: Path
    spec: LakeSpec  # what the lake holds
    started_after: int  # the cursor before the run
    cursor: int  # the cursor after it
    rows: int = 0
    files: int = 0
    by_system: Counter[str] = field(default_factory=Counter)


class Lake:
    """A lake folder and its state under ``_inferlog/``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.state_dir = self.root / STATE_DIR
        self._cursor_file = self.state_dir / "cursor.json"
        self._pending = self.state_dir / "pending"

    def state(self) -> LakeState | None:
        """The committed state, or ``None`` if no export has made this lake yet."""
        try:
            data = json.loads(self._cursor_file.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:  # not JSON, not UTF-8
            raise self._damaged(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(
                f"{self._cursor_file} is not an {FORMAT} cursor: is this folder an inferlog lake?"
            )
        try:
            state = LakeState(LakeSpec.from_dict(data), data["cursor"], data["rows"], data["files"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._damaged(f"{type(exc).__name__}: {exc}") from None
        if not all(type(n) is int and n >= 0 for n in (state.cursor, state.rows, state.files)):
            raise self._damaged("cursor, rows and files must be whole numbers")
        return state

    def _damaged(self, why: str) -> UsageError:
        return UsageError(
            f"{self._cursor_file} is damaged ({why}); the lake cannot be continued safely: restore that "
            "file from a backup, or export into a new folder"
        )

    def prepare(self) -> None:
        """Check the folder can be (or already is) a lake, and make it and its state folder."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"{self.root} is a file: the lake is a folder (give a new or empty one)")
        if not self.root.exists():
            if not self.root.parent.is_dir():
                raise UsageError(f"no folder {self.root.parent} for the lake {self.root}: create it first")
            self.root.mkdir()
            sync_folder(self.root.parent)
        if not self._cursor_file.exists() and any(p.name != STATE_DIR for p in self.root.iterdir()):
            raise UsageError(
                f"{self.root} holds other files and is not an inferlog lake: give a new or empty folder"
            )
        if not self.state_dir.is_dir():
            self.state_dir.mkdir()
            sync_folder(self.root)

    def begin(self, spec: LakeSpec) -> LakeState:
        """The state to continue from (made for a new lake), after undoing what a dead run left."""
        state = self.state()
        if state is None:
            state = LakeState(spec)
            write_atomic(self._cursor_file, state.to_json())
        elif differences := state.spec.differences(spec):
            raise UsageError(
                f"{self.root} is a lake made differently: {'; '.join(differences)} (or use a new folder)"
            )
        if self._pending.exists():
            self._undo_beyond(state.cursor)
        write_atomic(self._pending, f"{state.cursor}\n".encode())
        return state

    def commit(self, state: LakeState) -> None:
        """Move the cursor: the files of a commit become part of the dataset."""
        write_atomic(self._cursor_file, state.to_json())

    def end(self) -> None:
        self._pending.unlink(missing_ok=True)
        sync_folder(self.state_dir)

    def _undo_beyond(self, cursor: int) -> None:
        """Delete what a dead run wrote after ``cursor``: its renamed files and its temporary ones."""
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [name for name in dirs if name != STATE_DIR]
            doomed = [
                name for name in files
                if _TEMPORARY.match(name) or ((found := _PART.match(name)) and int(found.group(1)) > cursor)
            ]  # fmt: skip
            for name in doomed:
                os.unlink(os.path.join(folder, name))
            if doomed:
                sync_folder(Path(folder))


def export_to_lake(
    store: EntryReader,
    root: str | os.PathLike[str],
    *,
    query: Query | None = None,
    partition_by: Sequence[str] | None = None,
    reveal: Reveal | None = None,
    chunk_rows: int = 100_000,
    batch_rows: int = 10_000,
    max_open: int = 64,
    compression: str = "zstd",
    progress: Callable[[int], None] | None = None,
) -> LakeRun:
    """Append the entries logged since the lake's cursor to the lake at ``root`` (made if new).

    ``query`` holds the filters (its paging is ignored; a time window is refused: the lake grows by
    seq, filter on ``date`` when reading); without a kind it selects :data:`DEFAULT_KINDS`.
    ``partition_by`` defaults to the lake's own keys, or :data:`DEFAULT_PARTITION_BY` for a new one.
    ``reveal`` opens sealed fields (the caller has the keys and a purpose); without it they stay
    sealed. A commit ends after ``chunk_rows`` entries or when a new partition would make more than
    ``max_open`` files at once; ``progress`` gets the number of rows written so far.
    """
    if chunk_rows < 1 or batch_rows < 1 or max_open < 1:
        raise UsageError("chunk_rows, batch_rows and max_open must be at least 1")
    query = _lake_query(query or Query())
    lake = Lake(root)
    lake.prepare()
    with exclusive(lake.state_dir / "lock", str(lake.root)):
        existing = lake.state()
        if partition_by is None:
            partition_by = existing.spec.partition_by if existing else DEFAULT_PARTITION_BY
        keys = parse_partition_by(",".join(partition_by))
        filters = {k: v for k, v in query.describe().items() if k not in _NOT_FILTERS}
        state = lake.begin(LakeSpec(keys, filters, revealed=reveal is not None))
        run = _Run(
            store, lake, state, query, reveal, progress, (chunk_rows, batch_rows, max_open, compression)
        )
        result = run.go()
        lake.end()
    return result


class _Run:
    """One export run: pages in, commits out."""

    def __init__(
        self, store: EntryReader, lake: Lake, state: LakeState, query: Query, reveal: Reveal | None,
        progress: Callable[[int], None] | None, sizes: tuple[int, int, int, str],
    ) -> None:  # fmt: skip
        self.store, self.lake, self.state, self.query = store, lake, state, query
        self.reveal, self.progress = reveal, progress
        self.chunk_rows, self.batch_rows, self.max_open, self.compression = sizes
        self.keys = state.spec.partition_by
        self.schema = lake_schema(self.keys)
        self.result = LakeRun(lake.root, state.spec, state.cursor, state.cursor)
        self.current = self._new_commit()

    def go(self) -> LakeRun:
        head = self.store.size()  # entries up to here are all committed: seq is gap-free, in commit order
        if head < self.state.cursor:
            raise UsageError(
                f"the log holds {head} entries and the lake {self.lake.root} goes to seq {self.state.cursor}: "
                "it was made from another log"
            )
        try:
            self._pages(head)
        except BaseException:
            self.current.discard()
            raise
        return self.result

    def _pages(self, head: int) -> None:
        query = replace(self.query, after=self.state.cursor, limit=MAX_PAGE, order="asc")
        commit = self.current
        last = self.state.cursor
        while query.after < head:
            page = self.store.query(query)
            entries = [stored for stored in page.entries if stored.seq <= head]
            if self.reveal is not None and entries:
                entries = self.reveal(entries)
            for stored in entries:
                values = self._values(stored)
                if commit.rows >= self.chunk_rows or commit.would_exceed(values, self.max_open):
                    self._commit(commit, last)
                    commit = self.current = self._new_commit()
                commit.add(values, stored)
                self.result.by_system[stored.entry.system] += 1
                last = stored.seq
            if page.next_cursor is None or not entries or entries[-1].seq >= head:
                break
            query = query.next(page.next_cursor)
        self._commit(commit, head)  # nothing else matches up to head

    def _new_commit(self) -> Commit:
        return Commit(self.lake.root, self.keys, self.schema, self.batch_rows, self.compression)

    def _values(self, stored: StoredEntry) -> tuple[str | None, ...]:
        entry = stored.entry
        out: list[str | None] = []
        for key in self.keys:
            if key == "system":
                out.append(entry.system)
            elif key == "date":
                out.append(date_of(entry.ts))
            else:
                out.append(entry.model.name if isinstance(entry, InferenceRecord) else None)
        return tuple(out)

    def _commit(self, commit: Commit, cursor: int) -> None:
        files = commit.finish()
        if cursor == self.state.cursor and not files:
            return
        self.state = replace(
            self.state, cursor=cursor, rows=self.state.rows + commit.rows, files=self.state.files + files
        )
        self.lake.commit(self.state)
        self.result.cursor = cursor
        self.result.rows += commit.rows
        self.result.files += files
        if self.progress is not None:
            self.progress(self.result.rows)


def _lake_query(query: Query) -> Query:
    if query.since is not None or query.until is not None:
        raise UsageError(
            "a lake grows by seq, not by time: leave out --since/--until (filter on its date partition when reading)"
        )
    if query.kind is None and query.kinds is None:
        query = replace(query, kinds=DEFAULT_KINDS)
    return query


def _words(filters: dict[str, Any]) -> str:
    shown = {k: "|".join(map(str, v)) if isinstance(v, list) else v for k, v in filters.items()}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "everything"
