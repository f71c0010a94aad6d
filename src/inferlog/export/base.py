"""The Exporter protocol and what every format shares: the flat column view and safe destinations.

One entry becomes one row of :data:`COLUMNS` (the data dictionary of the CSV and Parquet formats):
the fields people filter and join on get their own column, JSON-valued fields are JSON text, and
whatever an entry holds beyond that (span ids, model digest, an access entry's purpose, ...) goes
into ``extra`` as one JSON object, so a flat export loses nothing. JSONL keeps entries whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, TypeAlias, runtime_checkable

import msgspec

from inferlog.record.model import StoredEntry

Destination: TypeAlias = str | os.PathLike[str] | IO[bytes]

COLUMNS: tuple[str, ...] = (
    "seq", "id", "kind", "system", "ts", "logged_at", "model", "version", "status", "latency_ms",
    "subject", "actor", "request_id", "trace_id", "inference_id",
    "input", "output", "parameters", "attributes", "error", "label",
    "outcome", "override", "comment", "extra",
)  # fmt: skip
"""Flat columns, in order. See the module docstring for what goes where."""

JSON_COLUMNS: tuple[str, ...] = (
    "input", "output", "parameters", "attributes", "error", "label", "outcome", "override", "extra",
)  # fmt: skip
"""Columns holding JSON text (null when the entry has no such value)."""

TIME_COLUMNS: tuple[str, ...] = ("ts", "logged_at")

_EMPTY_ROW: dict[str, Any] = dict.fromkeys(COLUMNS)
_JSON_SET = frozenset(JSON_COLUMNS) - {"extra"}
_PLAIN_SET = frozenset(COLUMNS) - _JSON_SET - {"seq", "ts", "logged_at", "model", "version", "extra"}
_encode = msgspec.json.encode


@runtime_checkable
class Exporter(Protocol):
    """Writes entries to a destination in one format; picked by ``name`` (see ``get_exporter``)."""

    name: str
    suffix: str  # the usual file name ending, with its dot
    streams: bool  # True if it can write to a pipe (stdout); False if it needs a real file

    def write(self, entries: Iterable[StoredEntry], destination: Destination) -> int:
        """Write every entry; return how many were written."""
        ...


def flat_row(stored: StoredEntry) -> dict[str, Any]:
    """One entry as a row of :data:`COLUMNS`: Python values, JSON columns as text, times as datetimes."""
    entry = stored.entry
    row = dict(_EMPTY_ROW)
    row["seq"] = stored.seq
    row["ts"] = entry.ts
    row["logged_at"] = stored.logged_at
    extra: dict[str, Any] = {}
    for key, value in msgspec.to_builtins(entry).items():  # only the fields not at their default
        if key in _JSON_SET:
            row[key] = None if value is None else _encode(value).decode("utf-8")
        elif key == "model":
            row["model"] = value.pop("name")
            row["version"] = value.pop("version")
            if value:  # digest, uri, provider
                extra["model"] = value
        elif key in _PLAIN_SET:
            row[key] = value
        elif key == "ts":
            continue  # already there, as a datetime
        else:  # schema_version only when above 1 (the default, which the entry omits), v2 fields ...
            extra[key] = value
    if row["kind"] == "inference":
        row["status"] = row["status"] or "ok"
        row["parameters"] = row["parameters"] or "{}"
    row["attributes"] = row["attributes"] or "{}"
    if stored.purged:
        extra["purged"] = True
    row["extra"] = _encode(extra).decode("utf-8") if extra else None
    return row


@contextlib.contextmanager
def open_destination(destination: Destination) -> Iterator[IO[bytes]]:
    """A binary stream for ``destination``. A path is written to a temporary file beside it that
    replaces it only when writing succeeded, so a failed export never leaves half a file. A missing
    folder is named as the caller wrote it (not the temporary file's name) and is never created."""
    if not isinstance(destination, str | os.PathLike):
        yield destination
        return
    path = Path(destination)
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No such folder", str(path.parent))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as stream:
            yield stream
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def format_time(value: dt.datetime) -> str:
    """A column's timestamp as text: UTC, microseconds, ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
